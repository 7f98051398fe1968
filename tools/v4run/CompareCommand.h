// `v4run compare GPU.v4a CPU.v4a --prompt-ids 5,17,300`: runs the same
// prompt (prefill, then a few greedy decode steps) on a GPU artifact and a
// CPU artifact compiled from the same checkpoint with the same options except
// the target, one launch at a time, and compares every step's outputs. Prints
// per step the GPU entry, the CPU op and the max abs / rel error, and flags
// the first step over the tolerance: where a GPU kernel first goes wrong.
#pragma once

#include <cstdint>
#include <string>

namespace v4run {

struct CompareOptions {
  std::string gpuArtifact, cpuArtifact, promptIds;
  int64_t decodeSteps = 3;
  double tolerance = 1e-4; // max |gpu - cpu| / max |cpu| per output
  unsigned threads = 0;
  int64_t maxContext = 0;
  bool quiet = false; // print only steps over the tolerance and the summary
};

int runCompare(const CompareOptions &options);

} // namespace v4run
