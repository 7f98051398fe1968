// Test support: the emulated driver's test queries (tests/emulated-cuda,
// README "Test queries"), found with dlsym on the libcuda already loaded. A
// real driver has none of them, so tests that need one skip.
#pragma once

#include <dlfcn.h>

#include <cstddef>
#include <cstdint>

namespace v4rt::cuda {

struct EmulatorQueries {
  int (*isPinnedHost)(const void *, size_t) = nullptr;
  void (*setPinnedHostLimit)(size_t) = nullptr;
  void (*setDeviceMemoryLimit)(size_t) = nullptr;
  void (*failSubmission)(const char *call, unsigned long long nth) = nullptr;
  void (*failKernel)(unsigned long long nth) = nullptr;

  static EmulatorQueries find() {
    EmulatorQueries queries;
    void *driver = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    if (!driver)
      return queries;
    queries.isPinnedHost = reinterpret_cast<int (*)(const void *, size_t)>(dlsym(driver, "v4emuIsPinnedHost"));
    queries.setPinnedHostLimit = reinterpret_cast<void (*)(size_t)>(dlsym(driver, "v4emuSetPinnedHostLimit"));
    queries.setDeviceMemoryLimit = reinterpret_cast<void (*)(size_t)>(dlsym(driver, "v4emuSetDeviceMemoryLimit"));
    queries.failSubmission =
        reinterpret_cast<void (*)(const char *, unsigned long long)>(dlsym(driver, "v4emuFailSubmission"));
    queries.failKernel = reinterpret_cast<void (*)(unsigned long long)>(dlsym(driver, "v4emuFailKernel"));
    return queries;
  }

  // Lifts the limits and cancels pending fault injections (a test's TearDown).
  void reset() const {
    if (setPinnedHostLimit)
      setPinnedHostLimit(SIZE_MAX);
    if (setDeviceMemoryLimit)
      setDeviceMemoryLimit(SIZE_MAX);
    if (failSubmission)
      failSubmission("", 0);
    if (failKernel)
      failKernel(0);
  }
};

} // namespace v4rt::cuda
