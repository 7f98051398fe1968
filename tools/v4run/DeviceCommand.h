// `v4run device --target sm_90a`: can this machine run artifacts of that
// target? Prints the device, or the one-line reason there is none. Scripts
// (GPU tests, bench/gpu_session.sh) use it to skip cleanly.
#pragma once

#include <string>

namespace v4run {

constexpr int kExitNoDevice = 2; // `device`: no usable CUDA device

int runDevice(const std::string &target);

} // namespace v4run
