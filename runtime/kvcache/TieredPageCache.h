// The tiered KV page cache: tiers top (fastest) to bottom, e.g.
// "device" -> "host" -> "disk". New pages enter the top tier; a tier's LRU
// evictions are demoted to the next tier and dropped after the last; a hit in
// a lower tier is promoted to the top (moved out of memory tiers, copied out
// of persistent ones so the disk copy survives restarts). One mutex makes it
// thread-safe; tiers are also safe on their own.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/kvcache/PageTier.h"

namespace v4rt::kvcache {

struct CacheStats {
  std::vector<TierStats> tiers; // top to bottom; a tier's hits/misses count the
                                // lookups that reached it (misses above it)
  int64_t pageTokens = 0;
  uint64_t lookups = 0;    // lookup() calls
  uint64_t hits = 0;       // lookups that found the page in some tier
  uint64_t misses = 0;     // lookups found nowhere (lookups = hits + misses)
  uint64_t promotions = 0; // hits below the top tier, moved or copied to the top
  uint64_t demotions = 0;  // evicted pages handed to the next tier down
  uint64_t dropped = 0;    // pages evicted from the bottom tier (gone from the cache)

  // hits / (hits + misses); 0 before the first lookup.
  double hitRate() const {
    return lookups == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(lookups);
  }
  // Prefill tokens a hit spares: hit pages x pageTokens.
  uint64_t tokensSaved() const { return hits * static_cast<uint64_t>(pageTokens); }
  // Bytes held in all tiers together (a page in two tiers counts twice).
  uint64_t totalBytes() const;
};

// Budgets of the standard host -> disk stack (the CUDA backend adds "device").
struct TieredCacheOptions {
  uint64_t hostBytes = 0;    // 0: no host tier
  // Where the host tier keeps payloads and the disk tier reads them (null: heap).
  std::shared_ptr<PayloadAllocator> payloadAllocator;
  std::string diskDirectory; // empty: no disk tier
  uint64_t diskBytes = 0;
};

class TieredPageCache {
public:
  // `tiers` top to bottom, at least one, names unique. `pageTokens` > 0.
  TieredPageCache(std::vector<std::unique_ptr<PageTier>> tiers, int64_t pageTokens);

  // host (MemoryTier "host") then disk (DiskTier), as the options ask; at
  // least one of them must be enabled.
  static std::unique_ptr<TieredPageCache> create(const TieredCacheOptions &options,
                                                 const std::string &artifactIdentity,
                                                 int64_t pageTokens);

  // Searches the tiers top-down; a hit below the top is promoted. Null: miss.
  PagePtr lookup(const PageKey &key);
  // Puts the page in the top tier, demoting what that pushes out.
  void insert(PagePtr page);
  void insert(Page page) { insert(std::make_shared<const Page>(std::move(page))); }

  // Whether some tier holds the key (no stats, no promotion, no validation).
  bool contains(const PageKey &key) const;
  // How many leading keys are present (stops at the first absent one). A
  // presence check: a disk page may still turn out corrupt at lookup(), so
  // use fetchPrefix() for the pages themselves.
  size_t longestPrefix(const std::vector<PageKey> &keys) const;
  // lookup() of the leading keys until the first miss: the reusable prefix.
  std::vector<PagePtr> fetchPrefix(const std::vector<PageKey> &keys);

  // Empties every tier; returns the pages removed (summed over tiers).
  uint64_t clear();
  CacheStats stats() const;

  int64_t pageTokens() const { return pageTokens_; }
  size_t tierCount() const { return tiers_.size(); }
  PageTier &tier(size_t index) { return *tiers_.at(index); }
  // The tier called `name`, or null.
  PageTier *findTier(const std::string &name);

private:
  PagePtr lookupLocked(const PageKey &key);
  // Puts `page` into tier `level` and demotes its evictions level by level.
  void placeAt(size_t level, PagePtr page);

  std::vector<std::unique_ptr<PageTier>> tiers_;
  const int64_t pageTokens_;
  mutable std::mutex mutex_;
  CacheStats counters_; // lookups, hits, misses, promotions, demotions, dropped
};

} // namespace v4rt::kvcache
