// Writes a Program and its weight bytes as one .v4a file (layout in
// ArtifactFormat.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "runtime/artifact/Program.h"

namespace v4rt {

// Fills `dst` with exactly `size` bytes of weight `index`. `dst` points into
// the output file's mapping, so large weights are produced in place, never
// held twice in memory. May throw; the writer then removes its temp file.
using WeightSource = std::function<void(size_t index, uint8_t *dst, size_t size)>;

struct WriteOptions {
  // Place the blob at or after this offset (rounded up to 4096). The gap is a
  // sparse hole; tests use it to exercise offsets beyond 4 GiB cheaply.
  uint64_t minBlobOffset = 0;
  // Run checkProgram before writing. Only tests that craft invalid artifacts
  // (to exercise the reader) turn this off.
  bool validate = true;
};

// Writes `program` to `path`. Weight offsets, sizes and checksums are
// computed here (any values already in program.weights are replaced; a
// nonzero size must match the shape). The bytes of weight i come from
// program.weights[i].data when it is non-null, otherwise from `source`.
// The file is built as `path.tmp.<pid>`, fsynced and renamed over `path`, so
// `path` never names a half-written artifact. Throws v4c::Error.
void writeArtifact(const std::string &path, Program program, const WeightSource &source,
                   const WriteOptions &options = {});

} // namespace v4rt
