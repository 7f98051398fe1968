// Page payloads in page-locked host memory (cuMemAllocHost): the CUDA
// backend's host page tier and the pages its sessions and device tier build,
// so every device <-> host page copy is a real async DMA on the model's
// stream, never a pageable bounce through the driver's staging buffer.
//
// Pages of one schema come in two sizes (with / without the window
// snapshot), so released blocks are kept for reuse by exact size, up to
// `retainBytes`; pinning and unpinning host memory is slow.
//
// A block cuMemAllocHost refuses (the host cannot lock that much) is not an
// error: allocate() returns null, the payload stays pageable on the heap, the
// first refusal prints one warning line to stderr and every one is counted
// (stats().failures, TierStats::pinFailures of the host tier).
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "runtime/cuda/CudaDriver.h"
#include "runtime/kvcache/PageBytes.h"

namespace v4rt::cuda {

struct PinnedPayloadStats {
  uint64_t liveBlocks = 0, liveBytes = 0;         // handed out, not yet released
  uint64_t retainedBlocks = 0, retainedBytes = 0; // released, kept for reuse
  uint64_t driverAllocations = 0;                 // cuMemAllocHost calls that succeeded
  uint64_t reuses = 0;                            // blocks served from the retained ones
  uint64_t failures = 0;                          // cuMemAllocHost refusals (payload stayed pageable)
};

class PinnedPayloadAllocator final : public kvcache::PayloadAllocator {
public:
  // The device must stay open while blocks are live (CudaDevice::open's
  // devices live for the process).
  PinnedPayloadAllocator(const CudaDevice &device, uint64_t retainBytes);
  ~PinnedPayloadAllocator() override;

  void *allocate(size_t bytes) override;
  void release(void *block, size_t bytes) noexcept override;
  bool pinned() const override { return true; }

  PinnedPayloadStats stats() const;
  // The first refusal's message; empty while none happened.
  std::string lastFailure() const;

private:
  const CudaDevice &device_;
  const uint64_t retainBytes_;
  mutable std::mutex mutex_;
  std::multimap<size_t, void *> retained_; // by size
  PinnedPayloadStats stats_;
  std::string lastFailure_;
};

} // namespace v4rt::cuda
