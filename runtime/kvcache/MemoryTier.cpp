#include "runtime/kvcache/MemoryTier.h"

#include "common/Error.h"

namespace v4rt::kvcache {

MemoryTier::MemoryTier(std::string name, uint64_t byteBudget)
    : name_(std::move(name)), byteBudget_(byteBudget) {}

std::vector<PagePtr> MemoryTier::put(PagePtr page) {
  v4c::check(page != nullptr, "MemoryTier(" + name_ + ")::put: null page");
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<PagePtr> evicted;
  auto found = index_.find(page->key);
  if (found != index_.end()) {
    bytes_ -= (*found->second)->payload.size();
    lru_.erase(found->second);
    index_.erase(found);
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
  lru_.push_front(page);
  index_[page->key] = lru_.begin();
  while (bytes_ > byteBudget_) {
    PagePtr oldest = lru_.back();
    lru_.pop_back();
    index_.erase(oldest->key);
    bytes_ -= oldest->payload.size();
    ++counters_.evictions;
    evicted.push_back(std::move(oldest));
  }
  return evicted;
}

PagePtr MemoryTier::get(const PageKey &key) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = index_.find(key);
  if (found == index_.end()) {
    ++counters_.misses;
    return nullptr;
  }
  ++counters_.hits;
  lru_.splice(lru_.begin(), lru_, found->second);
  return lru_.front();
}

bool MemoryTier::contains(const PageKey &key) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return index_.count(key) != 0;
}

bool MemoryTier::erase(const PageKey &key) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = index_.find(key);
  if (found == index_.end())
    return false;
  bytes_ -= (*found->second)->payload.size();
  lru_.erase(found->second);
  index_.erase(found);
  return true;
}

uint64_t MemoryTier::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  uint64_t removed = index_.size();
  lru_.clear();
  index_.clear();
  bytes_ = 0;
  return removed;
}

TierStats MemoryTier::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  TierStats stats = counters_;
  stats.name = name_;
  stats.pages = index_.size();
  stats.bytes = bytes_;
  stats.byteBudget = byteBudget_;
  return stats;
}

std::vector<PageKey> MemoryTier::keysByRecency() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<PageKey> keys;
  keys.reserve(lru_.size());
  for (const PagePtr &page : lru_)
    keys.push_back(page->key);
  return keys;
}

} // namespace v4rt::kvcache
