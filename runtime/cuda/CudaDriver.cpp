#include "runtime/cuda/CudaDriver.h"

#include <dlfcn.h>

#include <memory>
#include <mutex>

#include "runtime/cuda/TargetArch.h"

namespace v4rt::cuda {
namespace {

using CuInitFn = CUresult (*)(unsigned int);
using CuDriverGetVersionFn = CUresult (*)(int *);
using CuGetProcAddressFn = CUresult (*)(const char *, void **, int, cuuint64_t,
                                        CUdriverProcAddressQueryResult *);

std::string versionText(int version) {
  return std::to_string(version / 1000) + "." + std::to_string(version % 1000 / 10);
}

// The raw name and description of a CUresult, without the DriverApi (used
// while the table is still being filled).
std::string resultText(CuGetProcAddressFn getProc, CUresult result) {
  using ErrorFn = CUresult (*)(CUresult, const char **);
  void *nameFn = nullptr, *stringFn = nullptr;
  std::string text = "error " + std::to_string(static_cast<int>(result));
  if (getProc && getProc("cuGetErrorName", &nameFn, CUDA_VERSION, CU_GET_PROC_ADDRESS_DEFAULT,
                         nullptr) == CUDA_SUCCESS &&
      nameFn) {
    const char *name = nullptr;
    if (reinterpret_cast<ErrorFn>(nameFn)(result, &name) == CUDA_SUCCESS && name)
      text = name;
  }
  if (getProc && getProc("cuGetErrorString", &stringFn, CUDA_VERSION, CU_GET_PROC_ADDRESS_DEFAULT,
                         nullptr) == CUDA_SUCCESS &&
      stringFn) {
    const char *description = nullptr;
    if (reinterpret_cast<ErrorFn>(stringFn)(result, &description) == CUDA_SUCCESS && description)
      text += std::string(" (") + description + ")";
  }
  return text;
}

} // namespace

void throwCudaError(const DriverApi &api, CUresult result, const char *call,
                    const std::string &what) {
  const char *name = nullptr, *description = nullptr;
  if (api.cuGetErrorName)
    api.cuGetErrorName(result, &name);
  if (api.cuGetErrorString)
    api.cuGetErrorString(result, &description);
  std::string message = std::string(call) + " failed: " +
                        (name ? name : "CUDA error " + std::to_string(static_cast<int>(result)));
  if (description)
    message += std::string(" (") + description + ")";
  if (!what.empty())
    message += " [" + what + "]";
  throw v4c::Error(message);
}

const CudaDevice &CudaDevice::open(const std::string &target) {
  parseTargetArch(target); // a malformed target is the artifact's fault, not the device's
  // One device per process: loaded on first use; a failure is remembered so
  // every later open reports the same reason.
  static std::once_flag once;
  static std::unique_ptr<CudaDevice> device;
  static std::string failure;
  std::call_once(once, [&] {
    auto opened = std::unique_ptr<CudaDevice>(new CudaDevice());
    try {
      opened->load();
      device = std::move(opened);
    } catch (const v4c::Error &e) {
      failure = e.what();
    }
  });
  if (!device)
    throw NoCudaDevice("no CUDA device: " + failure + "; this artifact targets " + target);
  const std::string mismatch = targetMismatch(target, device->ccMajor_, device->ccMinor_);
  if (!mismatch.empty())
    throw NoCudaDevice("no CUDA device: " + device->name_ + ": " + mismatch +
                       "; this artifact targets " + target);
  device->makeCurrent();
  return *device;
}

void CudaDevice::load() {
  library_ = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!library_) {
    const char *why = dlerror();
    throw v4c::Error(std::string("cannot load the CUDA driver: ") + (why ? why : "libcuda.so.1 not found"));
  }
  auto cuInit = reinterpret_cast<CuInitFn>(dlsym(library_, "cuInit"));
  auto cuDriverGetVersion = reinterpret_cast<CuDriverGetVersionFn>(dlsym(library_, "cuDriverGetVersion"));
  auto getProc = reinterpret_cast<CuGetProcAddressFn>(dlsym(library_, "cuGetProcAddress_v2"));
  if (!cuInit || !cuDriverGetVersion || !getProc)
    throw v4c::Error("libcuda.so.1 lacks cuInit/cuDriverGetVersion/cuGetProcAddress_v2 (driver older "
                     "than CUDA 12)");
  if (CUresult r = cuInit(0); r != CUDA_SUCCESS)
    throw v4c::Error("cuInit failed: " + resultText(getProc, r));
  if (CUresult r = cuDriverGetVersion(&driverVersion_); r != CUDA_SUCCESS)
    throw v4c::Error("cuDriverGetVersion failed: " + resultText(getProc, r));
  // Signatures come from the CUDA_VERSION headers: ask for exactly those.
  if (driverVersion_ < CUDA_VERSION)
    throw v4c::Error("the CUDA driver supports CUDA " + versionText(driverVersion_) +
                     "; this runtime needs a driver for CUDA " + versionText(CUDA_VERSION) +
                     " or newer");
#define V4_RESOLVE_DRIVER_MEMBER(member, name)                                                     \
  {                                                                                                \
    void *fn = nullptr;                                                                            \
    CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_SUCCESS;                           \
    CUresult r = getProc(name, &fn, CUDA_VERSION, CU_GET_PROC_ADDRESS_DEFAULT, &status);          \
    if (r != CUDA_SUCCESS || !fn || status != CU_GET_PROC_ADDRESS_SUCCESS)                         \
      throw v4c::Error(std::string("the CUDA driver has no ") + name + " for CUDA " +              \
                       versionText(CUDA_VERSION));                                                 \
    api_.member = reinterpret_cast<decltype(api_.member)>(fn);                                     \
  }
  V4_CUDA_DRIVER_FUNCTIONS(V4_RESOLVE_DRIVER_MEMBER)
#undef V4_RESOLVE_DRIVER_MEMBER

  int count = 0;
  checkCuda(api_, api_.cuDeviceGetCount(&count), "cuDeviceGetCount");
  if (count == 0)
    throw v4c::Error("the CUDA driver sees no device");
  checkCuda(api_, api_.cuDeviceGet(&device_, 0), "cuDeviceGet");
  char name[256] = {};
  checkCuda(api_, api_.cuDeviceGetName(name, sizeof(name) - 1, device_), "cuDeviceGetName");
  name_ = name;
  checkCuda(api_, api_.cuDeviceGetAttribute(&ccMajor_, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device_),
            "cuDeviceGetAttribute");
  checkCuda(api_, api_.cuDeviceGetAttribute(&ccMinor_, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device_),
            "cuDeviceGetAttribute");
  checkCuda(api_,
            api_.cuDeviceGetAttribute(&maxSharedOptin_, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN,
                                      device_),
            "cuDeviceGetAttribute");
  checkCuda(api_, api_.cuDevicePrimaryCtxRetain(&context_, device_), "cuDevicePrimaryCtxRetain");
  // The primary context is never released: it lives as long as the process.
}

void CudaDevice::makeCurrent() const {
  checkCuda(api_, api_.cuCtxSetCurrent(context_), "cuCtxSetCurrent");
}

} // namespace v4rt::cuda
