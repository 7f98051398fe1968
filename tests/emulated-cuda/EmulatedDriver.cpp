// An emulated CUDA driver (libcuda.so.1) that runs GPU artifacts on the CPU.
//
// Test infrastructure only (see README.md): v4run dlopens "libcuda.so.1", so
// pointing LD_LIBRARY_PATH here runs the REAL runtime (runtime/cuda) on the
// REAL generated kernels, compiled as host C++ (build_host_module.sh).
//
// What it emulates, and how it stays honest:
// - one device of compute capability 9.0 with H100 limits; every launch is
//   checked against them (grid, block, dynamic shared memory opt-in);
// - device memory is host memory that host code cannot touch: allocations
//   are mmap'ed PROT_NONE and opened only while a kernel or a driver copy
//   runs, each ends at a guard page, so a runtime bug that dereferences a
//   device pointer on the host, or a kernel reading past its buffer, faults
//   with a message naming the access, instead of passing by accident;
//   fresh allocations hold 0xFF bytes (NaN / -1), as real memory holds junk;
// - streams execute in order at the call (the host is the device), events
//   carry wall-clock time, stream capture records launches, memsets, copies
//   and event records into a graph that cuGraphLaunch replays; calls illegal
//   while capturing (synchronize, alloc, ...) fail and invalidate the capture
//   as on the hardware;
// - cuModuleLoadData (EmulatedModules.cpp) hashes the cubin (sha256 of the ELF image) and loads
//   $V4_EMU_MODULE_DIR/<sha256>.so, the host build of the same .cu; every
//   kernel the cubin exports must exist in it;
// - an entry point, device attribute or function attribute it does not
//   emulate is an error naming it (stderr), never a default.
#include <cuda.h>

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <utility>
#include <string>
#include <vector>

#include "DriverInternal.h"

