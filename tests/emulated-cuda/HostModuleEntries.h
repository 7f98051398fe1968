// The exports of a host module (EmulatedModule.h), included at the end of
// the generated wrapper after kernels.cu: V4EMU_EXPORT_ENTRY(name) per
// `extern "C" __global__` entry, and v4emu_launch once.
#pragma once

#include <cstddef>
#include <exception>
#include <string>
#include <type_traits>
#include <utility>

#include "EmulatedModule.h"

namespace v4emu::module {

// Calls `entry` with its arguments read from params[i] (cuLaunchKernel's
// kernelParams: a pointer to each argument's value), by the entry's own types.
template <typename... Args, size_t... I>
void callUnpacked(void (*entry)(Args...), void **params, std::index_sequence<I...>) {
  entry(*static_cast<std::remove_cv_t<Args> *>(params[I])...);
}
template <typename... Args> void call(void (*entry)(Args...), void **params) {
  callUnpacked(entry, params, std::index_sequence_for<Args...>{});
}

template <typename... Args> size_t paramSizes(void (*)(Args...), const size_t **sizes) {
  static const size_t table[] = {sizeof(Args)..., 0}; // the 0 keeps a no-argument table legal
  *sizes = table;
  return sizeof...(Args);
}

} // namespace v4emu::module

#define V4EMU_EXPORT_ENTRY(name)                                                                           \
  extern "C" __attribute__((visibility("default"))) void name##__emu(void **params) {                     \
    v4emu::module::call(&name, params);                                                                    \
  }                                                                                                        \
  extern "C" __attribute__((visibility("default"))) size_t name##__emu_params(const size_t **sizes) {       \
    return v4emu::module::paramSizes(&name, sizes);                                                        \
  }

// Runs the whole grid through the host emulation's launch; an error (bad
// geometry, shared memory overrun, an exception in a kernel) comes back as text.
extern "C" __attribute__((visibility("default"))) const char *v4emu_launch(V4EmuEntryFn body, void **params,
                                                                          const unsigned grid[3],
                                                                          const unsigned block[3],
                                                                          unsigned sharedBytes) {
  static std::string error;
  try {
    v4emu::launch(dim3(grid[0], grid[1], grid[2]), dim3(block[0], block[1], block[2]), sharedBytes,
                  [&] { body(params); });
    return nullptr;
  } catch (const std::exception &e) {
    error = e.what();
    return error.c_str();
  }
}
