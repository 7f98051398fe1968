// Shared fixtures for the artifact tests: a hand-built Program touching every
// field, its weight bytes, a scratch directory and file-patching helpers.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "runtime/artifact/Program.h"

namespace v4rt {

// Field-wise equality (Weight::data is ignored: it is a view, not content).
bool operator==(const ArgRef &a, const ArgRef &b);
bool operator==(const Attr &a, const Attr &b);
bool operator==(const Step &a, const Step &b);
bool operator==(const Bucket &a, const Bucket &b);
bool operator==(const Kernel &a, const Kernel &b);
bool operator==(const Module &a, const Module &b);
bool operator==(const CacheSlot &a, const CacheSlot &b);
bool operator==(const IoSlot &a, const IoSlot &b);
bool operator==(const Weight &a, const Weight &b);
bool operator==(const Program &a, const Program &b);

namespace testing_support {

// 2 buckets, steps using every ArgKind and attribute kind, 3 caches, io
// slots, and 4 weights of different dtypes (one of odd byte size). Weight
// offsets/sizes/checksums are left 0 for the writer to fill.
Program sampleProgram();

// Deterministic, distinct bytes for each weight of sampleProgram().
std::vector<std::vector<uint8_t>> samplePayloads(const Program &program);

// A WeightSource serving `payloads`.
std::function<void(size_t, uint8_t *, size_t)>
payloadSource(const std::vector<std::vector<uint8_t>> &payloads);

// A fresh directory under the system temp dir, removed on destruction.
class ScratchDir {
public:
  ScratchDir();
  ~ScratchDir();
  std::filesystem::path file(const std::string &name) const { return root_ / name; }
  std::vector<std::string> entries() const; // sorted file names
private:
  std::filesystem::path root_;
};

std::vector<uint8_t> readBytes(const std::filesystem::path &path);
void writeBytes(const std::filesystem::path &path, const std::vector<uint8_t> &bytes);

// Lets `edit` mutate the manifest in place (through the generated mutable
// flatbuffers API), then recomputes the header's sha256 so that only the
// reader's structural checks can catch the edit.
void patchManifest(const std::filesystem::path &path,
                   const std::function<void(uint8_t *manifest, size_t size)> &edit);

// Recomputes the header's manifest sha256 over the bytes now in the file.
void resealManifest(std::vector<uint8_t> &file);

// Returns the message of the v4c::Error that `action` throws, or "" (and a
// gtest failure) when it throws nothing.
std::string errorOf(const std::function<void()> &action);

} // namespace testing_support
} // namespace v4rt