namespace v4emu::driver {

// ---- diagnostics ----------------------------------------------------------------

void note(const char *format, ...) {
  va_list args;
  va_start(args, format);
  std::fputs("emulated libcuda: ", stderr);
  std::vfprintf(stderr, format, args);
  std::fputc('\n', stderr);
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
  std::fputs("emulated libcuda: ", stderr);
  std::vfprintf(stderr, format, args);
  std::fputc('\n', stderr);
  va_end(args);
  return code;
}

// ---- device memory ------------------------------------------------------------------

const size_t kPage = static_cast<size_t>(sysconf(_SC_PAGESIZE));
constexpr uint64_t kTotalMemory = 80ull << 30; // an H100's
constexpr size_t kAlignment = 256;             // cudaMalloc's guarantee

struct Allocation {
  char *mapping;     // mmap'ed region: pages, then one guard page
  size_t mappedSize; // without the guard page
  size_t bytes;      // what was asked for
};

std::recursive_mutex gLock;
std::recursive_mutex &driverLock() { return gLock; }
std::map<uintptr_t, Allocation> gDevice; // by the address handed out
std::set<void *> gPinned;
std::map<void *, size_t> gPinnedSize;
size_t gPinnedBytes = 0;             // held by cuMemAllocHost blocks
size_t gPinnedLimit = SIZE_MAX;      // v4emuSetPinnedHostLimit: cuMemAllocHost fails past it
uint64_t gAllocated = 0;
int gOpenDepth = 0; // > 0 while device memory is readable

// Device memory is accessible only inside this scope (a kernel or a copy).
class DeviceAccess {
public:
  DeviceAccess() {
    if (gOpenDepth++ == 0)
      for (auto &[address, allocation] : gDevice)
        mprotect(allocation.mapping, allocation.mappedSize, PROT_READ | PROT_WRITE);
  }
  ~DeviceAccess() {
    if (--gOpenDepth == 0)
      for (auto &[address, allocation] : gDevice)
        mprotect(allocation.mapping, allocation.mappedSize, PROT_NONE);
  }
};

// The allocation holding [address, address + bytes), or nullptr.
const Allocation *deviceRange(uintptr_t address, size_t bytes) {
  auto it = gDevice.upper_bound(address);
  if (it == gDevice.begin())
    return nullptr;
  --it;
  if (address - it->first > it->second.bytes || bytes > it->second.bytes - (address - it->first))
    return nullptr;
  return &it->second;
}

bool isDeviceAddress(uintptr_t address) {
  for (auto &[base, allocation] : gDevice)
    if (address >= reinterpret_cast<uintptr_t>(allocation.mapping) &&
        address < reinterpret_cast<uintptr_t>(allocation.mapping) + allocation.mappedSize + kPage)
      return true;
  return false;
}

const char *gRunning = nullptr; // the kernel (or copy) running, for the fault message

void onFault(int, siginfo_t *info, void *) {
  const uintptr_t address = reinterpret_cast<uintptr_t>(info->si_addr);
  char message[512];
  if (isDeviceAddress(address)) {
    if (gOpenDepth > 0)
      snprintf(message, sizeof message,
               "emulated libcuda: %s accessed device address 0x%lx outside every allocation (out of bounds: "
               "past the end of a buffer)\n",
               gRunning ? gRunning : "a kernel", static_cast<unsigned long>(address));
    else
      snprintf(message, sizeof message,
               "emulated libcuda: HOST code accessed device address 0x%lx (a device pointer dereferenced "
               "on the host: this crashes on a real GPU too)\n",
               static_cast<unsigned long>(address));
  } else {
    snprintf(message, sizeof message, "emulated libcuda: segmentation fault at 0x%lx%s%s\n",
             static_cast<unsigned long>(address), gRunning ? " while running " : "", gRunning ? gRunning : "");
  }
  (void)!write(STDERR_FILENO, message, strlen(message));
  signal(SIGSEGV, SIG_DFL);
  raise(SIGSEGV);
}

__attribute__((constructor)) void installFaultHandler() {
  struct sigaction action = {};
  action.sa_sigaction = onFault;
  action.sa_flags = SA_SIGINFO;
  sigaction(SIGSEGV, &action, nullptr);
}

// ---- streams, events, graphs ---------------------------------------------------------

struct Event {
  bool recorded = false;
  std::chrono::steady_clock::time_point at;
};
std::set<Event *> gEvents;

// One operation of a stream: run now, or recorded into a capture.
struct Operation {
  enum Kind { Launch, Memset, Memcpy, Record } kind;
  Function *function = nullptr;
  unsigned grid[3] = {}, block[3] = {}, shared = 0;
  std::vector<std::vector<unsigned char>> params; // copied at the call, as the driver does
  uintptr_t dst = 0, src = 0;
  size_t bytes = 0;
  unsigned char value = 0;
  Event *event = nullptr;
};

struct Graph {
  std::vector<Operation> operations;
};
std::set<Graph *> gGraphs;
std::set<Graph *> gExecs;

struct Stream {
  bool capturing = false;
  bool invalidated = false;
  Graph *capture = nullptr;
};
std::set<Stream *> gStreams;
Stream gLegacyStream; // the NULL stream

int gContextToken = 0;
CUcontext const kPrimaryContext = reinterpret_cast<CUcontext>(&gContextToken);
bool gInitialized = false;
bool initialized() { return gInitialized; }

Stream *streamOf(CUstream handle) {
  if (!handle || handle == CU_STREAM_LEGACY || handle == CU_STREAM_PER_THREAD)
    return &gLegacyStream;
  auto *stream = reinterpret_cast<Stream *>(handle);
  return gStreams.count(stream) ? stream : nullptr;
}

bool anyCapturing() {
  if (gLegacyStream.capturing)
    return true;
  for (Stream *stream : gStreams)
    if (stream->capturing)
      return true;
  return false;
}

// A call that is not allowed while any stream captures (it would synchronize
// or change memory the graph may use): invalidates the capture.
CUresult forbiddenWhileCapturing(const char *call) {
  bool capturing = false;
  for (Stream *stream : gStreams)
    if (stream->capturing) {
      stream->invalidated = true;
      capturing = true;
    }
  if (!capturing)
    return CUDA_SUCCESS;
  return fail(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "%s called while a stream is capturing a graph", call);
}

CUresult execute(const Operation &op) {
  DeviceAccess access;
  switch (op.kind) {
  case Operation::Launch: {
    std::vector<void *> params;
    for (const auto &bytes : op.params)
      params.push_back(const_cast<unsigned char *>(bytes.data()));
    gRunning = op.function->name.c_str();
    const auto start = std::chrono::steady_clock::now();
    const char *error = op.function->module->launch(op.function->body, params.data(), op.grid, op.block, op.shared);
    gRunning = nullptr;
    static const bool trace = std::getenv("V4_EMU_TRACE") != nullptr; // one line per launch, for localizing
    if (trace)
      note("launch %s grid (%u,%u,%u) block (%u,%u,%u) shared %u: %.1f ms", op.function->name.c_str(), op.grid[0],
           op.grid[1], op.grid[2], op.block[0], op.block[1], op.block[2], op.shared,
           std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    if (error)
      return fail(CUDA_ERROR_LAUNCH_FAILED, "kernel %s failed: %s", op.function->name.c_str(), error);
    return CUDA_SUCCESS;
  }
  case Operation::Memset:
    std::memset(reinterpret_cast<void *>(op.dst), op.value, op.bytes);
    return CUDA_SUCCESS;
  case Operation::Memcpy:
    std::memmove(reinterpret_cast<void *>(op.dst), reinterpret_cast<const void *>(op.src), op.bytes);
    return CUDA_SUCCESS;
  case Operation::Record:
    op.event->recorded = true;
    op.event->at = std::chrono::steady_clock::now();
    return CUDA_SUCCESS;
  }
  return CUDA_ERROR_INVALID_VALUE;
}

// Runs `op` on `stream` now, or records it when the stream captures.
CUresult submit(CUstream handle, Operation op, const char *call) {
  Stream *stream = streamOf(handle);
  if (!stream)
    return fail(CUDA_ERROR_INVALID_HANDLE, "%s: unknown stream %p", call, static_cast<void *>(handle));
  if (stream->capturing) {
    if (stream->invalidated)
      return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    stream->capture->operations.push_back(std::move(op));
    return CUDA_SUCCESS;
  }
  if (stream == &gLegacyStream && anyCapturing())
    return forbiddenWhileCapturing(call); // the legacy stream synchronizes with every stream
  return execute(op);
}

bool isPinned(const void *pointer, size_t bytes) {
  auto it = gPinnedSize.upper_bound(const_cast<void *>(pointer));
  if (it == gPinnedSize.begin())
    return false;
  --it;
  const auto offset = static_cast<const char *>(pointer) - static_cast<const char *>(it->first);
  return offset >= 0 && static_cast<size_t>(offset) + bytes <= it->second;
}

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
  *bytes = kTotalMemory;
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

CUresult emuCtxSynchronize() {
  LOCKED;
  REQUIRE_INIT
  return forbiddenWhileCapturing("cuCtxSynchronize");
}

CUresult emuMemGetInfo(size_t *free, size_t *total) {
  LOCKED;
  REQUIRE_INIT
  *total = kTotalMemory;
  *free = kTotalMemory - gAllocated;
  return CUDA_SUCCESS;
}

CUresult emuMemAlloc(CUdeviceptr *pointer, size_t bytes) {
  LOCKED;
  REQUIRE_INIT
  if (bytes == 0)
    return fail(CUDA_ERROR_INVALID_VALUE, "cuMemAlloc of 0 bytes");
  if (CUresult r = forbiddenWhileCapturing("cuMemAlloc"); r != CUDA_SUCCESS)
    return r;
  if (bytes > kTotalMemory - gAllocated)
    return CUDA_ERROR_OUT_OF_MEMORY;
  // The buffer ends (rounded to the alignment) right before a guard page.
  const size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  const size_t mapped = (rounded + kPage - 1) / kPage * kPage;
  void *mapping = mmap(nullptr, mapped + kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                       -1, 0);
  if (mapping == MAP_FAILED)
    return CUDA_ERROR_OUT_OF_MEMORY;
  char *base = static_cast<char *>(mapping) + (mapped - rounded);
  std::memset(base, 0xFF, bytes); // junk, as fresh device memory holds
  mprotect(static_cast<char *>(mapping) + mapped, kPage, PROT_NONE);
  if (gOpenDepth == 0)
    mprotect(mapping, mapped, PROT_NONE);
  gDevice[reinterpret_cast<uintptr_t>(base)] = Allocation{static_cast<char *>(mapping), mapped, bytes};
  gAllocated += bytes;
  *pointer = reinterpret_cast<CUdeviceptr>(base);
  return CUDA_SUCCESS;
}

CUresult emuMemFree(CUdeviceptr pointer) {
  LOCKED;
  REQUIRE_INIT
  if (pointer == 0)
    return CUDA_SUCCESS;
  if (CUresult r = forbiddenWhileCapturing("cuMemFree"); r != CUDA_SUCCESS)
    return r;
  auto it = gDevice.find(static_cast<uintptr_t>(pointer));
  if (it == gDevice.end())
    return fail(CUDA_ERROR_INVALID_VALUE, "cuMemFree(0x%llx): not an address cuMemAlloc returned",
                static_cast<unsigned long long>(pointer));
  munmap(it->second.mapping, it->second.mappedSize + kPage);
  gAllocated -= it->second.bytes;
  gDevice.erase(it);
  return CUDA_SUCCESS;
}

CUresult emuMemAllocHost(void **pointer, size_t bytes) {
  LOCKED;
  REQUIRE_INIT
  if (CUresult r = forbiddenWhileCapturing("cuMemAllocHost"); r != CUDA_SUCCESS)
    return r;
  if (gPinnedBytes + bytes > gPinnedLimit)
    return fail(CUDA_ERROR_OUT_OF_MEMORY, "cuMemAllocHost(%zu): over the test's pinned limit of %zu bytes", bytes,
                gPinnedLimit);
  void *memory = std::aligned_alloc(kAlignment, (std::max<size_t>(bytes, 1) + kAlignment - 1) / kAlignment * kAlignment);
  if (!memory)
    return CUDA_ERROR_OUT_OF_MEMORY;
  gPinnedSize[memory] = bytes;
  gPinnedBytes += bytes;
  *pointer = memory;
  return CUDA_SUCCESS;
}

CUresult emuMemFreeHost(void *pointer) {
  LOCKED;
  REQUIRE_INIT
  if (CUresult r = forbiddenWhileCapturing("cuMemFreeHost"); r != CUDA_SUCCESS)
    return r;
  auto pinned = gPinnedSize.find(pointer);
  if (pinned == gPinnedSize.end())
    return fail(CUDA_ERROR_INVALID_VALUE, "cuMemFreeHost(%p): not an address cuMemAllocHost returned", pointer);
  gPinnedBytes -= pinned->second;
  gPinnedSize.erase(pinned);
  std::free(pointer);
  return CUDA_SUCCESS;
}

// A copy or memset: every device range must lie inside one allocation.
CUresult copy(CUstream stream, uintptr_t dst, bool dstDevice, uintptr_t src, bool srcDevice, size_t bytes,
              const char *call) {
  LOCKED;
  REQUIRE_INIT
  if (bytes == 0)
    return CUDA_SUCCESS;
  if (dstDevice && !deviceRange(dst, bytes))
    return fail(CUDA_ERROR_INVALID_VALUE, "%s: destination [0x%lx, +%zu) is not inside one device allocation", call,
                static_cast<unsigned long>(dst), bytes);
  if (srcDevice && !deviceRange(src, bytes))
    return fail(CUDA_ERROR_INVALID_VALUE, "%s: source [0x%lx, +%zu) is not inside one device allocation", call,
                static_cast<unsigned long>(src), bytes);
  if ((!dstDevice && deviceRange(dst, 1)) || (!srcDevice && deviceRange(src, 1)))
    return fail(CUDA_ERROR_INVALID_VALUE, "%s: a host pointer argument is a device address", call);
  Stream *s = streamOf(stream);
  if (s && s->capturing) {
    // Capturing a copy from or to pageable host memory is illegal on the GPU.
    const uintptr_t host = dstDevice ? src : dst;
    if (!(dstDevice && srcDevice) && !isPinned(reinterpret_cast<void *>(host), bytes)) {
      s->invalidated = true;
      return fail(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "%s of pageable host memory while capturing", call);
    }
  }
  Operation op{Operation::Memcpy};
  op.dst = dst;
  op.src = src;
  op.bytes = bytes;
  return submit(stream, std::move(op), call);
}

CUresult emuMemcpyHtoDAsync(CUdeviceptr dst, const void *src, size_t bytes, CUstream stream) {
  return copy(stream, dst, true, reinterpret_cast<uintptr_t>(src), false, bytes, "cuMemcpyHtoDAsync");
}
CUresult emuMemcpyDtoHAsync(void *dst, CUdeviceptr src, size_t bytes, CUstream stream) {
  return copy(stream, reinterpret_cast<uintptr_t>(dst), false, src, true, bytes, "cuMemcpyDtoHAsync");
}
CUresult emuMemcpyDtoDAsync(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream stream) {
  return copy(stream, dst, true, src, true, bytes, "cuMemcpyDtoDAsync");
}
CUresult emuMemcpyHtoD(CUdeviceptr dst, const void *src, size_t bytes) {
  LOCKED;
  if (CUresult r = forbiddenWhileCapturing("cuMemcpyHtoD"); r != CUDA_SUCCESS)
    return r;
  return copy(nullptr, dst, true, reinterpret_cast<uintptr_t>(src), false, bytes, "cuMemcpyHtoD");
}
CUresult emuMemcpyDtoH(void *dst, CUdeviceptr src, size_t bytes) {
  LOCKED;
  if (CUresult r = forbiddenWhileCapturing("cuMemcpyDtoH"); r != CUDA_SUCCESS)
    return r;
  return copy(nullptr, reinterpret_cast<uintptr_t>(dst), false, src, true, bytes, "cuMemcpyDtoH");
}

CUresult emuMemsetD8Async(CUdeviceptr dst, unsigned char value, size_t count, CUstream stream) {
  LOCKED;
  REQUIRE_INIT
  if (count == 0)
    return CUDA_SUCCESS;
  if (!deviceRange(dst, count))
    return fail(CUDA_ERROR_INVALID_VALUE, "cuMemsetD8Async: [0x%llx, +%zu) is not inside one device allocation",
                static_cast<unsigned long long>(dst), count);
  Operation op{Operation::Memset};
  op.dst = dst;
  op.bytes = count;
  op.value = value;
  return submit(stream, std::move(op), "cuMemsetD8Async");
}

CUresult emuLaunchKernel(CUfunction handle, unsigned gridX, unsigned gridY, unsigned gridZ, unsigned blockX,
                         unsigned blockY, unsigned blockZ, unsigned sharedBytes, CUstream stream, void **kernelParams,
                         void **extra) {
  LOCKED;
  REQUIRE_INIT
  Function *function = functionOf(handle);
  if (!function)
    return fail(CUDA_ERROR_INVALID_HANDLE, "cuLaunchKernel: unknown function handle");
  const char *name = function->name.c_str();
  if (extra)
    return fail(CUDA_ERROR_NOT_SUPPORTED, "cuLaunchKernel(%s): `extra` parameter packing is not emulated", name);
  if (!kernelParams && !function->paramSizes.empty())
    return fail(CUDA_ERROR_INVALID_VALUE, "cuLaunchKernel(%s): kernelParams is null", name);
  const uint64_t threads = uint64_t{blockX} * blockY * blockZ;
  if (gridX == 0 || gridY == 0 || gridZ == 0 || gridX > 0x7fffffffu || gridY > 65535 || gridZ > 65535)
    return fail(CUDA_ERROR_INVALID_VALUE, "cuLaunchKernel(%s): grid (%u, %u, %u) outside the device's limits", name,
                gridX, gridY, gridZ);
  if (threads == 0 || threads > 1024 || blockX > 1024 || blockY > 1024 || blockZ > 64)
    return fail(CUDA_ERROR_INVALID_VALUE, "cuLaunchKernel(%s): block (%u, %u, %u) outside the device's limits", name,
                blockX, blockY, blockZ);
  if (static_cast<int>(sharedBytes) > function->maxDynamicShared)
    return fail(CUDA_ERROR_INVALID_VALUE,
                "cuLaunchKernel(%s): %u bytes of dynamic shared memory over the function's limit %d (opt in with "
                "cuFuncSetAttribute MAX_DYNAMIC_SHARED_SIZE_BYTES)", name, sharedBytes, function->maxDynamicShared);
  Operation op{Operation::Launch};
  op.function = function;
  op.grid[0] = gridX, op.grid[1] = gridY, op.grid[2] = gridZ;
  op.block[0] = blockX, op.block[1] = blockY, op.block[2] = blockZ;
  op.shared = sharedBytes;
  for (size_t i = 0; i < function->paramSizes.size(); ++i) {
    const auto *value = static_cast<const unsigned char *>(kernelParams[i]);
    op.params.emplace_back(value, value + function->paramSizes[i]);
  }
  return submit(stream, std::move(op), "cuLaunchKernel");
}

CUresult emuStreamCreate(CUstream *stream, unsigned) {
  LOCKED;
  REQUIRE_INIT
  auto *created = new Stream();
  gStreams.insert(created);
  *stream = reinterpret_cast<CUstream>(created);
  return CUDA_SUCCESS;
}

CUresult emuStreamDestroy(CUstream handle) {
  LOCKED;
  REQUIRE_INIT
  auto *stream = reinterpret_cast<Stream *>(handle);
  if (!gStreams.erase(stream))
    return CUDA_ERROR_INVALID_HANDLE;
  delete stream->capture;
  delete stream;
  return CUDA_SUCCESS;
}

CUresult emuStreamSynchronize(CUstream handle) {
  LOCKED;
  REQUIRE_INIT
  Stream *stream = streamOf(handle);
  if (!stream)
    return CUDA_ERROR_INVALID_HANDLE;
  if (stream->capturing || (stream == &gLegacyStream && anyCapturing())) {
    stream->invalidated = true;
    return fail(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "cuStreamSynchronize on a capturing stream");
  }
  return CUDA_SUCCESS; // work ran at submission
}

CUresult emuStreamBeginCapture(CUstream handle, CUstreamCaptureMode) {
  LOCKED;
  REQUIRE_INIT
  Stream *stream = streamOf(handle);
  if (!stream)
    return CUDA_ERROR_INVALID_HANDLE;
  if (stream == &gLegacyStream)
    return fail(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "cuStreamBeginCapture on the legacy NULL stream");
  if (stream->capturing)
    return fail(CUDA_ERROR_ILLEGAL_STATE, "cuStreamBeginCapture: the stream is already capturing");
  stream->capturing = true;
  stream->invalidated = false;
  stream->capture = new Graph();
  return CUDA_SUCCESS;
}

CUresult emuStreamEndCapture(CUstream handle, CUgraph *graph) {
  LOCKED;
  REQUIRE_INIT
  Stream *stream = streamOf(handle);
  if (!stream)
    return CUDA_ERROR_INVALID_HANDLE;
  if (!stream->capturing)
    return fail(CUDA_ERROR_ILLEGAL_STATE, "cuStreamEndCapture: the stream is not capturing");
  stream->capturing = false;
  Graph *captured = std::exchange(stream->capture, nullptr);
  if (stream->invalidated) {
    delete captured;
    *graph = nullptr;
    return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
  }
  gGraphs.insert(captured);
  *graph = reinterpret_cast<CUgraph>(captured);
  return CUDA_SUCCESS;
}

CUresult emuGraphInstantiateWithFlags(CUgraphExec *exec, CUgraph handle, unsigned long long) {
  LOCKED;
  REQUIRE_INIT
  auto *graph = reinterpret_cast<Graph *>(handle);
  if (!gGraphs.count(graph))
    return CUDA_ERROR_INVALID_HANDLE;
  auto *instance = new Graph(*graph);
  gExecs.insert(instance);
  *exec = reinterpret_cast<CUgraphExec>(instance);
  return CUDA_SUCCESS;
}

CUresult emuGraphLaunch(CUgraphExec handle, CUstream stream) {
  LOCKED;
  REQUIRE_INIT
  auto *exec = reinterpret_cast<Graph *>(handle);
  if (!gExecs.count(exec))
    return CUDA_ERROR_INVALID_HANDLE;
  Stream *s = streamOf(stream);
  if (!s)
    return CUDA_ERROR_INVALID_HANDLE;
  if (s->capturing) { // a graph launched into a capture becomes part of it
    for (const Operation &op : exec->operations)
      s->capture->operations.push_back(op);
    return CUDA_SUCCESS;
  }
  for (const Operation &op : exec->operations)
    if (CUresult r = execute(op); r != CUDA_SUCCESS)
      return r;
  return CUDA_SUCCESS;
}

CUresult emuGraphExecDestroy(CUgraphExec handle) {
  LOCKED;
  auto *exec = reinterpret_cast<Graph *>(handle);
  if (!gExecs.erase(exec))
    return CUDA_ERROR_INVALID_HANDLE;
  delete exec;
  return CUDA_SUCCESS;
}

CUresult emuGraphDestroy(CUgraph handle) {
  LOCKED;
  auto *graph = reinterpret_cast<Graph *>(handle);
  if (!gGraphs.erase(graph))
    return CUDA_ERROR_INVALID_HANDLE;
  delete graph;
  return CUDA_SUCCESS;
}

CUresult emuEventCreate(CUevent *event, unsigned) {
  LOCKED;
  REQUIRE_INIT
  auto *created = new Event();
  gEvents.insert(created);
  *event = reinterpret_cast<CUevent>(created);
  return CUDA_SUCCESS;
}

CUresult emuEventRecord(CUevent handle, CUstream stream) {
  LOCKED;
  REQUIRE_INIT
  auto *event = reinterpret_cast<Event *>(handle);
  if (!gEvents.count(event))
    return CUDA_ERROR_INVALID_HANDLE;
  Operation op{Operation::Record};
  op.event = event;
  return submit(stream, std::move(op), "cuEventRecord");
}

CUresult emuEventSynchronize(CUevent handle) {
  LOCKED;
  REQUIRE_INIT
  if (!gEvents.count(reinterpret_cast<Event *>(handle)))
    return CUDA_ERROR_INVALID_HANDLE;
  return forbiddenWhileCapturing("cuEventSynchronize");
}

CUresult emuEventElapsedTime(float *ms, CUevent startHandle, CUevent endHandle) {
  LOCKED;
  REQUIRE_INIT
  auto *start = reinterpret_cast<Event *>(startHandle);
  auto *end = reinterpret_cast<Event *>(endHandle);
  if (!gEvents.count(start) || !gEvents.count(end))
    return CUDA_ERROR_INVALID_HANDLE;
  if (!start->recorded || !end->recorded)
    return fail(CUDA_ERROR_INVALID_HANDLE, "cuEventElapsedTime: an event was never recorded");
  *ms = std::chrono::duration<float, std::milli>(end->at - start->at).count();
  return CUDA_SUCCESS;
}

CUresult emuEventDestroy(CUevent handle) {
  LOCKED;
  auto *event = reinterpret_cast<Event *>(handle);
  if (!gEvents.erase(event))
    return CUDA_ERROR_INVALID_HANDLE;
  delete event;
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
      V4EMU_ENTRY(cuStreamBeginCapture, emuStreamBeginCapture),
      V4EMU_ENTRY(cuStreamEndCapture, emuStreamEndCapture),
      V4EMU_ENTRY(cuGraphInstantiateWithFlags, emuGraphInstantiateWithFlags),
      V4EMU_ENTRY(cuGraphLaunch, emuGraphLaunch),
      V4EMU_ENTRY(cuGraphExecDestroy, emuGraphExecDestroy),
      V4EMU_ENTRY(cuGraphDestroy, emuGraphDestroy),
      V4EMU_ENTRY(cuEventCreate, emuEventCreate),
      V4EMU_ENTRY(cuEventRecord, emuEventRecord),
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

// Test queries (not CUDA; found with dlsym): whether [pointer, +bytes) lies
// in one cuMemAllocHost block, and a cap on pinned bytes past which
// cuMemAllocHost fails with CUDA_ERROR_OUT_OF_MEMORY (SIZE_MAX: none).
__attribute__((visibility("default"))) int v4emuIsPinnedHost(const void *pointer, size_t bytes) {
  LOCKED;
  return isPinned(pointer, bytes) ? 1 : 0;
}

__attribute__((visibility("default"))) void v4emuSetPinnedHostLimit(size_t bytes) {
  LOCKED;
  gPinnedLimit = bytes;
}
}
