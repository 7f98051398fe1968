// The "device" tier of the page cache on the CUDA backend: page payloads
// held in device memory under their own byte budget, least recently used
// first out. It sits on top of "host" and "disk" (PrefixCache's deviceTier):
// its evictions are handed down as host pages (copied back), a hit is
// copied to the host for the schema check (PageTier's contract), and a
// session restoring a page the tier holds copies its rows device to device
// (devicePayload). With a pinned host allocator (CudaPrefixCache.h) the
// pages it hands down are built in pinned memory: both directions are
// direct DMA between the device and the payload, no pageable bounce.
#pragma once

#include <memory>
#include <mutex>

#include "runtime/cuda/CudaDriver.h"
#include "runtime/cuda/DeviceObjects.h"
#include "runtime/kvcache/PageLru.h"
#include "runtime/kvcache/PageTier.h"

namespace v4rt::cuda {

class CudaDevice;

class DeviceTier final : public kvcache::PageTier {
public:
  // Copies run on `stream` (the model's) and are complete when calls return.
  // Pages copied back to the host get their payload from `hostAllocator`
  // (null: the heap).
  DeviceTier(const CudaDevice &device, CUstream stream, uint64_t byteBudget,
             std::shared_ptr<kvcache::PayloadAllocator> hostAllocator = nullptr);

  const std::string &name() const override { return name_; }
  std::vector<kvcache::PagePtr> put(kvcache::PagePtr page) override;
  kvcache::PagePtr get(const kvcache::PageKey &key) override;
  bool contains(const kvcache::PageKey &key) const override;
  bool erase(const kvcache::PageKey &key) override;
  uint64_t clear() override;
  kvcache::TierStats stats() const override;

  // The page's payload on the device (payload byte i at address + i), or 0
  // when the tier does not hold it. Valid until the next put/erase/clear.
  CUdeviceptr devicePayload(const kvcache::PageKey &key) const;

private:
  struct Held {
    kvcache::PageKey key;
    int64_t pageIndex = 0, tokens = 0;
    DeviceBuffer payload;
  };
  struct KeyOfHeld {
    const kvcache::PageKey &operator()(const Held &held) const { return held.key; }
  };
  kvcache::PagePtr toHost(const Held &held) const;

  const std::string name_ = "device";
  const CudaDevice &device_;
  CUstream stream_;
  const uint64_t byteBudget_;
  const std::shared_ptr<kvcache::PayloadAllocator> hostAllocator_;
  mutable std::mutex mutex_;
  kvcache::PageLru<Held, KeyOfHeld> lru_;
  kvcache::TierStats counters_;
  uint64_t bytes_ = 0;
};

} // namespace v4rt::cuda
