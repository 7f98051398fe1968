// One sequence on the GPU: its cache slots and position.
//
// prefill runs the model's prefill bucket chunk by chunk; decode runs the
// decode bucket, captured into a CUDA graph on the first decode and replayed
// afterwards (ids, positions and dyn are copied into the bucket's buffers
// before each replay, all on the model's stream; the logits come back once
// per step).
//
// The cache slots (KvSlots) come from the model's DeviceKvPool: another
// session may preempt this one (its slots move to pinned host memory) and
// ensureResident(), which prefill and decode call first, swaps it back in.
// New addresses rebuild the launch tables and the decode graph.
//
// With a PrefixCache (CudaSessionOptions::prefixCache), a fresh session's
// last-row prefill restores the cached pages of its prompt (Entries rows
// copied host -> device, or device -> device from the "device" tier; the
// window state from a page snapshot or rebuilt by running the last tokens
// again with the restored entries frozen: dyn[1]), and every complete page
// the session passes is exported (device -> host) into the cache
// (runtime/PagePayload.h; CudaSessionPages.cpp).
//
// fork / truncate (CudaSessionFork.cpp): the session keeps its ids and, at
// the page boundaries its runs end on, a pinned host snapshot of its
// fixed-size slots; both restore the nearest of those (or a cached prefix
// page, or the empty state) at or below the target with device copies and
// prefill the tokens between again.
//
// Errors: the prefix cache and the snapshots are best-effort. A page that
// cannot be exported or restored, or a snapshot that cannot be taken, costs
// time only (counted: cacheFailures()); the session's logits and position are
// what they are without a cache. A call that fails before the session's own
// kernels ran leaves it as it was (the caller may retry); one that fails
// after leaves it unusable: every later call says so (start a new session).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/cuda/CudaModel.h"
#include "runtime/cuda/KvSlots.h"
#include "runtime/kvcache/Page.h"

namespace v4rt {
class PrefixCache;
}

namespace v4rt::cuda {

struct CudaSessionOptions {
  // Replay the decode bucket as a CUDA graph (off: plain launches, for the
  // graph-vs-launch equality check).
  bool useGraphs = true;
  // Synchronise after every launch so a failing kernel is named (also set by
  // the environment variable V4_CUDA_SYNC=1).
  bool syncEachStep = false;
  // Prefix reuse across sessions and processes (outlives the session); null: none.
  PrefixCache *prefixCache = nullptr;
  // Page-boundary snapshots of the fixed-size slots kept for fork / truncate
  // (the most recent ones; pinned host memory, ~27 MiB each at V4-Flash
  // dims with bf16 caches). 0: none, those restore from the prefix cache or
  // from position 0.
  int keptSnapshots = 8;
};

// What the step observer sees after each launch (stepwise mode).
struct StepReport {
  const DeviceBucket *bucket = nullptr;
  size_t stepIndex = 0;
  int64_t tokens = 0;   // tokens present in this run (dyn[0])
  int64_t position = 0; // position of the run's first token
};

class CudaSession {
public:
  explicit CudaSession(const CudaModel &model, const CudaSessionOptions &options = {});
  ~CudaSession();
  CudaSession(const CudaSession &) = delete;
  CudaSession &operator=(const CudaSession &) = delete;

