// Helpers shared by the kvcache tests: scratch directories and test pages.
#pragma once

#include <filesystem>
#include <string>

#include "runtime/kvcache/Page.h"

namespace v4rt::kvcache::test {

// A fresh empty directory, removed with everything in it on destruction.
class ScratchDirectory {
public:
  ScratchDirectory();
  ~ScratchDirectory();
  ScratchDirectory(const ScratchDirectory &) = delete;
  ScratchDirectory &operator=(const ScratchDirectory &) = delete;
  const std::filesystem::path &path() const { return path_; }

private:
  std::filesystem::path path_;
};

// The key of page `index` of a synthetic prompt whose tokens depend on `seed`.
PageKey testKey(int64_t index, uint32_t seed = 0);
// A page with that key and `payloadBytes` bytes of seed-dependent content.
Page testPage(int64_t index, size_t payloadBytes, uint32_t seed = 0);
PagePtr testPagePtr(int64_t index, size_t payloadBytes, uint32_t seed = 0);

std::vector<uint8_t> readFileBytes(const std::filesystem::path &path);
void writeFileBytes(const std::filesystem::path &path, const std::vector<uint8_t> &bytes);

inline constexpr const char *kTestIdentity = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";

} // namespace v4rt::kvcache::test
