// One sequence being generated: its cache state and position.
//
// A session keeps its token ids and, at every page boundary it passes, an
// immutable snapshot of its fixed-size state (window ring, compressor state),
// shared by the sessions forked from it. fork/truncate restore the nearest
// state at or below the target (a snapshot, a cached prefix page, or the
// empty state) and prefill the tokens between it and the target again.
//
// Errors: like CudaSession, the prefix cache and the snapshots are
// best-effort. A page that cannot be encoded, stored or restored, or a
// snapshot that cannot be taken, costs time only (counted in the cache's
// storeFailures); logits and position are what they are without a cache.
// A prefill whose own compute fails before its first chunk ran leaves the
// session's position as it was.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/Model.h"
#include "runtime/cpu/CacheBuffer.h"
#include "runtime/kvcache/Page.h"
#include "runtime/kvcache/PageKey.h"

namespace v4rt {

class PrefixCache;

// Which prompt rows' logits prefill returns. Only LastRow may reuse cached
// pages: the logits of restored rows are never computed.
enum class PrefillLogits { AllRows, LastRow };

class Session {
public:
  // With a prefix cache (which must outlive the session), a fresh session's
  // LastRow prefill restores the cached prefix, and every complete page the
  // session passes is stored.
  explicit Session(const Model &model, PrefixCache *prefixCache = nullptr);

  // Feeds `count` tokens (in chunks of the prefill bucket, cut at page
  // boundaries). `logits` receives count x vocab floats (AllRows) or the last
  // row's vocab floats (LastRow), or nothing when null. Returns the prompt
  // tokens it did not compute (< count): restored from the cache and not run
  // again to rebuild the window state (see restorePages).
  int64_t prefill(const int32_t *ids, int64_t count, float *logits,
                  PrefillLogits rows = PrefillLogits::AllRows);
  // Feeds one token; `logits` receives vocab floats.
  void decode(int32_t id, float *logits);
  int64_t position() const { return position_; }
  // Called after every step of every bucket this session runs, with the
  // step's resolved arguments (v4run compare reads the outputs); empty: none.
  using StepHook = std::function<void(const BoundBucket &, size_t stepIndex, const KernelArgs &)>;
  void setStepHook(StepHook hook) { stepHook_ = std::move(hook); }
  // Test seam: called with "page" before the session encodes a page for the
  // prefix cache and with "snapshot" before it takes a boundary snapshot; a
  // hook that throws stands in for an allocation failure there.
  using CacheFaultHook = std::function<void(const char *where)>;
  void setCacheFaultHook(CacheFaultHook hook) { cacheFaultHook_ = std::move(hook); }

  // A new session (same model and prefix cache) whose state equals this one's
  // after its first `position` tokens, 0 <= position <= position().
  // Compressed entries / indexer keys below the fork point and boundary
  // snapshots are shared copy-on-write (page-sized chunks); the window and
  // compressor slots are copied.
  std::unique_ptr<Session> fork(int64_t position) const;
  // Rolls this session back to its first `position` tokens.
  void truncate(int64_t position);

  // Tokens this session ran through prefill plans itself (not restored from
  // the prefix cache, not inherited from the session it was forked from).
  int64_t prefillTokensComputed() const { return prefillTokensComputed_; }
  // The ids fed so far (position() of them).
  const std::vector<int32_t> &tokens() const { return tokens_; }
  // The cache slots, in the program's slot order (to inspect sharing).
  const std::vector<CacheBuffer> &caches() const { return caches_; }

private:
  // Continuous batching (runtime/DecodeBatch.cpp) runs one decode plan over
  // several sessions' caches, then calls completeBatchedDecode on each.
  friend class BatchedDecodeStep;
  // What decode() does after its plan ran, for a batched step that fed `id`.
  void completeBatchedDecode(int32_t id);

  // Fixed-size slots' rows at a page boundary, indexed like caches_ (empty
  // for Entries slots).
  using StateSnapshot = std::vector<std::vector<float>>;

  void run(const BoundBucket &bucket, const int32_t *ids, int64_t count, float *logits);
  void checkIds(const int32_t *ids, int64_t count) const;
  // Restores the longest cached prefix of complete pages shorter than the
  // prompt; returns the tokens restored (the new position).
  int64_t restorePrefix(const int32_t *ids, int64_t count);
  // Sets this session to the end of `pages` (the cached pages of `ids`, from
  // page 0, with their `keys`): appends every page's entries, then rebuilds
  // the window state from rebuildStart(pages) by running those tokens again
  // with the restored entries frozen. Counts the run tokens as computed.
  void restorePages(const int32_t *ids, const std::vector<kvcache::PageKey> &keys,
                    const std::vector<kvcache::PagePtr> &pages);
  // Where restorePages starts running tokens again: the end of the last page
  // with a window snapshot, or windowRebuildTokens before the end of the
  // pages (from the empty window), whichever is later.
  int64_t rebuildStart(const std::vector<kvcache::PagePtr> &pages) const;
  // Keeps the ids just fed, snapshots a page boundary and stores the page
  // they completed, if any.
  void notePageProgress(const int32_t *ids, int64_t count);
  // Encodes the page that ends at position_ and stores it; best-effort.
  void storePage(const kvcache::PageKey &key);
  // Keeps the fixed state at position_; best-effort (a missing snapshot only
  // makes a later fork or truncate prefill more).
  void takeSnapshot();
  // Counts a failed store or restore in the prefix cache, if any.
  void recordCacheFailure(const std::string &why);
  // Makes this session's state that of `source` after `position` tokens:
  // restores the nearest boundary at or below it and re-prefills the rest.
  // `source` may be this session.
  void rewindFrom(const Session &source, int64_t position);
  // Sets this session to `source` at page boundary `boundary`, whose fixed
  // state is `snapshot` (null: the empty state, boundary 0).
  void restoreBoundary(const Session &source, int64_t boundary, const StateSnapshot *snapshot);

  const Model &model_;
  std::vector<CacheBuffer> caches_;
  std::vector<uint8_t> arenaStorage_;
  uint8_t *arena_ = nullptr; // 64-byte aligned view into arenaStorage_
  std::vector<int32_t> positions_;
  int64_t position_ = 0;
  int64_t pageTokens_ = 0; // the cache's page size, or the schema's when none

  std::vector<int32_t> tokens_;
  // Page-boundary position -> fixed state there; the most recent ones only.
  std::map<int64_t, std::shared_ptr<const StateSnapshot>> snapshots_;
  int64_t prefillTokensComputed_ = 0;

  PrefixCache *prefixCache_ = nullptr;
  StepHook stepHook_;
  CacheFaultHook cacheFaultHook_;
  std::vector<int32_t> pageIds_;          // ids of the current incomplete page
  std::vector<kvcache::PageKey> lastKey_; // key of the last complete page (0 or 1 of them)
};

} // namespace v4rt