  // Feeds `count` tokens in chunks of the prefill bucket. `logits` receives
  // count x vocab floats, or only the last row's vocab floats when
  // `lastRowOnly`, or nothing when null. Returns the prompt tokens it did not
  // compute (restored from the prefix cache: a fresh session, lastRowOnly).
  int64_t prefill(const int32_t *ids, int64_t count, float *logits, bool lastRowOnly = false);
  // Feeds one token; `logits` (may be null) receives vocab floats.
  void decode(int32_t id, float *logits);
  int64_t position() const { return position_; }
  // Makes the session's cache slots usable on the device (a preempted
  // session is swapped back in first, preempting others); every launch that
  // touches them needs it.
  void ensureResident();
  // Device address of cache slot `slot` (Program::caches order); valid while
  // the session is resident.
  CUdeviceptr cacheAddress(size_t slot) const { return slots_->address(slot); }
  // The slots as the pool sees them: a batched step pins its sessions with
  // KvPinScope(model.kvPool()).add(session.kvResident()) so none preempts another.
  KvResident &kvResident() { return *slots_; }
  bool isResident() const { return slots_->isResident(); }
  // Tokens this session ran through the prefill bucket itself (not restored
  // from the prefix cache, not inherited from the session it was forked
  // from); restored ones re-run for the window state count.
  int64_t prefillTokensComputed() const { return prefillTokensComputed_; }
  // Device time of the last decode step (CUDA events around the launches).
  float lastDecodeMilliseconds() const { return lastDecodeMs_; }
  // Page exports, page restores and snapshots that failed and were skipped
  // (the work was done without them), and the last one's reason.
  int64_t cacheFailures() const { return cacheFailures_; }
  const std::string &lastCacheFailure() const { return lastCacheFailure_; }

  // A new session holding this one's first `position` tokens (0 <= position <= position()).
  // Same model and options; it restores the nearest state at or below
  // `position` (a kept page-boundary snapshot, a cached prefix page or the
  // empty state: device copies of this session's rows, CudaSessionFork.cpp)
  // and prefills the tokens after it again; at position() it copies all.
  std::unique_ptr<CudaSession> fork(int64_t position) const;
  // Drops every token from `position` on (0 <= position <= position()), the
  // same restore in place.
  void truncate(int64_t position);
  // The ids fed so far (position() of them).
  const std::vector<int32_t> &tokens() const { return tokens_; }

  // Stepwise mode (the compare tool): every launch is synchronised and
  // reported; graphs are not used while an observer is set.
  void setStepObserver(std::function<void(const StepReport &)> observer) { observer_ = std::move(observer); }
  // The current device contents of one argument of a bucket's step as
  // floats (any float or integer dtype): the `rows` leading rows of a
  // token-major arena/input/output argument (other shapes: all of it), the
  // first `rows` rows of a cache slot (at most those allocated), or a whole
  // weight.
  std::vector<float> readArgument(const DeviceBucket &bucket, const ArgRef &arg, int64_t rows) const;

private:
  // Continuous batching (runtime/cuda/CudaDecodeBatch.cpp) runs one batched
  // decode bucket over several sessions' caches and advances each.
  friend class CudaDecodeBatch;

  const BoundLaunches &launchesFor(const DeviceBucket &bucket);
  // Drops the launch tables and the decode graph when the slots moved.
  void refreshAddresses();
  // What decode() does after its launches ran, for a batched step that fed `id`.
  void completeBatchedDecode(int32_t id);
  void checkIds(const int32_t *ids, int64_t count) const;
  void checkContext(int64_t count) const;
  // Copies ids, positions and dyn for a run of `count` tokens into the
  // bucket's buffers (async, on the model's stream).
  void stageInputs(const DeviceBucket &bucket, const int32_t *ids, int64_t count);
  void launchSteps(const DeviceBucket &bucket, int64_t count);
  void copyLogits(const DeviceBucket &bucket, int64_t firstRow, int64_t rows, float *logits);
  void replayDecodeGraph(const DeviceBucket &bucket);
  // decode()'s launches and logits, after its inputs were staged.
  void runDecodeStep(const DeviceBucket &bucket, float *logits);

