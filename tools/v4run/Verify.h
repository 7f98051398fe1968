// `v4run verify`: runs a conformance case's three modes against its golden file
// on either backend.
#pragma once

#include <cstdint>
#include <string>

namespace v4run {

struct VerifyOptions {
  std::string artifact;
  std::string golden;
  double tolerance = 1e-4;
  unsigned threads = 0;
  int64_t maxContext = 0; // GPU artifacts: session context (0: the config's)
  // Greedy tokens are exempt where the reference's top two logits differ by
  // at most this much. < 0: the tolerance for GPU artifacts (bf16 storage
  // moves near-ties), 0 (exact tokens) for cpu ones.
  double tokenMargin = -1.0;
  bool perPosition = false; // also print each position's relative error per mode
};

// Prints per-mode errors and the closing `verify:` line; returns the exit code.
int runVerify(const VerifyOptions &options);

} // namespace v4run
