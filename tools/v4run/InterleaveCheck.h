// `v4run consistency GPU.v4a --sessions N --pool-sessions K`: N sessions run
// interleaved (prefills and decode steps in turn) through a device KV pool
// that holds K of them, so sessions are preempted to host memory and swapped
// back in between their steps. Each session's greedy tokens and logits must
// equal those of the same session run alone, and the pool must have
// preempted at least once (else the check proves nothing and fails).
#pragma once

#include <cstdint>
#include <string>

namespace v4run {

struct InterleaveOptions {
  std::string artifact;
  int64_t sessions = 4;
  int64_t poolSessions = 2;
  int64_t promptLength = 5; // session i's prompt has promptLength + 2 i tokens
  int64_t decodeSteps = 2;
  double tolerance = 1e-5;  // max relative error per logits row (same kernels, same inputs)
  int64_t maxContext = 0;
};

int runInterleaveCheck(const InterleaveOptions &options);

} // namespace v4run
