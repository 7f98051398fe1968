#include "runtime/PrefixCacheTestSupport.h"

#include <algorithm>
#include <cmath>
#include <cstdlib> // mkdtemp

#include "common/Error.h"
#include "runtime/Session.h"

namespace v4rt::test {

namespace fs = std::filesystem;

std::string compiledArtifact(const std::string &caseName, const std::string &extraOptions) {
  return compiledConformanceCase(caseName, "--target cpu " + extraOptions);
}

TempDir::TempDir() {
  std::string pattern = (fs::temp_directory_path() / "v4rt-prefix-XXXXXX").string();
  v4c::check(::mkdtemp(pattern.data()) != nullptr, "mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

namespace {
int32_t argmax(const float *logits, int64_t vocab) {
  return static_cast<int32_t>(std::max_element(logits, logits + vocab) - logits);
}
} // namespace

Generation generate(const Model &model, PrefixCache *cache, const std::vector<int32_t> &prompt,
                    int64_t steps) {
  const int64_t V = model.vocabSize(), T = static_cast<int64_t>(prompt.size());
  Session session(model, cache);
  Generation out;
  if (cache) {
    out.lastPromptLogits.resize(static_cast<size_t>(V));
    out.tokensReused =
        session.prefill(prompt.data(), T, out.lastPromptLogits.data(), PrefillLogits::LastRow);
  } else {
    std::vector<float> all(static_cast<size_t>(T * V));
    session.prefill(prompt.data(), T, all.data());
    out.lastPromptLogits.assign(all.end() - V, all.end());
  }
  std::vector<float> logits = out.lastPromptLogits;
  for (int64_t i = 0; i < steps; ++i) {
    const int32_t next = argmax(logits.data(), V);
    out.ids.push_back(next);
    session.decode(next, logits.data());
    out.decodeLogits.insert(out.decodeLogits.end(), logits.begin(), logits.end());
  }
  return out;
}

float maxAbsDifference(const std::vector<float> &a, const std::vector<float> &b) {
  v4c::check(a.size() == b.size(), "maxAbsDifference: sizes differ");
  float worst = 0.0f;
  for (size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::fabs(a[i] - b[i]));
  return worst;
}

fs::path pageFile(const fs::path &directory, const PrefixCache &cache,
                  const std::vector<int32_t> &prompt, int64_t index) {
  const std::string hex = cache.prefixKeys(prompt.data(), index + 1).at(index).hex();
  return directory / hex.substr(0, 2) / (hex + ".page");
}

PrefixCacheOptions diskOnly(const fs::path &directory) {
  PrefixCacheOptions options;
  options.directory = directory.string();
  return options;
}

} // namespace v4rt::test
