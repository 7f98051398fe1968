// Internal to the emulated driver (EmulatedDriver.cpp, EmulatedModules.cpp):
// the shared lock, error reporting, and the loaded modules and functions.
#pragma once

#include <cuda.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "EmulatedModule.h"

namespace v4emu::driver {

// An error the emulator reports, with the reason on stderr ("emulated libcuda: ...").
CUresult fail(CUresult code, const char *format, ...) __attribute__((format(printf, 2, 3)));
// Every entry point holds this lock (kernels run under it).
std::recursive_mutex &driverLock();
bool initialized(); // cuInit was called
// Fails (and invalidates the capture) when any stream is capturing: `call`
// would synchronize or change memory a captured graph may use.
CUresult forbiddenWhileCapturing(const char *call);

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

CUresult emuModuleLoadData(CUmodule *module, const void *image);
CUresult emuModuleUnload(CUmodule handle);
CUresult emuModuleGetFunction(CUfunction *result, CUmodule handle, const char *name);
CUresult emuFuncSetAttribute(CUfunction handle, CUfunction_attribute attribute, int value);
CUresult emuFuncGetAttribute(int *value, CUfunction_attribute attribute, CUfunction handle);

} // namespace v4emu::driver

#define LOCKED std::lock_guard<std::recursive_mutex> guard(v4emu::driver::driverLock())
#define REQUIRE_INIT                                                                                     \
  if (!v4emu::driver::initialized())                                                                     \
    return CUDA_ERROR_NOT_INITIALIZED;
