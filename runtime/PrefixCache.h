// Prefix reuse across sessions and processes: a model's tiered page cache
// (device memory on the CUDA backend -> host memory -> disk directory) plus
// the counters of what it saved. One implementation for both backends: the
// CPU Session and runtime/cuda's CudaSession (docs/kv-cache.md).
//
// Sessions created with a PrefixCache look up the longest run of cached
// complete pages of a fresh prompt, restore them instead of prefilling, and
// store every complete page they pass. Keys chain sha256 over the page's ids,
// the previous key, the artifact identity and the tenant salt (PageKey.h).
// A page that fails validation (v4kvcache's header checks or the payload's
// schema check) is a miss: recomputed and counted, never used. I/O errors are
// warnings counted in stats: a broken disk costs time, never a generation.
//
// The window strategy (--swa-cache) decides which stored pages keep the
// sliding-window state: full (all), periodic:P (those ending at multiples of
// P), zero (none). A session restoring pages without it runs the last tokens
// again to rebuild it exactly (Session::restorePages); the key does not
// depend on the strategy, and every strategy reads every page.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/Model.h"
#include "runtime/PagePayload.h"
#include "runtime/kvcache/TieredPageCache.h"

namespace v4rt {

struct PrefixCacheOptions {
  std::string directory;          // disk tier; empty: none
  uint64_t diskBytes = 16ull << 30;
  uint64_t hostBytes = 0;         // host tier; 0: none
  std::string tenantSalt;         // pages are shared only within one salt
  SwaCacheStrategy strategy = SwaCacheStrategy::Full;
  // Where page payloads live (null: the heap). The CUDA backend passes its
  // pinned allocator (runtime/cuda/CudaPrefixCache.h): the host tier holds
  // its pages there and sessions and the device tier build pages there.
  std::shared_ptr<kvcache::PayloadAllocator> payloadAllocator;
};

// "full", "periodic:P" (P > 0 tokens; PrefixCache checks it is a multiple
// of the page size) or "zero"; anything else is a one-line error.
SwaCacheStrategy parseSwaCacheStrategy(const std::string &text);

struct PrefixCacheStats {
  int64_t pageTokens = 0;
  uint64_t prefillTokensSaved = 0; // prompt tokens restored and not computed
  // Restored tokens run again to rebuild the window state that the pages do
  // not keep (periodic:P, zero); restored = saved + recomputed.
  uint64_t windowTokensRecomputed = 0;
  uint64_t pagesHit = 0;           // pages restored
  uint64_t pagesMissed = 0;        // reusable-length pages not found (or rejected)
  uint64_t pagesRejected = 0;      // found but the payload did not fit the schema
  uint64_t pagesStored = 0;        // new pages handed to the cache
  uint64_t pageBytesStored = 0;    // their payload bytes (smaller without window snapshots)
  uint64_t ioFailures = 0;         // lookups or stores that hit an I/O error
  // Pages the cache failed to take or give back: stores that threw (also in
  // ioFailures) and a CUDA session's failed page exports and restores.
  uint64_t storeFailures = 0;
  kvcache::CacheStats tiers;       // per-tier pages, bytes, corrupt, orphans

  double hitRate() const {
    const uint64_t asked = pagesHit + pagesMissed;
    return asked == 0 ? 0.0 : static_cast<double>(pagesHit) / static_cast<double>(asked);
  }
};

// Where a session that restores `pages` (the cached pages of its prompt,
// from page 0) starts running tokens again to rebuild its window state: the
// end of the last page with a window snapshot, or windowRebuildTokens before
// the end of the pages (from the empty window), whichever is later.
int64_t windowRebuildStart(const std::vector<kvcache::PagePtr> &pages, const std::vector<CacheSlot> &slots,
                           int64_t pageTokens);

class PrefixCache {
public:
  // At least one tier: a directory or a host budget. The strategy decides what
  // the pages this cache stores keep; pages of every strategy are read.
  PrefixCache(const Model &model, const PrefixCacheOptions &options);
  // Any backend: the artifact's identity and cache schema. `deviceTier`
  // (the CUDA backend's, runtime/cuda/DeviceTier.h) goes on top of the host
  // and disk tiers; it may be the only tier.
  PrefixCache(std::string artifactIdentity, std::vector<CacheSlot> slots, const PrefixCacheOptions &options,
              std::unique_ptr<kvcache::PageTier> deviceTier = nullptr);

  int64_t pageTokens() const { return pageTokens_; }
  SwaCacheStrategy strategy() const { return options_.strategy; }
  const std::vector<CacheSlot> &slots() const { return slots_; }

  // Key of the page holding `ids` (pageTokens of them) after `previous`
  // (null for page 0).
  kvcache::PageKey pageKey(const kvcache::PageKey *previous, const int32_t *ids) const;
  // Keys of the first `pages` pages of `ids`.
  std::vector<kvcache::PageKey> prefixKeys(const int32_t *ids, int64_t pages) const;

  // The cached pages for the leading keys, stopping at the first page that is
  // missing or whose payload fails checkPagePayload. Counts hits and misses.
  std::vector<kvcache::PagePtr> fetch(const std::vector<kvcache::PageKey> &keys);
  // What a session restores of a prompt of `count` ids: the cached whole
  // pages from page 0 that leave its last token to run (so its logits
  // exist), with their keys; no pages when none is cached.
  struct PromptPages {
    std::vector<kvcache::PageKey> keys;
    std::vector<kvcache::PagePtr> pages;
  };
  PromptPages fetchPrompt(const int32_t *ids, int64_t count);
  bool contains(const kvcache::PageKey &key) const;
  // Stores a page in the top tier and writes it through to the disk tier (so
  // it survives this process). I/O errors are counted, never thrown.
  void store(kvcache::Page page);
  // A session restored `tokensRestored` prompt tokens from pages, of which it
  // ran the last `tokensRecomputed` again to rebuild its window state.
  void recordRestore(int64_t tokensRestored, int64_t tokensRecomputed);
  // A page a session could not hand to the cache or restore from it (the
  // work was done without it): counted in storeFailures, `why` kept for the
  // warning line.
  void recordStoreFailure(const std::string &why);

  // Where new pages' payloads go (PageBytes::allocate); null: the heap.
  const std::shared_ptr<kvcache::PayloadAllocator> &payloadAllocator() const {
    return options_.payloadAllocator;
  }

  // The tier called `name` ("device", "host", "disk"), or null.
  kvcache::PageTier *findTier(const std::string &name) { return cache_->findTier(name); }

  PrefixCacheStats stats() const;
  // The last I/O problem, for a warning line; empty if none.
  std::string lastWarning() const;
  // Removes every page from every tier; returns how many.
  uint64_t clear();

private:
  void warn(const std::string &message);
  // After a lookup stopped at a damaged disk page: the pages after it were
  // not read, and a damaged one among them would stop the session from
  // storing its recomputed page (stores skip held keys) until a later run
  // found it. Reading them drops the damaged files, so one run repairs every
  // damaged page of the prompt.
  void dropDamagedPagesAfter(kvcache::PageTier &disk, const std::vector<kvcache::PageKey> &keys, size_t first);

  const PrefixCacheOptions options_;
  const std::string identity_;
  const std::vector<CacheSlot> slots_;
  const int64_t pageTokens_;
  std::unique_ptr<kvcache::TieredPageCache> cache_;
  kvcache::PageTier *writeThroughDisk_ = nullptr; // the disk tier when it is not the top one
  mutable std::mutex mutex_;
  PrefixCacheStats counters_;
  std::string lastWarning_;
};

} // namespace v4rt
