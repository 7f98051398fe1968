// `v4run info MODEL.v4a`: what an artifact holds, without running it:
// target, buckets, steps, kernels, device modules, weight bytes, dummy or not.
#pragma once

#include <string>

namespace v4run {

// Prints a table, then one JSON line (for scripts and tests). Returns 0.
// verifyChecksums: hash every stored weight against the manifest's checksum
// first (one read of the file), so a damaged weight is an error here too, not
// only when the artifact runs; off (--no-checksums) reads the manifest only.
int runInfo(const std::string &artifactPath, bool verifyChecksums);

} // namespace v4run
