#include "runtime/TestArtifacts.h"

#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>

#include <unistd.h>

#include "common/Error.h"

namespace v4rt::test {

namespace fs = std::filesystem;

namespace {
// Artifacts this process compiled, deleted when it exits.
struct CompiledArtifacts : std::map<std::string, std::string> {
  ~CompiledArtifacts() {
    std::error_code ignored;
    for (const auto &entry : *this)
      fs::remove(entry.second, ignored);
  }
};
} // namespace

std::string compiledConformanceCase(const std::string &caseName, const std::string &v4cOptions) {
  static CompiledArtifacts compiled;
  const std::string key = caseName + " " + v4cOptions;
  auto found = compiled.find(key);
  if (found != compiled.end())
    return found->second;
  fs::create_directories(TEST_SCRATCH_DIR);
  // One file per process: ctest may run several test processes at once.
  const std::string path = std::string(TEST_SCRATCH_DIR) + "/" + caseName + "-" + std::to_string(::getpid()) +
                           "-" + std::to_string(compiled.size()) + ".v4a";
  const std::string command = std::string(V4C_BINARY) + " compile " + CONFORMANCE_DIR + "/" + caseName + " " +
                              v4cOptions + " -o " + path + " > " + path + ".log 2>&1";
  v4c::check(std::system(command.c_str()) == 0, "test setup failed: " + command);
  fs::remove(path + ".log");
  compiled[key] = path;
  return path;
}

std::vector<int32_t> pseudoRandomIds(int64_t count, int64_t vocab, uint32_t seed) {
  std::mt19937 generator(seed);
  std::uniform_int_distribution<int32_t> pick(2, static_cast<int32_t>(vocab - 1));
  std::vector<int32_t> ids(static_cast<size_t>(count));
  for (int32_t &id : ids)
    id = pick(generator);
  return ids;
}

} // namespace v4rt::test
