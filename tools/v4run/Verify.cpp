#include "tools/v4run/Verify.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "common/Error.h"
#include "frontend/Safetensors.h"
#include "runtime/Sampler.h"
#include "runtime/api/v4rt.hpp"

namespace v4run {
namespace {

struct Golden {
  std::vector<int32_t> inputIds, decodeIds;
  int64_t chunkSplit = 0;
  std::vector<float> prefillLogits, chunkedLogits, decodeLogits;
};

Golden readGolden(const std::string &path, int64_t vocab) {
  auto file = v4c::SafetensorsFile::open(path);
  auto tensor = [&](const char *name) -> const v4c::TensorView & {
    const v4c::TensorView *view = file->find(name);
    v4c::check(view != nullptr, path + ": golden file has no tensor \"" + name + "\"");
    return *view;
  };
  Golden g;
  g.inputIds = v4c::toI32(tensor("input_ids"));
  g.decodeIds = v4c::toI32(tensor("decode_ids"));
  g.chunkSplit = v4c::toI32(tensor("chunk_split")).at(0);
  g.prefillLogits = v4c::toF32(tensor("prefill_logits"));
  g.chunkedLogits = v4c::toF32(tensor("chunked_logits"));
  g.decodeLogits = v4c::toF32(tensor("decode_logits"));
  const size_t T = g.inputIds.size(), N = g.decodeIds.size();
  v4c::check(g.prefillLogits.size() == T * vocab && g.chunkedLogits.size() == T * vocab &&
                 g.decodeLogits.size() == N * vocab,
             path + ": golden logits do not match the artifact's vocab size " + std::to_string(vocab));
  v4c::check(g.chunkSplit > 0 && g.chunkSplit < static_cast<int64_t>(T),
             path + ": chunk_split out of range");
  return g;
}

// max over rows of ||ours - ref|| / ||ref||
double maxRelativeError(const std::vector<float> &ours, const std::vector<float> &ref,
                        int64_t vocab) {
  double worst = 0.0;
  for (size_t row = 0; row * vocab < ref.size(); ++row) {
    double diff = 0.0, norm = 0.0;
    for (int64_t v = 0; v < vocab; ++v) {
      const double r = ref[row * vocab + v], d = ours[row * vocab + v] - r;
      diff += d * d;
      norm += r * r;
    }
    worst = std::max(worst, std::sqrt(diff) / std::max(std::sqrt(norm), 1e-30));
  }
  return worst;
}

} // namespace

int runVerify(const VerifyOptions &options) {
  v4rt::ModelHandle model(options.artifact, options.threads);
  const int64_t V = model.vocabSize();
  const Golden g = readGolden(options.golden, V);
  const int64_t T = static_cast<int64_t>(g.inputIds.size());

  // 1. The whole prompt (in the artifact's prefill chunks).
  std::vector<float> prefill;
  {
    v4rt::SessionHandle session(model);
    prefill = session.prefill(g.inputIds);
  }
  // 2. Two chunks split where the reference split them.
  std::vector<float> chunked;
  {
    v4rt::SessionHandle session(model);
    chunked = session.prefill({g.inputIds.begin(), g.inputIds.begin() + g.chunkSplit});
    auto rest = session.prefill({g.inputIds.begin() + g.chunkSplit, g.inputIds.end()});
    chunked.insert(chunked.end(), rest.begin(), rest.end());
  }
  // 3. Prompt, then the reference's greedy tokens one at a time.
  std::vector<float> decode;
  size_t tokensMatched = 0;
  {
    v4rt::SessionHandle session(model);
    auto logits = session.prefill(g.inputIds);
    int32_t predicted = v4rt::argmax(logits.data() + (T - 1) * V, V);
    for (int32_t id : g.decodeIds) {
      tokensMatched += predicted == id;
      auto step = session.decode(id);
      decode.insert(decode.end(), step.begin(), step.end());
      predicted = v4rt::argmax(step.data(), V);
    }
  }
  const double ePrefill = maxRelativeError(prefill, g.prefillLogits, V);
  const double eChunked = maxRelativeError(chunked, g.chunkedLogits, V);
  const double eDecode = maxRelativeError(decode, g.decodeLogits, V);
  const size_t N = g.decodeIds.size();
  std::printf("verify: prefill %.3e chunked %.3e decode %.3e tokens %zu/%zu\n", ePrefill, eChunked,
              eDecode, tokensMatched, N);
  std::fflush(stdout);
  const bool ok = ePrefill <= options.tolerance && eChunked <= options.tolerance &&
                  eDecode <= options.tolerance && tokensMatched == N;
  if (!ok)
    std::fprintf(stderr, "verify: FAILED (tolerance %.1e)\n", options.tolerance);
  return ok ? 0 : 1;
}

} // namespace v4run