  // Prefix reuse (CudaSessionPages.cpp).
  int64_t restorePrefix(const int32_t *ids, int64_t count);
  void restorePages(const int32_t *ids, const std::vector<kvcache::PageKey> &keys,
                    const std::vector<kvcache::PagePtr> &pages);
  // Tokens a prefill chunk may run from the current position: up to the next
  // page end that keeps a window snapshot (the snapshot is taken there).
  int64_t tokensToNextSnapshot() const;
  // Keeps the ids just fed and exports each page they completed.
  void notePageProgress(const int32_t *ids, int64_t count);
  void exportPage(int64_t pageIndex);
  void storePage(int64_t pageIndex, const kvcache::PageKey &key);
  // After a cache or snapshot step threw `error`: waits for the stream (its
  // error, a lost context, is the session's and is thrown), then counts it.
  void skipCacheFailure(const std::exception &error);
  // The same for a page export or restore, counted by the prefix cache too.
  void skipPageFailure(const std::exception &error);
  // The state of a fresh session (a failed page restore falls back to it).
  void resetToEmpty();
  // Throws when an earlier call failed after the session's kernels ran.
  void checkUsable() const;

  // Fork and truncate (CudaSessionFork.cpp).
  // Copies the fixed-size slots to a pinned host snapshot of this page
  // boundary (async), keeping the options' keptSnapshots most recent ones.
  void takeSnapshot();
  uint64_t snapshotBytes() const;
  // Makes this session hold `source`'s state at its current position.
  void copyStateFrom(const CudaSession &source);
  // Makes this session hold `source`'s first `position` tokens: restores the
  // nearest boundary at or below it and prefills the rest. `source` may be
  // this session.
  void rewindFrom(const CudaSession &source, int64_t position);
  // Sets this session to `source` at page boundary `boundary`, whose
  // fixed-size state is `snapshot` (null: the empty state, boundary 0).
  void restoreBoundary(const CudaSession &source, int64_t boundary, const PinnedBuffer *snapshot);
  // Zeroes the Entries rows of tokens [fromTokens, toTokens).
  void clearEntries(int64_t fromTokens, int64_t toTokens);
  // Restarts the page export at page boundary `boundary`: no partial page,
  // the last key that of the page ending there (the ids decide it).
  void rekeyPages(int64_t boundary);
  // Where a prefill chunk of `count` tokens from the current position ends:
  // at the last page boundary it crosses, so the snapshot there is taken.
  int64_t chunkToPageBoundary(int64_t count) const;

  const CudaModel &model_;
  CudaSessionOptions options_;
  std::unique_ptr<KvSlots> slots_;   // Program::caches order
  uint64_t addressGeneration_ = 0;   // slots_->generation() the tables were built for
  std::vector<std::unique_ptr<BoundLaunches>> launches_; // per model bucket, built on first use
  // ids | positions | dyn of one run, twice: a chunk is staged while the
  // previous one's copies may still be queued (each waits for its event).
  PinnedBuffer staging_[2];
  std::unique_ptr<Event> stagingCopied_[2];
  bool stagingPending_[2] = {false, false};
  int stagingNext_ = 0;
  PinnedBuffer decodeLogits_;        // one row of logits
  CUgraph graph_ = nullptr;
  CUgraphExec graphExec_ = nullptr;
  std::unique_ptr<Event> decodeStart_, decodeEnd_;
  float lastDecodeMs_ = 0.0f;
  int64_t position_ = 0;
  std::string failure_; // why the session is unusable; empty: it is not
  int64_t cacheFailures_ = 0;
  std::string lastCacheFailure_;
  std::function<void(const StepReport &)> observer_;

  PrefixCache *prefixCache_ = nullptr;
  int64_t pageTokens_ = 0; // the prefix cache's page, or the schema's (pageTokensFor)
  int64_t prefillTokensComputed_ = 0;
  int64_t frozenTokens_ = 0;              // dyn[1]: entries below it are restored, not rewritten
  std::vector<kvcache::PageKey> lastKey_; // key of the last complete page (0 or 1 of them)

  std::vector<int32_t> tokens_; // every id fed, position_ of them
  // Page-boundary position -> the fixed-size slots there (pinned host, the
  // slots' rows in Program::caches order); the most recent ones only, shared
  // with forks (immutable once taken).
  std::map<int64_t, std::shared_ptr<PinnedBuffer>> snapshots_;
};

} // namespace v4rt::cuda
