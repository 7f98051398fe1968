// `v4run info MODEL.v4a`: what an artifact holds, without running it:
// target, buckets, steps, kernels, device modules, weight bytes, dummy or not.
#pragma once

#include <string>

namespace v4run {

// Prints a table, then one JSON line (for scripts and tests). Returns 0.
int runInfo(const std::string &artifactPath);

} // namespace v4run
