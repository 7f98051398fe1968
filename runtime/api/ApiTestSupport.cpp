#include "runtime/api/ApiTestSupport.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>

#include <unistd.h>

#include "common/Error.h"

namespace v4rt::apitest {

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

std::string compiledCase(const std::string &caseName, const std::string &options) {
  static CompiledArtifacts compiled;
  const std::string key = caseName + " " + options;
  auto found = compiled.find(key);
  if (found != compiled.end())
    return found->second;
  fs::create_directories(TEST_SCRATCH_DIR);
  // One file per process: ctest may run several test processes at once.
  const std::string path = std::string(TEST_SCRATCH_DIR) + "/" + caseName + "-" + std::to_string(::getpid()) +
                           "-" + std::to_string(compiled.size()) + ".v4a";
  const std::string command = std::string(V4C_BINARY) + " compile " + CONFORMANCE_DIR + "/" + caseName + " " +
                              options + " -o " + path + " > " + path + ".log 2>&1";
  v4c::check(std::system(command.c_str()) == 0, "test setup failed: " + command);
  fs::remove(path + ".log");
  compiled[key] = path;
  return path;
}

std::string takeMessage(v4rt_status status) {
  if (!status)
    return "";
  std::string message = v4rt_status_message(status);
  v4rt_status_free(status);
  return message;
}

float maxRowRelativeError(const std::vector<float> &a, const std::vector<float> &b, int64_t vocab) {
  v4c::check(a.size() == b.size() && vocab > 0 && a.size() % static_cast<size_t>(vocab) == 0,
             "maxRowRelativeError: " + std::to_string(a.size()) + " vs " + std::to_string(b.size()) + " floats");
  float worst = 0.0f;
  for (size_t row = 0; row * vocab < a.size(); ++row) {
    float difference = 0.0f, scale = 0.0f;
    for (int64_t v = 0; v < vocab; ++v) {
      const size_t i = row * vocab + v;
      if (std::isnan(a[i]) || std::isnan(b[i]))
        return INFINITY;
      difference = std::max(difference, std::fabs(a[i] - b[i]));
      scale = std::max(scale, std::fabs(b[i]));
    }
    worst = std::max(worst, scale > 0.0f ? difference / scale : difference);
  }
  return worst;
}

std::vector<float> logitRow(const std::vector<float> &all, int64_t row, int64_t vocab) {
  return std::vector<float>(all.begin() + row * vocab, all.begin() + (row + 1) * vocab);
}

int32_t argmax(const std::vector<float> &logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

std::vector<int32_t> promptIds(int64_t count, int64_t vocab, uint32_t seed) {
  std::mt19937 generator(seed);
  std::uniform_int_distribution<int32_t> pick(2, static_cast<int32_t>(vocab - 1));
  std::vector<int32_t> ids(static_cast<size_t>(count));
  for (int32_t &id : ids)
    id = pick(generator);
  return ids;
}

} // namespace v4rt::apitest
