// An in-memory LRU of pages with a byte budget: the host tier (and the shape
// of the device tier, which will hold device allocations instead).
#pragma once

#include <mutex>

#include "runtime/kvcache/PageLru.h"
#include "runtime/kvcache/PageTier.h"

namespace v4rt::kvcache {

class MemoryTier : public PageTier {
public:
  // `name` is "host" or "device"; bytes counted are payload bytes.
  MemoryTier(std::string name, uint64_t byteBudget);

  const std::string &name() const override { return name_; }
  std::vector<PagePtr> put(PagePtr page) override;
  PagePtr get(const PageKey &key) override;
  bool contains(const PageKey &key) const override;
  bool erase(const PageKey &key) override;
  uint64_t clear() override;
  TierStats stats() const override;

  // Keys from most to least recently used (for tests and diagnostics).
  std::vector<PageKey> keysByRecency() const;

private:
  struct KeyOfPage {
    const PageKey &operator()(const PagePtr &page) const { return page->key; }
  };

  const std::string name_;
  const uint64_t byteBudget_;
  mutable std::mutex mutex_;
  PageLru<PagePtr, KeyOfPage> lru_;
  TierStats counters_; // hits, misses, insertions, evictions; pages/bytes filled in stats()
  uint64_t bytes_ = 0;
};

} // namespace v4rt::kvcache
