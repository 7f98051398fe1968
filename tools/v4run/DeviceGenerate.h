// `v4run generate` on a GPU artifact: the same output as the CPU path (ids on
// one line, then prefill and decode speed), through the CUDA backend.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/Sampler.h"

namespace v4run {

int runDeviceGenerate(const std::string &artifact, const std::vector<int32_t> &prompt, int64_t count,
                      const v4rt::SamplingOptions &sampling, int64_t maxContext);

} // namespace v4run
