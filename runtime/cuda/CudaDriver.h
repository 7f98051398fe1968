// The CUDA driver API, loaded at run time.
//
// v4run must start on machines without a GPU, so nothing links libcuda: the
// driver is dlopen'ed ("libcuda.so.1") the first time a GPU artifact is run
// and every entry point is resolved through cuGetProcAddress, which returns
// the version of each function matching the <cuda.h> this file was compiled
// against (cuda.h is used for types and signatures only).
#pragma once

#include <string>

#include <cuda.h>

#include "common/Error.h"

namespace v4rt::cuda {

// Thrown when there is no usable CUDA device (no driver, no device, wrong
// architecture): v4run prints it as one line; GPU tests skip on it.
class NoCudaDevice : public v4c::Error {
public:
  using v4c::Error::Error;
};

// Every driver entry point the backend calls. X(member, "cuName"): the member
// has the signature <cuda.h> gives `cuName` (macros such as cuMemAlloc ->
// cuMemAlloc_v2 pick the newest ABI) and is resolved by that base name.
#define V4_CUDA_DRIVER_FUNCTIONS(X)                                                                \
  X(cuGetErrorString, "cuGetErrorString")                                                          \
  X(cuGetErrorName, "cuGetErrorName")                                                              \
  X(cuDeviceGetCount, "cuDeviceGetCount")                                                          \
  X(cuDeviceGet, "cuDeviceGet")                                                                    \
  X(cuDeviceGetAttribute, "cuDeviceGetAttribute")                                                  \
  X(cuDeviceGetName, "cuDeviceGetName")                                                            \
  X(cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain")                                          \
  X(cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease")                                        \
  X(cuCtxSetCurrent, "cuCtxSetCurrent")                                                            \
  X(cuMemGetInfo, "cuMemGetInfo")                                                                  \
  X(cuMemAlloc, "cuMemAlloc")                                                                      \
  X(cuMemFree, "cuMemFree")                                                                        \
  X(cuMemAllocHost, "cuMemAllocHost")                                                              \
  X(cuMemFreeHost, "cuMemFreeHost")                                                                \
  X(cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync")                                                        \
  X(cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync")                                                        \
  X(cuMemcpyDtoDAsync, "cuMemcpyDtoDAsync")                                                        \
  X(cuMemsetD8Async, "cuMemsetD8Async")                                                            \
  X(cuModuleLoadData, "cuModuleLoadData")                                                          \
  X(cuModuleUnload, "cuModuleUnload")                                                              \
  X(cuModuleGetFunction, "cuModuleGetFunction")                                                    \
  X(cuFuncSetAttribute, "cuFuncSetAttribute")                                                      \
  X(cuFuncGetAttribute, "cuFuncGetAttribute")                                                      \
  X(cuLaunchKernel, "cuLaunchKernel")                                                              \
  X(cuStreamCreate, "cuStreamCreate")                                                              \
  X(cuStreamDestroy, "cuStreamDestroy")                                                            \
  X(cuStreamSynchronize, "cuStreamSynchronize")                                                    \
  X(cuStreamBeginCapture, "cuStreamBeginCapture")                                                  \
  X(cuStreamEndCapture, "cuStreamEndCapture")                                                      \
  X(cuGraphInstantiateWithFlags, "cuGraphInstantiateWithFlags")                                    \
  X(cuGraphLaunch, "cuGraphLaunch")                                                                \
  X(cuGraphExecDestroy, "cuGraphExecDestroy")                                                      \
  X(cuGraphDestroy, "cuGraphDestroy")                                                              \
  X(cuEventCreate, "cuEventCreate")                                                                \
  X(cuEventRecord, "cuEventRecord")                                                                \
  X(cuEventSynchronize, "cuEventSynchronize")                                                      \
  X(cuEventElapsedTime, "cuEventElapsedTime")                                                      \
  X(cuEventDestroy, "cuEventDestroy")

struct DriverApi {
#define V4_DECLARE_DRIVER_MEMBER(member, name) decltype(&::member) member = nullptr;
  V4_CUDA_DRIVER_FUNCTIONS(V4_DECLARE_DRIVER_MEMBER)
#undef V4_DECLARE_DRIVER_MEMBER
};

// The device a GPU artifact runs on: the loaded driver, device 0 and its
// primary context, made current on the calling thread.
class CudaDevice {
public:
  // Loads the driver and opens device 0 for an artifact compiled for
  // `target` ("sm_90a"). Throws NoCudaDevice "no CUDA device: <reason>; this
  // artifact targets <target>" when there is no driver or device, or the
  // device cannot run the target's code.
  static const CudaDevice &open(const std::string &target);

  const DriverApi &api() const { return api_; }
  CUdevice device() const { return device_; }
  CUcontext context() const { return context_; }
  int ccMajor() const { return ccMajor_; }
  int ccMinor() const { return ccMinor_; }
  const std::string &name() const { return name_; }
  int driverVersion() const { return driverVersion_; }
  int maxSharedPerBlockOptin() const { return maxSharedOptin_; }
  // Makes the primary context current on this thread (each thread that
  // calls the driver needs it once).
  void makeCurrent() const;

private:
  CudaDevice() = default;
  void load();

  DriverApi api_;
  void *library_ = nullptr;
  CUdevice device_ = 0;
  CUcontext context_ = nullptr;
  int ccMajor_ = 0, ccMinor_ = 0, driverVersion_ = 0, maxSharedOptin_ = 0;
  std::string name_;
};

// "cuLaunchKernel failed: CUDA_ERROR_INVALID_VALUE (invalid argument)" plus
// `what` (which step, which buffer) when given.
[[noreturn]] void throwCudaError(const DriverApi &api, CUresult result, const char *call,
                                 const std::string &what);

inline void checkCuda(const DriverApi &api, CUresult result, const char *call,
                      const std::string &what = {}) {
  if (result != CUDA_SUCCESS)
    throwCudaError(api, result, call, what);
}

} // namespace v4rt::cuda
