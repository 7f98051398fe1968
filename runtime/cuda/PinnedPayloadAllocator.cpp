#include "runtime/cuda/PinnedPayloadAllocator.h"

#include <cstdio>

namespace v4rt::cuda {

PinnedPayloadAllocator::PinnedPayloadAllocator(const CudaDevice &device, uint64_t retainBytes)
    : device_(device), retainBytes_(retainBytes) {}

PinnedPayloadAllocator::~PinnedPayloadAllocator() {
  device_.api().cuCtxSetCurrent(device_.context());
  for (auto &[bytes, block] : retained_)
    device_.api().cuMemFreeHost(block);
}

void *PinnedPayloadAllocator::allocate(size_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  void *block = nullptr;
  if (auto found = retained_.find(bytes); found != retained_.end()) {
    block = found->second;
    retained_.erase(found);
    --stats_.retainedBlocks;
    stats_.retainedBytes -= bytes;
    ++stats_.reuses;
  } else {
    device_.makeCurrent();
    const DriverApi &api = device_.api();
    const CUresult result = api.cuMemAllocHost(&block, bytes);
    if (result != CUDA_SUCCESS) {
      ++stats_.failures;
      if (lastFailure_.empty()) {
        const char *text = nullptr;
        if (api.cuGetErrorString(result, &text) != CUDA_SUCCESS || !text)
          text = "unknown error";
        lastFailure_ = "cuMemAllocHost of " + std::to_string(bytes) + " bytes failed (" + text +
                       "): KV pages stay in pageable host memory (slower copies; cache stats: pin failures)";
        std::fprintf(stderr, "v4rt: warning: %s\n", lastFailure_.c_str());
      }
      return nullptr;
    }
    ++stats_.driverAllocations;
  }
  ++stats_.liveBlocks;
  stats_.liveBytes += bytes;
  return block;
}

void PinnedPayloadAllocator::release(void *block, size_t bytes) noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  --stats_.liveBlocks;
  stats_.liveBytes -= bytes;
  if (stats_.retainedBytes + bytes <= retainBytes_) {
    try {
      retained_.emplace(bytes, block);
      ++stats_.retainedBlocks;
      stats_.retainedBytes += bytes;
      return;
    } catch (...) { // no memory to remember it: free it instead
    }
  }
  // Unwinding or not, a failure here leaves nothing useful to do.
  device_.api().cuCtxSetCurrent(device_.context());
  device_.api().cuMemFreeHost(block);
}

PinnedPayloadStats PinnedPayloadAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

std::string PinnedPayloadAllocator::lastFailure() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return lastFailure_;
}

} // namespace v4rt::cuda
