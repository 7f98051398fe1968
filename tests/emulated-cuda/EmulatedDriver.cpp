// An emulated CUDA driver (libcuda.so.1) that runs GPU artifacts on the CPU.
//
// Test infrastructure only (see README.md): v4run dlopens "libcuda.so.1", so
// pointing LD_LIBRARY_PATH here runs the REAL runtime (runtime/cuda) on the
// REAL generated kernels, compiled as host C++ (build_host_module.sh).
//
// What it emulates, and how it stays honest:
// - one device of compute capability 9.0 with H100 limits; every launch is
//   checked against them (grid, block, dynamic shared memory opt-in);
// - device memory the host cannot touch, guard pages, junk in fresh
//   allocations (EmulatedMemory.cpp);
// - streams that run their work LATER, where a real driver guarantees
//   completion (synchronize, events, pageable copies), so host code that
//   reads, rewrites or frees a buffer an async copy still uses fails here
//   too; stream capture and graph replay (EmulatedStreams.cpp);
// - cuModuleLoadData (EmulatedModules.cpp) hashes the cubin (sha256 of the ELF image) and loads
//   $V4_EMU_MODULE_DIR/<sha256>.so, the host build of the same .cu; every
//   kernel the cubin exports must exist in it;
// - an entry point, device attribute or function attribute it does not
//   emulate is an error naming it (stderr), never a default.
// This file: diagnostics, device and context queries, the entry point table.
#include <cuda.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>

#include "DriverInternal.h"

