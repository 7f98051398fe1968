// `v4run consistency GPU.v4a --swa-cache S [--cache-device-bytes N]
// [--cache-host-bytes N]`: prefix reuse inside one process. Session A
// prefills a prompt (storing its pages), session B prefills the same prompt
// and must restore a prefix (prefill tokens saved > 0) and give A's logits
// for the prompt's last row and every greedy decode step. The pages live in
// the device tier, the host tier or both (a small device tier demotes to the
// host and a hit promotes back); restores from the device tier copy device
// to device.
#pragma once

#include <cstdint>
#include <string>

namespace v4run {

struct PrefixReuseOptions {
  std::string artifact;
  std::string swaCache = "full";
  int64_t promptLength = 70;
  int64_t decodeSteps = 2;
  uint64_t deviceTierBytes = 0; // 0 and no host budget: 64 MiB of host tier
  uint64_t hostTierBytes = 0;
  double tolerance = 1e-5;      // max relative error per row
  int64_t maxContext = 0;
  uint64_t deviceKvBytes = 0;
};

int runPrefixReuseCheck(const PrefixReuseOptions &options);

} // namespace v4run
