// Memory of the emulated driver: device allocations the host cannot touch,
// pinned host blocks, and the copies and memsets between them.
//
// Device memory is host memory mmap'ed PROT_NONE and opened only while a
// kernel or a driver copy runs (DeviceAccess); each allocation ends at a
// guard page; fresh allocations hold 0xFF bytes (junk, as on a GPU). A host
// dereference of a device pointer, or a kernel reading past its buffer,
// faults with a message naming it.
//
// When freeing waits (README.md, "Deferred execution"): cuMemFree runs every
// queue first (the driver synchronizes the device there in practice, and a
// queued kernel's pointers are opaque to the emulator); cuMemFreeHost does
// NOT wait: a queued copy that still uses the block aborts naming both calls
// (a use after free on a GPU).
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>

#include "Operation.h"

namespace v4emu::driver {
namespace {

const size_t kPage = static_cast<size_t>(sysconf(_SC_PAGESIZE));
constexpr size_t kAlignment = 256; // cudaMalloc's guarantee

struct Allocation {
  char *mapping;     // mmap'ed region: pages, then one guard page
  size_t mappedSize; // without the guard page
  size_t bytes;      // what was asked for
};

std::map<uintptr_t, Allocation> gDevice; // by the address handed out
std::map<void *, size_t> gPinnedSize;    // cuMemAllocHost blocks
size_t gPinnedBytes = 0;                 // held by cuMemAllocHost blocks
size_t gPinnedLimit = SIZE_MAX;          // v4emuSetPinnedHostLimit: cuMemAllocHost fails past it
uint64_t gAllocated = 0;
uint64_t gDeviceLimit = kDeviceMemoryBytes; // v4emuSetDeviceMemoryLimit: what the device holds
int gOpenDepth = 0;             // > 0 while device memory is readable
const char *gRunning = nullptr; // the kernel (or copy) running, for the fault message

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

// A copy: every device range must lie inside one allocation. `synchronous`:
// cuMemcpyHtoD/DtoH, on the legacy stream, complete at return.
CUresult copy(CUstream stream, uintptr_t dst, bool dstDevice, uintptr_t src, bool srcDevice, size_t bytes,
              const char *call, bool synchronous) {
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
  Operation op{Operation::Memcpy};
  op.call = call;
  op.dst = dst;
  op.src = src;
  op.bytes = bytes;
  bool pageable = false;
  if (!(dstDevice && srcDevice)) {
    op.host = dstDevice ? src : dst;
    op.writesHost = !dstDevice;
    pageable = !isPinned(reinterpret_cast<void *>(op.host), bytes);
  }
  if (pageable && invalidateCapture(stream)) // illegal on the GPU
    return fail(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "%s of pageable host memory while capturing", call);
  // The driver stages pageable memory: a copy from it returns once the
  // source was read, one to it once the copy completed; either way the
  // host may reuse the buffer at return.
  return submit(stream, std::move(op), synchronous || pageable);
}

} // namespace

DeviceAccess::DeviceAccess() {
  if (gOpenDepth++ == 0)
    for (auto &[address, allocation] : gDevice)
      mprotect(allocation.mapping, allocation.mappedSize, PROT_READ | PROT_WRITE);
}

DeviceAccess::~DeviceAccess() {
  if (--gOpenDepth == 0)
    for (auto &[address, allocation] : gDevice)
      mprotect(allocation.mapping, allocation.mappedSize, PROT_NONE);
}

void setRunning(const char *name) { gRunning = name; }

bool isPinned(const void *pointer, size_t bytes) {
  auto it = gPinnedSize.upper_bound(const_cast<void *>(pointer));
  if (it == gPinnedSize.begin())
    return false;
  --it;
  const auto offset = static_cast<const char *>(pointer) - static_cast<const char *>(it->first);
  return offset >= 0 && static_cast<size_t>(offset) + bytes <= it->second;
}

// ---- entry points -------------------------------------------------------------------------

CUresult emuMemGetInfo(size_t *free, size_t *total) {
  LOCKED;
  REQUIRE_INIT
  *total = gDeviceLimit;
  *free = gAllocated < gDeviceLimit ? gDeviceLimit - gAllocated : 0;
  return CUDA_SUCCESS;
}

CUresult emuMemAlloc(CUdeviceptr *pointer, size_t bytes) {
  LOCKED;
  REQUIRE_INIT
  if (bytes == 0)
    return fail(CUDA_ERROR_INVALID_VALUE, "cuMemAlloc of 0 bytes");
  if (CUresult r = forbiddenWhileCapturing("cuMemAlloc"); r != CUDA_SUCCESS)
    return r;
  if (gAllocated > gDeviceLimit || bytes > gDeviceLimit - gAllocated)
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
  // The device is synchronized first (module comment); the memory goes
  // even if that reports an earlier kernel's failure.
  const CUresult pending = synchronizeAll("cuMemFree");
  munmap(it->second.mapping, it->second.mappedSize + kPage);
  gAllocated -= it->second.bytes;
  gDevice.erase(it);
  return pending;
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
  checkNoQueuedHostUse(pointer, std::max<size_t>(pinned->second, 1), "cuMemFreeHost");
  gPinnedBytes -= pinned->second;
  gPinnedSize.erase(pinned);
  std::free(pointer);
  return CUDA_SUCCESS;
}

CUresult emuMemcpyHtoDAsync(CUdeviceptr dst, const void *src, size_t bytes, CUstream stream) {
  return copy(stream, dst, true, reinterpret_cast<uintptr_t>(src), false, bytes, "cuMemcpyHtoDAsync", false);
}
CUresult emuMemcpyDtoHAsync(void *dst, CUdeviceptr src, size_t bytes, CUstream stream) {
  return copy(stream, reinterpret_cast<uintptr_t>(dst), false, src, true, bytes, "cuMemcpyDtoHAsync", false);
}
CUresult emuMemcpyDtoDAsync(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream stream) {
  return copy(stream, dst, true, src, true, bytes, "cuMemcpyDtoDAsync", false);
}
// Synchronous copies run on the legacy stream: after the blocking streams'
// earlier work, not after a CU_STREAM_NON_BLOCKING stream's.
CUresult emuMemcpyHtoD(CUdeviceptr dst, const void *src, size_t bytes) {
  LOCKED;
  if (CUresult r = forbiddenWhileCapturing("cuMemcpyHtoD"); r != CUDA_SUCCESS)
    return r;
  return copy(nullptr, dst, true, reinterpret_cast<uintptr_t>(src), false, bytes, "cuMemcpyHtoD", true);
}
CUresult emuMemcpyDtoH(void *dst, CUdeviceptr src, size_t bytes) {
  LOCKED;
  if (CUresult r = forbiddenWhileCapturing("cuMemcpyDtoH"); r != CUDA_SUCCESS)
    return r;
  return copy(nullptr, reinterpret_cast<uintptr_t>(dst), false, src, true, bytes, "cuMemcpyDtoH", true);
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
  op.call = "cuMemsetD8Async";
  op.dst = dst;
  op.bytes = count;
  op.value = value;
  return submit(stream, std::move(op), false);
}

} // namespace v4emu::driver

using namespace v4emu::driver;

// Test queries (not CUDA; found with dlsym): whether [pointer, +bytes) lies
// in one cuMemAllocHost block; a cap on pinned bytes past which
// cuMemAllocHost fails with CUDA_ERROR_OUT_OF_MEMORY (SIZE_MAX: none); the
// device memory size, past which cuMemAlloc fails (SIZE_MAX: an H100's 80 GiB).
extern "C" {
__attribute__((visibility("default"))) int v4emuIsPinnedHost(const void *pointer, size_t bytes) {
  LOCKED;
  return isPinned(pointer, bytes) ? 1 : 0;
}

__attribute__((visibility("default"))) void v4emuSetPinnedHostLimit(size_t bytes) {
  LOCKED;
  gPinnedLimit = bytes;
}

__attribute__((visibility("default"))) void v4emuSetDeviceMemoryLimit(size_t bytes) {
  LOCKED;
  gDeviceLimit = std::min<uint64_t>(bytes, kDeviceMemoryBytes);
}
}
