// `v4run generate` on a GPU artifact: the same output as the CPU path (ids on
// one line, then prefill and decode speed), through the CUDA backend; with a
// cache directory or budget, prefix reuse through the device -> host -> disk
// page tiers and the same `prefix hit: N tokens reused` report.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/PrefixCache.h"
#include "runtime/Sampler.h"

namespace v4run {

class Runner;

struct DeviceGenerateOptions {
  int64_t maxContext = 0;         // 0: the config's
  uint64_t deviceKvBytes = 0;     // device KV pool (0: from free memory)
  // Prefix reuse: on when `cache` has a directory or a host budget, or
  // cacheDeviceBytes > 0 (the "device" page tier).
  v4rt::PrefixCacheOptions cache;
  uint64_t cacheDeviceBytes = 0;
  bool cached() const { return !cache.directory.empty() || cache.hostBytes > 0 || cacheDeviceBytes > 0; }
};

// One line: the device KV pool's budget, use, preemptions and swaps (GPU runners).
void printKvPool(const Runner &runner);

int runDeviceGenerate(const std::string &artifact, const std::vector<int32_t> &prompt, int64_t count,
                      const v4rt::SamplingOptions &sampling, const DeviceGenerateOptions &options);

} // namespace v4run
