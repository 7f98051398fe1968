// RAII owners of driver objects: device memory, pinned host memory, streams,
// events. Each frees its object in the destructor (errors there are ignored:
// nothing useful can be done with them while unwinding).
#pragma once

#include <cstdint>
#include <exception>
#include <string>
#include <utility>

#include "runtime/cuda/CudaDriver.h"

namespace v4rt::cuda {

class DeviceBuffer {
public:
  DeviceBuffer() = default;
  // `what` names the buffer in the out-of-memory error.
  DeviceBuffer(const DriverApi &api, uint64_t bytes, const std::string &what) : api_(&api), bytes_(bytes) {
    if (bytes == 0)
      return;
    const CUresult r = api.cuMemAlloc(&ptr_, bytes);
    if (r != CUDA_SUCCESS)
      throwCudaError(api, r, "cuMemAlloc", what + ", " + std::to_string(bytes) + " bytes");
  }
  // An allocation that may not fit: an empty buffer (get() == 0) when the
  // device is out of memory; any other failure throws as the constructor does.
  static DeviceBuffer allocateIfRoom(const DriverApi &api, uint64_t bytes, const std::string &what) {
    DeviceBuffer buffer;
    if (bytes == 0)
      return buffer;
    const CUresult r = api.cuMemAlloc(&buffer.ptr_, bytes);
    if (r == CUDA_ERROR_OUT_OF_MEMORY)
      return DeviceBuffer();
    if (r != CUDA_SUCCESS)
      throwCudaError(api, r, "cuMemAlloc", what + ", " + std::to_string(bytes) + " bytes");
    buffer.api_ = &api;
    buffer.bytes_ = bytes;
    return buffer;
  }
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(DeviceBuffer &&other) noexcept { *this = std::move(other); }
  DeviceBuffer &operator=(DeviceBuffer &&other) noexcept {
    if (this != &other) {
      reset();
      api_ = other.api_;
      ptr_ = std::exchange(other.ptr_, 0);
      bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer &) = delete;
  DeviceBuffer &operator=(const DeviceBuffer &) = delete;

  CUdeviceptr get() const { return ptr_; }
  uint64_t bytes() const { return bytes_; }

private:
  void reset() {
    if (ptr_ && api_)
      api_->cuMemFree(ptr_);
    ptr_ = 0;
  }
  const DriverApi *api_ = nullptr;
  CUdeviceptr ptr_ = 0;
  uint64_t bytes_ = 0;
};

// Page-locked host memory: the only kind an async copy really overlaps with.
class PinnedBuffer {
public:
  PinnedBuffer() = default;
  PinnedBuffer(const DriverApi &api, uint64_t bytes, const std::string &what) : api_(&api), bytes_(bytes) {
    if (bytes == 0)
      return;
    const CUresult r = api.cuMemAllocHost(&ptr_, bytes);
    if (r != CUDA_SUCCESS)
      throwCudaError(api, r, "cuMemAllocHost", what + ", " + std::to_string(bytes) + " bytes");
  }
  ~PinnedBuffer() {
    if (ptr_ && api_)
      api_->cuMemFreeHost(ptr_);
  }
  PinnedBuffer(PinnedBuffer &&other) noexcept
      : api_(other.api_), ptr_(std::exchange(other.ptr_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
  PinnedBuffer &operator=(PinnedBuffer &&other) noexcept {
    std::swap(api_, other.api_);
    std::swap(ptr_, other.ptr_);
    std::swap(bytes_, other.bytes_);
    return *this;
  }
  PinnedBuffer(const PinnedBuffer &) = delete;
  PinnedBuffer &operator=(const PinnedBuffer &) = delete;

  template <typename T = uint8_t> T *data() const { return static_cast<T *>(ptr_); }
  uint64_t bytes() const { return bytes_; }

private:
  const DriverApi *api_ = nullptr;
  void *ptr_ = nullptr;
  uint64_t bytes_ = 0;
};

class Stream {
public:
  explicit Stream(const DriverApi &api) : api_(api) {
    checkCuda(api, api.cuStreamCreate(&stream_, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
  }
  ~Stream() { api_.cuStreamDestroy(stream_); }
  Stream(const Stream &) = delete;
  Stream &operator=(const Stream &) = delete;

  CUstream get() const { return stream_; }
  void synchronize(const std::string &what = {}) const {
    checkCuda(api_, api_.cuStreamSynchronize(stream_), "cuStreamSynchronize", what);
  }

private:
  const DriverApi &api_;
  CUstream stream_ = nullptr;
};

class Event {
public:
  explicit Event(const DriverApi &api) : api_(api) {
    checkCuda(api, api.cuEventCreate(&event_, CU_EVENT_DEFAULT), "cuEventCreate");
  }
  ~Event() { api_.cuEventDestroy(event_); }
  Event(const Event &) = delete;
  Event &operator=(const Event &) = delete;

  void record(CUstream stream) const { checkCuda(api_, api_.cuEventRecord(event_, stream), "cuEventRecord"); }
  void wait() const { checkCuda(api_, api_.cuEventSynchronize(event_), "cuEventSynchronize"); }
  // Milliseconds from `start` to this event (both recorded, this one waited for).
  float millisecondsSince(const Event &start) const {
    checkCuda(api_, api_.cuEventSynchronize(event_), "cuEventSynchronize");
    float ms = 0.0f;
    checkCuda(api_, api_.cuEventElapsedTime(&ms, start.event_, event_), "cuEventElapsedTime");
    return ms;
  }

private:
  const DriverApi &api_;
  CUevent event_ = nullptr;
};

// Waits for `stream` when its scope is left by an exception. A failed driver
// call part way through queuing copies unwinds past host buffers the earlier,
// still queued copies read or write (pinned payloads, snapshots, pages): a
// DMA must not outlive them (use after free on a GPU). Declared after those
// buffers, so it runs before they go. A context lost to a failed kernel runs
// nothing more, so its error is ignored here; the caller reports it.
class DrainOnUnwind {
public:
  DrainOnUnwind(const DriverApi &api, CUstream stream)
      : api_(api), stream_(stream), exceptions_(std::uncaught_exceptions()) {}
  ~DrainOnUnwind() {
    if (std::uncaught_exceptions() > exceptions_)
      api_.cuStreamSynchronize(stream_);
  }
  DrainOnUnwind(const DrainOnUnwind &) = delete;
  DrainOnUnwind &operator=(const DrainOnUnwind &) = delete;

private:
  const DriverApi &api_;
  CUstream stream_;
  int exceptions_;
};

} // namespace v4rt::cuda
