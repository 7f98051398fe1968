#include "runtime/kvcache/MemoryTier.h"

#include "common/Error.h"

namespace v4rt::kvcache {

MemoryTier::MemoryTier(std::string name, uint64_t byteBudget)
    : name_(std::move(name)), byteBudget_(byteBudget) {}

std::vector<PagePtr> MemoryTier::put(PagePtr page) {
  v4c::check(page != nullptr, "MemoryTier(" + name_ + ")::put: null page");
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<PagePtr> evicted;
  if (const PagePtr *held = lru_.find(page->key)) {
    bytes_ -= (*held)->payload.size();
    lru_.erase(page->key);
  } else {
    ++counters_.insertions;
  }
  if (page->payload.size() > byteBudget_) {
    // Could never fit: hand it straight down rather than emptying the tier for it.
    ++counters_.evictions;
    evicted.push_back(std::move(page));
    return evicted;
  }
  bytes_ += page->payload.size();
  lru_.pushFront(page);
  while (bytes_ > byteBudget_) {
    PagePtr oldest = lru_.oldest();
    lru_.popOldest();
    bytes_ -= oldest->payload.size();
    ++counters_.evictions;
    evicted.push_back(std::move(oldest));
  }
  return evicted;
}

PagePtr MemoryTier::get(const PageKey &key) {
  std::lock_guard<std::mutex> lock(mutex_);
  const PagePtr *page = lru_.touch(key, counters_);
  return page ? *page : nullptr;
}

bool MemoryTier::contains(const PageKey &key) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return lru_.contains(key);
}

bool MemoryTier::erase(const PageKey &key) {
  std::lock_guard<std::mutex> lock(mutex_);
  const PagePtr *page = lru_.find(key);
  if (!page)
    return false;
  bytes_ -= (*page)->payload.size();
  return lru_.erase(key);
}

uint64_t MemoryTier::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  const uint64_t removed = lru_.clear();
  bytes_ = 0;
  return removed;
}

TierStats MemoryTier::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  TierStats stats = counters_;
  stats.name = name_;
  stats.pages = lru_.size();
  stats.bytes = bytes_;
  stats.byteBudget = byteBudget_;
  return stats;
}

std::vector<PageKey> MemoryTier::keysByRecency() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<PageKey> keys;
  keys.reserve(lru_.size());
  for (const PagePtr &page : lru_.byRecency())
    keys.push_back(page->key);
  return keys;
}

} // namespace v4rt::kvcache
