#include "runtime/cuda/DeviceTier.h"

#include "common/Error.h"

namespace v4rt::cuda {

DeviceTier::DeviceTier(const CudaDevice &device, CUstream stream, uint64_t byteBudget,
                       std::shared_ptr<kvcache::PayloadAllocator> hostAllocator)
    : device_(device), stream_(stream), byteBudget_(byteBudget), hostAllocator_(std::move(hostAllocator)) {}

kvcache::PagePtr DeviceTier::toHost(const Held &held) const {
  const DriverApi &api = device_.api();
  auto page = std::make_shared<kvcache::Page>();
  page->key = held.key;
  page->pageIndex = held.pageIndex;
  page->tokens = held.tokens;
  page->payload = kvcache::PageBytes::allocate(hostAllocator_, held.payload.bytes());
  if (!page->payload.empty()) {
    checkCuda(api, api.cuMemcpyDtoHAsync(page->payload.data(), held.payload.get(), page->payload.size(), stream_),
              "cuMemcpyDtoHAsync", "device page tier: reading a page back");
    checkCuda(api, api.cuStreamSynchronize(stream_), "cuStreamSynchronize", "device page tier: reading a page back");
  }
  return page;
}

std::vector<kvcache::PagePtr> DeviceTier::put(kvcache::PagePtr page) {
  v4c::check(page != nullptr, "DeviceTier::put: null page");
  device_.makeCurrent();
  const DriverApi &api = device_.api();
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<kvcache::PagePtr> evicted;
  if (lru_.refresh(page->key)) // a key names its content: refresh only
    return evicted;
  ++counters_.insertions;
  const uint64_t size = page->payload.size();
  if (size > byteBudget_ || size == 0) {
    ++counters_.evictions; // could never fit: straight down
    evicted.push_back(std::move(page));
    return evicted;
  }
  // Make room first, so the new allocation never exceeds the budget.
  while (bytes_ + size > byteBudget_ && !lru_.empty()) {
    evicted.push_back(toHost(lru_.oldest()));
    bytes_ -= lru_.oldest().payload.bytes();
    lru_.popOldest();
    ++counters_.evictions;
  }
  Held held;
  held.payload = DeviceBuffer::allocateIfRoom(api, size, "device page tier: a page");
  if (!held.payload.get()) {
    // The budget is a promise about free device memory that the device may
    // not keep (the KV pool, other processes): the page goes down instead
    // of failing the session that exported it after it advanced.
    ++counters_.evictions;
    evicted.push_back(std::move(page));
    return evicted;
  }
  held.key = page->key;
  held.pageIndex = page->pageIndex;
  held.tokens = page->tokens;
  // Complete before the page may go (a pinned payload is a direct DMA; a
  // heap one is staged by the driver).
  checkCuda(api, api.cuMemcpyHtoDAsync(held.payload.get(), page->payload.data(), size, stream_),
            "cuMemcpyHtoDAsync", "device page tier: storing a page");
  checkCuda(api, api.cuStreamSynchronize(stream_), "cuStreamSynchronize", "device page tier: storing a page");
  lru_.pushFront(std::move(held));
  bytes_ += size;
  return evicted;
}

kvcache::PagePtr DeviceTier::get(const kvcache::PageKey &key) {
  device_.makeCurrent();
  std::lock_guard<std::mutex> lock(mutex_);
  const Held *held = lru_.touch(key, counters_);
  return held ? toHost(*held) : nullptr;
}

bool DeviceTier::contains(const kvcache::PageKey &key) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return lru_.contains(key);
}

bool DeviceTier::erase(const kvcache::PageKey &key) {
  std::lock_guard<std::mutex> lock(mutex_);
  const Held *held = lru_.find(key);
  if (!held)
    return false;
  device_.api().cuStreamSynchronize(stream_); // a restore may still read it
  bytes_ -= held->payload.bytes();
  return lru_.erase(key);
}

uint64_t DeviceTier::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  device_.api().cuStreamSynchronize(stream_);
  const uint64_t removed = lru_.clear();
  bytes_ = 0;
  return removed;
}

kvcache::TierStats DeviceTier::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  kvcache::TierStats stats = counters_;
  stats.name = name_;
  stats.pages = lru_.size();
  stats.bytes = bytes_;
  stats.byteBudget = byteBudget_;
  return stats;
}

CUdeviceptr DeviceTier::devicePayload(const kvcache::PageKey &key) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const Held *held = lru_.find(key);
  return held ? held->payload.get() : 0;
}

} // namespace v4rt::cuda
