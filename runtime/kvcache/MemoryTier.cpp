#include "runtime/kvcache/MemoryTier.h"

#include <cstring>

#include "common/Error.h"

namespace v4rt::kvcache {

MemoryTier::MemoryTier(std::string name, uint64_t byteBudget, std::shared_ptr<PayloadAllocator> allocator)
    : name_(std::move(name)), byteBudget_(byteBudget), allocator_(std::move(allocator)) {}

PagePtr MemoryTier::placed(PagePtr page) {
  if (!allocator_ || page->payload.empty() || placedHere(*page))
    return page;
  PageBytes bytes = PageBytes::allocate(allocator_, page->payload.size());
  if (bytes.placedIn() != allocator_.get()) {
    ++counters_.pinFailures; // no block: keep the caller's bytes rather than copy them to the heap
    return page;
  }
  std::memcpy(bytes.data(), page->payload.data(), bytes.size());
  auto copy = std::make_shared<Page>();
  copy->key = page->key;
  copy->pageIndex = page->pageIndex;
  copy->tokens = page->tokens;
  copy->payload = std::move(bytes);
  return copy;
}

bool MemoryTier::placedHere(const Page &page) const {
  return allocator_ && page.payload.placedIn() == allocator_.get();
}

void MemoryTier::forgetBytes(const Page &page) {
  bytes_ -= page.payload.size();
  if (placedHere(page))
    pinnedBytes_ -= page.payload.size();
}

std::vector<PagePtr> MemoryTier::put(PagePtr page) {
  v4c::check(page != nullptr, "MemoryTier(" + name_ + ")::put: null page");
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<PagePtr> evicted;
  if (lru_.refresh(page->key)) // a key names its content: refresh only
    return evicted;
  ++counters_.insertions;
  if (page->payload.size() > byteBudget_) {
    // Could never fit: hand it straight down rather than emptying the tier for it.
    ++counters_.evictions;
    evicted.push_back(std::move(page));
    return evicted;
  }
  page = placed(std::move(page));
  bytes_ += page->payload.size();
  if (placedHere(*page))
    pinnedBytes_ += page->payload.size();
  lru_.pushFront(std::move(page));
  while (bytes_ > byteBudget_) {
    PagePtr oldest = lru_.oldest();
    lru_.popOldest();
    forgetBytes(*oldest);
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
  forgetBytes(**page);
  return lru_.erase(key);
}

uint64_t MemoryTier::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  const uint64_t removed = lru_.clear();
  bytes_ = 0;
  pinnedBytes_ = 0;
  return removed;
}

TierStats MemoryTier::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  TierStats stats = counters_;
  stats.name = name_;
  stats.pages = lru_.size();
  stats.bytes = bytes_;
  stats.byteBudget = byteBudget_;
  stats.pinned = allocator_ && allocator_->pinned();
  stats.pinnedBytes = pinnedBytes_;
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
