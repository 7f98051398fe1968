// `v4run verify`: runs a conformance case's three modes against its golden file.
#pragma once

#include <string>

namespace v4run {

struct VerifyOptions {
  std::string artifact;
  std::string golden;
  double tolerance = 1e-4;
  unsigned threads = 0;
};

// Prints per-mode errors and the closing `verify:` line; returns the exit code.
int runVerify(const VerifyOptions &options);

} // namespace v4run
