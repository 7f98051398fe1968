#include "tools/v4run/DeviceCommand.h"

#include <cstdio>

#include "common/Error.h"

#ifdef V4RUN_HAVE_CUDA
#include "runtime/cuda/CudaDriver.h"
#endif

namespace v4run {

int runDevice(const std::string &target) {
#ifdef V4RUN_HAVE_CUDA
  try {
    const v4rt::cuda::CudaDevice &device = v4rt::cuda::CudaDevice::open(target);
    size_t freeBytes = 0, totalBytes = 0;
    v4rt::cuda::checkCuda(device.api(), device.api().cuMemGetInfo(&freeBytes, &totalBytes), "cuMemGetInfo");
    std::printf("cuda: %s, compute capability %d.%d, driver %d.%d, %.1f of %.1f GiB free; runs %s\n",
                device.name().c_str(), device.ccMajor(), device.ccMinor(), device.driverVersion() / 1000,
                device.driverVersion() % 1000 / 10, freeBytes / 1073741824.0, totalBytes / 1073741824.0,
                target.c_str());
    return 0;
  } catch (const v4rt::cuda::NoCudaDevice &e) {
    std::fprintf(stderr, "%s\n", e.what());
    return kExitNoDevice;
  }
#else
  std::fprintf(stderr, "no CUDA device: this v4run was built without the CUDA backend (cuda.h was not found); "
                       "%s artifacts cannot run\n",
               target.c_str());
  return kExitNoDevice;
#endif
}

} // namespace v4run
