// `v4run bench ARTIFACT --prompt-len P --decode N --batch B`: prefill speed,
// decode latency, the bytes a decode step must read and the roofline, then
// one JSON line. Runs on both backends. With B > 1, B sessions at context P
// decode together (continuous batching: the artifact's decode_B buckets):
// ms/token is then the time of one step, which yields B tokens.
#pragma once

#include <cstdint>
#include <string>

namespace v4run {

struct BenchOptions {
  std::string artifact;
  int64_t promptLength = 512;
  int64_t decodeSteps = 32;
  int64_t batch = 1;
  int64_t warmupSteps = 3; // decode steps before timing (the first one captures the graph)
  unsigned threads = 0;
  int64_t maxContext = 0;
  double bandwidth = 3.0e12; // bytes/s of the roofline (H100 SXM: ~3.0 TB/s measured)
  double prefillBudgetSeconds = 0; // > 0: stop the prefill after this long (decode at the context reached)
};

int runBench(const BenchOptions &options);

} // namespace v4run
