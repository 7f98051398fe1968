// Internal to the emulated driver (EmulatedDriver.cpp, EmulatedMemory.cpp,
// EmulatedStreams.cpp, EmulatedModules.cpp): the shared lock, error
// reporting, memory queries, the loaded modules and functions, and the entry
// points each file implements.
#pragma once

#include <cuda.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "EmulatedModule.h"

namespace v4emu::driver {

constexpr uint64_t kDeviceMemoryBytes = 80ull << 30; // an H100's

// ---- diagnostics (EmulatedDriver.cpp) ---------------------------------------------

// An error the emulator reports, with the reason on stderr ("emulated libcuda: ...").
CUresult fail(CUresult code, const char *format, ...) __attribute__((format(printf, 2, 3)));
// A line on stderr ("emulated libcuda: ..."), no error.
void note(const char *format, ...) __attribute__((format(printf, 1, 2)));
// A runtime bug that corrupts memory on a real GPU (a use after free, a race
// with a DMA): the reason on stderr, then abort, so no test passes over it.
[[noreturn]] void fatal(const char *format, ...) __attribute__((format(printf, 1, 2)));
// Every entry point holds this lock (kernels run under it).
std::recursive_mutex &driverLock();
bool initialized(); // cuInit was called
// V4_EMU_EAGER=1 at cuInit: every async operation runs at submission (the
// emulator before deferral; for debugging).
bool eager();

// ---- memory (EmulatedMemory.cpp) ---------------------------------------------------

// Device memory is readable and writable only inside this scope (a kernel or
// a driver copy runs); nests.
class DeviceAccess {
public:
  DeviceAccess();
  ~DeviceAccess();
  DeviceAccess(const DeviceAccess &) = delete;
  DeviceAccess &operator=(const DeviceAccess &) = delete;
};
// The kernel (or copy) running, for the fault message; null between operations.
void setRunning(const char *name);
// Whether [pointer, +bytes) lies in one cuMemAllocHost block.
bool isPinned(const void *pointer, size_t bytes);

// ---- streams (EmulatedStreams.cpp) -------------------------------------------------

// Fails (and invalidates the capture) when any stream is capturing: `call`
// would synchronize or change memory a captured graph may use.
CUresult forbiddenWhileCapturing(const char *call);
bool anyCapturing();
// When `stream` captures: invalidates the capture (`call` is illegal there) and
// returns true.
bool invalidateCapture(CUstream stream);

struct Operation;
// Queues `op` on `stream` (records it while the stream captures). With
// `complete`, returns only after it ran: what the driver does for copies of
// pageable host memory and for synchronous copies.
CUresult submit(CUstream stream, Operation op, bool complete);
// Runs every queued operation of every stream (what `call` waits for).
CUresult synchronizeAll(const char *call);
// Aborts naming `call` when a queued copy still reads or writes host memory
// in [pointer, +bytes): freeing it now is a use after free on a real GPU.
void checkNoQueuedHostUse(const void *pointer, size_t bytes, const char *call);

// ---- modules (EmulatedModules.cpp) -------------------------------------------------

struct Module;

// A kernel of a loaded module: its host entry and parameter sizes.
struct Function {
  std::string name;
  V4EmuEntryFn body;
  std::vector<size_t> paramSizes;
  int maxDynamicShared = 48 * 1024;
  Module *module;
};

// A cubin's host build (V4_EMU_MODULE_DIR/<sha256>.so).
struct Module {
  void *library;
  V4EmuLaunchFn launch;
  std::map<std::string, std::unique_ptr<Function>> functions;
  std::vector<std::string> exported; // the cubin's kernels
};

Function *functionOf(CUfunction handle); // nullptr for an unknown handle

// ---- entry points, by file -------------------------------------------------------

CUresult emuModuleLoadData(CUmodule *module, const void *image);
CUresult emuModuleUnload(CUmodule handle);
CUresult emuModuleGetFunction(CUfunction *result, CUmodule handle, const char *name);
CUresult emuFuncSetAttribute(CUfunction handle, CUfunction_attribute attribute, int value);
CUresult emuFuncGetAttribute(int *value, CUfunction_attribute attribute, CUfunction handle);

CUresult emuMemGetInfo(size_t *free, size_t *total);
CUresult emuMemAlloc(CUdeviceptr *pointer, size_t bytes);
CUresult emuMemFree(CUdeviceptr pointer);
CUresult emuMemAllocHost(void **pointer, size_t bytes);
CUresult emuMemFreeHost(void *pointer);
CUresult emuMemcpyHtoDAsync(CUdeviceptr dst, const void *src, size_t bytes, CUstream stream);
CUresult emuMemcpyDtoHAsync(void *dst, CUdeviceptr src, size_t bytes, CUstream stream);
CUresult emuMemcpyDtoDAsync(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream stream);
CUresult emuMemcpyHtoD(CUdeviceptr dst, const void *src, size_t bytes);
CUresult emuMemcpyDtoH(void *dst, CUdeviceptr src, size_t bytes);
CUresult emuMemsetD8Async(CUdeviceptr dst, unsigned char value, size_t count, CUstream stream);

CUresult emuCtxSynchronize();
CUresult emuLaunchKernel(CUfunction handle, unsigned gridX, unsigned gridY, unsigned gridZ, unsigned blockX,
                         unsigned blockY, unsigned blockZ, unsigned sharedBytes, CUstream stream, void **kernelParams,
                         void **extra);
CUresult emuStreamCreate(CUstream *stream, unsigned flags);
CUresult emuStreamDestroy(CUstream handle);
CUresult emuStreamSynchronize(CUstream handle);
CUresult emuStreamQuery(CUstream handle);
CUresult emuStreamWaitEvent(CUstream handle, CUevent event, unsigned flags);
CUresult emuStreamBeginCapture(CUstream handle, CUstreamCaptureMode mode);
CUresult emuStreamEndCapture(CUstream handle, CUgraph *graph);
CUresult emuGraphInstantiateWithFlags(CUgraphExec *exec, CUgraph handle, unsigned long long flags);
CUresult emuGraphLaunch(CUgraphExec handle, CUstream stream);
CUresult emuGraphExecDestroy(CUgraphExec handle);
CUresult emuGraphDestroy(CUgraph handle);
CUresult emuEventCreate(CUevent *event, unsigned flags);
CUresult emuEventRecord(CUevent handle, CUstream stream);
CUresult emuEventQuery(CUevent handle);
CUresult emuEventSynchronize(CUevent handle);
CUresult emuEventElapsedTime(float *ms, CUevent start, CUevent end);
CUresult emuEventDestroy(CUevent handle);

} // namespace v4emu::driver

// Test query (EmulatedStreams.cpp): the nth later kernel to run fails.
extern "C" __attribute__((visibility("default"))) void v4emuFailKernel(unsigned long long nth);

#define LOCKED std::lock_guard<std::recursive_mutex> guard(v4emu::driver::driverLock())
#define REQUIRE_INIT                                                                                     \
  if (!v4emu::driver::initialized())                                                                     \
    return CUDA_ERROR_NOT_INITIALIZED;