namespace v4emu::driver {

// ---- diagnostics ----------------------------------------------------------------

void printLine(const char *format, va_list args) {
  std::fputs("emulated libcuda: ", stderr);
  std::vfprintf(stderr, format, args);
  std::fputc('\n', stderr);
}

void note(const char *format, ...) {
  va_list args;
  va_start(args, format);
  printLine(format, args);
  va_end(args);
}

struct ErrorText {
  CUresult code;
  const char *name, *text;
};
const ErrorText kErrors[] = {
    {CUDA_SUCCESS, "CUDA_SUCCESS", "no error"},
    {CUDA_ERROR_INVALID_VALUE, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
    {CUDA_ERROR_OUT_OF_MEMORY, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
    {CUDA_ERROR_NOT_INITIALIZED, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
    {CUDA_ERROR_INVALID_CONTEXT, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
    {CUDA_ERROR_INVALID_IMAGE, "CUDA_ERROR_INVALID_IMAGE", "device kernel image is invalid"},
    {CUDA_ERROR_FILE_NOT_FOUND, "CUDA_ERROR_FILE_NOT_FOUND", "file not found"},
    {CUDA_ERROR_INVALID_HANDLE, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
    {CUDA_ERROR_NOT_FOUND, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
    {CUDA_ERROR_NOT_READY, "CUDA_ERROR_NOT_READY", "device not ready"},
    {CUDA_ERROR_LAUNCH_FAILED, "CUDA_ERROR_LAUNCH_FAILED", "unspecified launch failure"},
    {CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES, "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES", "too many resources requested for launch"},
    {CUDA_ERROR_NOT_SUPPORTED, "CUDA_ERROR_NOT_SUPPORTED", "operation not supported"},
    {CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED",
     "operation not permitted when stream is capturing"},
    {CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED",
     "operation failed due to a previous error during capture"},
    {CUDA_ERROR_ILLEGAL_STATE, "CUDA_ERROR_ILLEGAL_STATE", "the operation cannot be performed in the present state"},
    {CUDA_ERROR_INVALID_DEVICE, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
};

// An error the emulator reports, with the reason on stderr.
CUresult fail(CUresult code, const char *format, ...) {
  va_list args;
  va_start(args, format);
  printLine(format, args);
  va_end(args);
  return code;
}

void fatal(const char *format, ...) {
  va_list args;
  va_start(args, format);
  printLine(format, args);
  va_end(args);
  std::fflush(stderr);
  std::abort();
}

std::recursive_mutex gLock;
std::recursive_mutex &driverLock() { return gLock; }

int gContextToken = 0;
CUcontext const kPrimaryContext = reinterpret_cast<CUcontext>(&gContextToken);
bool gInitialized = false;
bool gEager = false;
bool initialized() { return gInitialized; }
bool eager() { return gEager; }

// ---- the entry points ---------------------------------------------------------------------

CUresult emuGetErrorString(CUresult error, const char **text) {
  for (const ErrorText &e : kErrors)
    if (e.code == error) {
      *text = e.text;
      return CUDA_SUCCESS;
    }
  *text = nullptr;
  return CUDA_ERROR_INVALID_VALUE;
}

CUresult emuGetErrorName(CUresult error, const char **name) {
  for (const ErrorText &e : kErrors)
    if (e.code == error) {
      *name = e.name;
      return CUDA_SUCCESS;
    }
  *name = nullptr;
  return CUDA_ERROR_INVALID_VALUE;
}

CUresult emuDeviceGetCount(int *count) {
  REQUIRE_INIT
  *count = 1;
  return CUDA_SUCCESS;
}

CUresult emuDeviceGet(CUdevice *device, int ordinal) {
  REQUIRE_INIT
  if (ordinal != 0)
    return CUDA_ERROR_INVALID_DEVICE;
  *device = 0;
  return CUDA_SUCCESS;
}

CUresult emuDeviceGetName(char *name, int length, CUdevice device) {
  REQUIRE_INIT
  if (device != 0 || length <= 0)
    return CUDA_ERROR_INVALID_VALUE;
  snprintf(name, static_cast<size_t>(length), "Emulated H100 (host CPU)");
  return CUDA_SUCCESS;
}

CUresult emuDeviceTotalMem(size_t *bytes, CUdevice device) {
  REQUIRE_INIT
  if (device != 0)
    return CUDA_ERROR_INVALID_DEVICE;
  *bytes = kDeviceMemoryBytes;
  return CUDA_SUCCESS;
}

CUresult emuDeviceGetAttribute(int *value, CUdevice_attribute attribute, CUdevice device) {
  REQUIRE_INIT
  if (device != 0)
    return CUDA_ERROR_INVALID_DEVICE;
  static const std::map<CUdevice_attribute, int> kAttributes = {
      {CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 9},
      {CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, 0},
      {CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, 1024},
      {CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X, 1024},
      {CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y, 1024},
      {CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z, 64},
      {CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X, 0x7fffffff},
      {CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y, 65535},
      {CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z, 65535},
      {CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK, 48 * 1024},
      {CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, 232448},
      {CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR, 233472},
      {CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY, 65536},
      {CU_DEVICE_ATTRIBUTE_WARP_SIZE, 32},
      {CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK, 65536},
      {CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 132},
      {CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR, 2048},
      {CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE, 50 << 20},
      {CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH, 5120},
      {CU_DEVICE_ATTRIBUTE_INTEGRATED, 0},
      {CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING, 1},
      {CU_DEVICE_ATTRIBUTE_CONCURRENT_KERNELS, 1},
      {CU_DEVICE_ATTRIBUTE_COMPUTE_MODE, CU_COMPUTEMODE_DEFAULT},
  };
  auto it = kAttributes.find(attribute);
  if (it == kAttributes.end())
    return fail(CUDA_ERROR_INVALID_VALUE, "cuDeviceGetAttribute: attribute %d is not emulated (add it to "
                                          "EmulatedDriver.cpp)", static_cast<int>(attribute));
  *value = it->second;
  return CUDA_SUCCESS;
}

CUresult emuPrimaryCtxRetain(CUcontext *context, CUdevice device) {
  REQUIRE_INIT
  if (device != 0)
    return CUDA_ERROR_INVALID_DEVICE;
  *context = kPrimaryContext;
  return CUDA_SUCCESS;
}

CUresult emuPrimaryCtxRelease(CUdevice device) {
  REQUIRE_INIT
  return device == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
}

CUresult emuCtxSetCurrent(CUcontext context) {
  REQUIRE_INIT
  if (context && context != kPrimaryContext)
    return fail(CUDA_ERROR_INVALID_CONTEXT, "cuCtxSetCurrent: %p is not the primary context",
                static_cast<void *>(context));
  return CUDA_SUCCESS;
}

CUresult emuCtxGetCurrent(CUcontext *context) {
  REQUIRE_INIT
  *context = kPrimaryContext;
  return CUDA_SUCCESS;
}

// Every entry point by base name, each checked against <cuda.h>'s signature
// (the macros there pick the ABI version, e.g. cuMemAlloc -> cuMemAlloc_v2).
#define V4EMU_ENTRY(name, impl)                                                                          \
  {                                                                                                      \
    #name, [] {                                                                                          \
      decltype(&::name) typed = impl;                                                                    \
      return reinterpret_cast<void *>(typed);                                                            \
    }()                                                                                                  \
  }
const std::map<std::string, void *> &entryPoints() {
  static const std::map<std::string, void *> table = {
      V4EMU_ENTRY(cuGetErrorString, emuGetErrorString),
      V4EMU_ENTRY(cuGetErrorName, emuGetErrorName),
      V4EMU_ENTRY(cuDeviceGetCount, emuDeviceGetCount),
      V4EMU_ENTRY(cuDeviceGet, emuDeviceGet),
      V4EMU_ENTRY(cuDeviceGetName, emuDeviceGetName),
      V4EMU_ENTRY(cuDeviceTotalMem, emuDeviceTotalMem),
      V4EMU_ENTRY(cuDeviceGetAttribute, emuDeviceGetAttribute),
      V4EMU_ENTRY(cuDevicePrimaryCtxRetain, emuPrimaryCtxRetain),
      V4EMU_ENTRY(cuDevicePrimaryCtxRelease, emuPrimaryCtxRelease),
      V4EMU_ENTRY(cuCtxSetCurrent, emuCtxSetCurrent),
      V4EMU_ENTRY(cuCtxGetCurrent, emuCtxGetCurrent),
      V4EMU_ENTRY(cuCtxSynchronize, emuCtxSynchronize),
      V4EMU_ENTRY(cuMemGetInfo, emuMemGetInfo),
      V4EMU_ENTRY(cuMemAlloc, emuMemAlloc),
      V4EMU_ENTRY(cuMemFree, emuMemFree),
      V4EMU_ENTRY(cuMemAllocHost, emuMemAllocHost),
      V4EMU_ENTRY(cuMemFreeHost, emuMemFreeHost),
      V4EMU_ENTRY(cuMemcpyHtoD, emuMemcpyHtoD),
      V4EMU_ENTRY(cuMemcpyDtoH, emuMemcpyDtoH),
      V4EMU_ENTRY(cuMemcpyHtoDAsync, emuMemcpyHtoDAsync),
      V4EMU_ENTRY(cuMemcpyDtoHAsync, emuMemcpyDtoHAsync),
      V4EMU_ENTRY(cuMemcpyDtoDAsync, emuMemcpyDtoDAsync),
      V4EMU_ENTRY(cuMemsetD8Async, emuMemsetD8Async),
      V4EMU_ENTRY(cuModuleLoadData, emuModuleLoadData),
      V4EMU_ENTRY(cuModuleUnload, emuModuleUnload),
      V4EMU_ENTRY(cuModuleGetFunction, emuModuleGetFunction),
      V4EMU_ENTRY(cuFuncSetAttribute, emuFuncSetAttribute),
      V4EMU_ENTRY(cuFuncGetAttribute, emuFuncGetAttribute),
      V4EMU_ENTRY(cuLaunchKernel, emuLaunchKernel),
      V4EMU_ENTRY(cuStreamCreate, emuStreamCreate),
      V4EMU_ENTRY(cuStreamDestroy, emuStreamDestroy),
      V4EMU_ENTRY(cuStreamSynchronize, emuStreamSynchronize),
      V4EMU_ENTRY(cuStreamQuery, emuStreamQuery),
      V4EMU_ENTRY(cuStreamWaitEvent, emuStreamWaitEvent),
      V4EMU_ENTRY(cuStreamBeginCapture, emuStreamBeginCapture),
      V4EMU_ENTRY(cuStreamEndCapture, emuStreamEndCapture),
      V4EMU_ENTRY(cuGraphInstantiateWithFlags, emuGraphInstantiateWithFlags),
      V4EMU_ENTRY(cuGraphLaunch, emuGraphLaunch),
      V4EMU_ENTRY(cuGraphExecDestroy, emuGraphExecDestroy),
      V4EMU_ENTRY(cuGraphDestroy, emuGraphDestroy),
      V4EMU_ENTRY(cuEventCreate, emuEventCreate),
      V4EMU_ENTRY(cuEventRecord, emuEventRecord),
      V4EMU_ENTRY(cuEventQuery, emuEventQuery),
      V4EMU_ENTRY(cuEventSynchronize, emuEventSynchronize),
      V4EMU_ENTRY(cuEventElapsedTime, emuEventElapsedTime),
      V4EMU_ENTRY(cuEventDestroy, emuEventDestroy),
  };
  return table;
}

CUresult getProcAddress(const char *symbol, void **function, CUdriverProcAddressQueryResult *status) {
  if (!symbol || !function)
    return CUDA_ERROR_INVALID_VALUE;
  const auto &table = entryPoints();
  auto it = table.find(symbol);
  if (it == table.end()) {
    *function = nullptr;
    if (status)
      *status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    return fail(CUDA_ERROR_NOT_FOUND, "%s is not emulated (add it to tests/emulated-cuda/EmulatedDriver.cpp)",
                symbol);
  }
  *function = it->second;
  if (status)
    *status = CU_GET_PROC_ADDRESS_SUCCESS;
  return CUDA_SUCCESS;
}

} // namespace v4emu::driver

using namespace v4emu::driver;

// The symbols a loader finds with dlsym; everything else through cuGetProcAddress.
extern "C" {
__attribute__((visibility("default"))) CUresult cuInit(unsigned int flags) {
  LOCKED;
  if (flags != 0)
    return CUDA_ERROR_INVALID_VALUE;
  gInitialized = true;
  const char *eagerValue = std::getenv("V4_EMU_EAGER"); // read here: a test may set it between inits
  gEager = eagerValue && *eagerValue && std::strcmp(eagerValue, "0") != 0;
  // A kernel that fails part way through a whole v4run (its error paths).
  if (const char *nth = std::getenv("V4_EMU_FAIL_KERNEL"); nth && *nth)
    v4emuFailKernel(std::strtoull(nth, nullptr, 10));
  return CUDA_SUCCESS;
}

__attribute__((visibility("default"))) CUresult cuDriverGetVersion(int *version) {
  if (!version)
    return CUDA_ERROR_INVALID_VALUE;
  *version = CUDA_VERSION; // the headers this emulator implements
  return CUDA_SUCCESS;
}

__attribute__((visibility("default"))) CUresult cuGetProcAddress_v2(const char *symbol, void **function, int,
                                                                     cuuint64_t,
                                                                     CUdriverProcAddressQueryResult *status) {
  return getProcAddress(symbol, function, status);
}

__attribute__((visibility("default"))) CUresult cuGetErrorString(CUresult error, const char **text) {
  return emuGetErrorString(error, text);
}

__attribute__((visibility("default"))) CUresult cuGetErrorName(CUresult error, const char **name) {
  return emuGetErrorName(error, name);
}

}
