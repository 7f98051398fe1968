// One level of the tiered page cache ("device", "host", "disk"): a keyed
// store with a byte budget and least-recently-used eviction.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/kvcache/Page.h"

namespace v4rt::kvcache {

// Counters since the tier was created (pages/bytes: current contents).
struct TierStats {
  std::string name;
  uint64_t pages = 0;          // pages held now
  uint64_t bytes = 0;          // bytes held now (see the tier for what it counts)
  uint64_t byteBudget = 0;     // the most `bytes` may reach after a put
  uint64_t hits = 0;           // get() calls that returned a page
  uint64_t misses = 0;         // get() calls that returned none (corrupt pages included)
  uint64_t insertions = 0;     // put() calls that stored a new page
  uint64_t evictions = 0;      // pages pushed out by the budget (or too big to hold at all)
  uint64_t corrupt = 0;        // pages found damaged or foreign, deleted, and reported as misses
  uint64_t orphansRemoved = 0; // disk only: temporary files of dead writers removed
  // Host tier on the CUDA backend: payloads are placed in page-locked memory
  // (MemoryTier with a pinned PayloadAllocator). pinnedBytes: of `bytes`,
  // those pinned; pinFailures: payloads left pageable because pinning failed
  // (cuMemAllocHost refused: the tier keeps working, copies get slower).
  bool pinned = false;
  uint64_t pinnedBytes = 0;
  uint64_t pinFailures = 0;

  // "host (pinned)" for a pinned tier, else the name (for tables and logs).
  std::string displayName() const { return pinned ? name + " (pinned)" : name; }

  // hits / (hits + misses); 0 before the first get().
  double hitRate() const {
    return hits + misses == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(hits + misses);
  }
};

// Implementations are thread-safe on their own.
class PageTier {
public:
  virtual ~PageTier() = default;

  virtual const std::string &name() const = 0;

  // Stores `page` as the most recently used. Returns the pages pushed out to
  // stay within budget (possibly `page` itself when it cannot fit), so the
  // caller can demote them. A tier that deletes what it evicts (the disk, the
  // bottom tier) returns none. Storing a key already held only refreshes it:
  // a key names its content.
  virtual std::vector<PagePtr> put(PagePtr page) = 0;

  // The page, refreshed as most recently used; null on a miss. Counted in stats.
  virtual PagePtr get(const PageKey &key) = 0;

  // Presence only: no stats, no LRU change, no validation of the content.
  virtual bool contains(const PageKey &key) const = 0;

  // Removes the page; false when it was not held.
  virtual bool erase(const PageKey &key) = 0;

  // Removes every page; returns how many.
  virtual uint64_t clear() = 0;

  virtual TierStats stats() const = 0;

  // True when a page promoted to a higher tier should also stay here (a
  // persistent tier keeps its copy so it survives restarts); false when the
  // promotion moves the page (memory tiers do not hold duplicates).
  virtual bool keepsPromotedPages() const { return false; }
};

} // namespace v4rt::kvcache
