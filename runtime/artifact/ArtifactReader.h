// Opens a .v4a file: maps it read-only, verifies everything, and exposes the
// Program with weights as views into the mapping (no copies).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/artifact/Program.h"

namespace v4rt {

struct OpenOptions {
  // Hash every weight (XXH3-64) at open. Costs one read of the file; turn it
  // off only where the file is known good (e.g. re-opened in the same run).
  bool verifyChecksums = true;
  // Dummy weights (`v4c compile --weights dummy`) have no bytes in the file.
  // true: generate them into host memory owned by the Artifact (the CPU
  // backend); false: leave their data null (a device backend fills its own
  // copies with v4_fill_dummy).
  bool generateDummyWeights = false;
};

class Artifact {
public:
  // Maps `path` and verifies, before using anything: the header (magic,
  // format version, sizes against the real file size), the manifest's
  // sha256, the flatbuffers Verifier, the schema version, every index,
  // offset and size (checkProgram, checkWeightLayout) and, by default, the
  // weight checksums. Throws v4c::Error "<path>: <problem>" on any failure.
  static std::unique_ptr<Artifact> open(const std::string &path, const OpenOptions &options = {});

  ~Artifact();
  Artifact(const Artifact &) = delete;
  Artifact &operator=(const Artifact &) = delete;

  // The verified program; weights[i].data points into the mapping and stays
  // valid while this Artifact lives.
  const Program &program() const { return program_; }
  // Hex sha256 of the manifest bytes: names exactly this compiled program.
  std::string identity() const { return identity_; }
  uint64_t fileSize() const { return fileSize_; }
  const std::string &path() const { return path_; }

private:
  Artifact() = default;
  void load(const OpenOptions &options);

  std::string path_;
  const uint8_t *mapping_ = nullptr;
  uint64_t fileSize_ = 0;
  Program program_;
  std::string identity_;
  // Host copies of generated dummy weights (generateDummyWeights), 8-byte aligned.
  std::vector<std::unique_ptr<uint64_t[]>> dummyStorage_;
};

// The target `path` was compiled for ("cpu", "sm_90a", ...), read by opening
// and verifying the artifact without hashing its weights: a caller picks the
// backend with it, and that backend's load checks the weights.
std::string readArtifactTarget(const std::string &path);

} // namespace v4rt
