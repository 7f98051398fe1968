// The interface between the emulated CUDA driver (EmulatedDriver.cpp) and a
// host module: a generated kernels.cu compiled as host C++ with
// codegen/cuda/testing/HostEmulation.h (see build_host_module.sh).
//
// A host module exports, for every `extern "C" __global__` entry NAME:
//   void   NAME__emu(void **params)          one CUDA thread of NAME, its
//                                            arguments unpacked from params
//   size_t NAME__emu_params(const size_t **) the entry's parameter sizes
// and once:
//   const char *v4emu_launch(body, params, grid, block, sharedBytes)
//                                            runs body for every thread of
//                                            the grid; nullptr or an error.
// The driver finds entries by these names, so a kernel the module lacks is an
// error (CUDA_ERROR_NOT_FOUND), never a silent no-op.
#pragma once

#include <cstddef>

extern "C" {
using V4EmuEntryFn = void (*)(void **params);
using V4EmuParamsFn = size_t (*)(const size_t **sizes);
using V4EmuLaunchFn = const char *(*)(V4EmuEntryFn body, void **params, const unsigned grid[3],
                                      const unsigned block[3], unsigned sharedBytes);
}

#define V4EMU_ENTRY_SUFFIX "__emu"
#define V4EMU_PARAMS_SUFFIX "__emu_params"
#define V4EMU_LAUNCH_SYMBOL "v4emu_launch"
