// Shared by the prefix-cache tests: compiled conformance artifacts, scratch
// directories, prompts and cold (cache-less) reference runs.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "runtime/Model.h"
#include "runtime/PrefixCache.h"
#include "runtime/TestArtifacts.h" // compiledConformanceCase, pseudoRandomIds

namespace v4rt::test {

// Compiles tests/conformance/<caseName> for the CPU with the built v4c (once
// per process and set of extra v4c options, e.g. "--decode-batch 1,4") and
// returns the artifact path.
std::string compiledArtifact(const std::string &caseName, const std::string &extraOptions = "");

// A fresh empty directory, removed with its contents on destruction.
class TempDir {
public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;
  const std::filesystem::path &path() const { return path_; }

private:
  std::filesystem::path path_;
};

struct Generation {
  std::vector<float> lastPromptLogits; // vocab floats
  std::vector<float> decodeLogits;     // steps x vocab (after each generated token)
  std::vector<int32_t> ids;            // greedy tokens
  int64_t tokensReused = 0;
};

// Greedy generation of `steps` tokens. Without a cache: a plain session and
// an AllRows prefill (the reference). With one: a LastRow prefill that may
// restore the cached prefix.
Generation generate(const Model &model, PrefixCache *cache, const std::vector<int32_t> &prompt,
                    int64_t steps);

// max |a - b| over the elements.
float maxAbsDifference(const std::vector<float> &a, const std::vector<float> &b);

// The disk file of page `index` of `prompt` under this cache's keys.
std::filesystem::path pageFile(const std::filesystem::path &directory, const PrefixCache &cache,
                               const std::vector<int32_t> &prompt, int64_t index);

PrefixCacheOptions diskOnly(const std::filesystem::path &directory);

} // namespace v4rt::test
