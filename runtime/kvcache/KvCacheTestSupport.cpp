#include "runtime/kvcache/KvCacheTestSupport.h"

#include <atomic>
#include <fstream>
#include <vector>

#include <unistd.h>

#include "common/Error.h"

namespace v4rt::kvcache::test {

namespace fs = std::filesystem;

ScratchDirectory::ScratchDirectory() {
  static std::atomic<int> counter{0};
  path_ = fs::temp_directory_path() /
          ("v4kvcache-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  fs::remove_all(path_);
  fs::create_directories(path_);
}

ScratchDirectory::~ScratchDirectory() {
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

PageKey testKey(int64_t index, uint32_t seed) {
  std::vector<int32_t> tokens(16);
  for (size_t i = 0; i < tokens.size(); ++i)
    tokens[i] = static_cast<int32_t>(seed * 1000003u + static_cast<uint32_t>(index) * 131u + i);
  return chainKey(nullptr, tokens.data(), tokens.size(), kTestIdentity, "");
}

Page testPage(int64_t index, size_t payloadBytes, uint32_t seed) {
  Page page;
  page.key = testKey(index, seed);
  page.pageIndex = index;
  page.tokens = 128;
  std::vector<uint8_t> payload(payloadBytes);
  uint32_t state = seed * 2654435761u + static_cast<uint32_t>(index) + 1;
  for (uint8_t &byte : payload) {
    state = state * 1664525u + 1013904223u;
    byte = static_cast<uint8_t>(state >> 24);
  }
  page.payload = std::move(payload);
  return page;
}

PagePtr testPagePtr(int64_t index, size_t payloadBytes, uint32_t seed) {
  return std::make_shared<const Page>(testPage(index, payloadBytes, seed));
}

std::vector<uint8_t> readFileBytes(const fs::path &path) {
  std::ifstream in(path, std::ios::binary);
  v4c::check(bool(in), "cannot read " + path.string());
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void writeFileBytes(const fs::path &path, const std::vector<uint8_t> &bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  v4c::check(bool(out), "cannot write " + path.string());
  out.write(reinterpret_cast<const char *>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

} // namespace v4rt::kvcache::test
