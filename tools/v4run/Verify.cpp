#include "tools/v4run/Verify.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>

#include "common/Error.h"
#include "frontend/Safetensors.h"
#include "runtime/Sampler.h"
#include "tools/v4run/Runner.h"

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

// ||ours - ref|| / ||ref|| of each row.
std::vector<double> rowRelativeErrors(const std::vector<float> &ours, const std::vector<float> &ref,
                                      int64_t vocab) {
  std::vector<double> errors;
  for (size_t row = 0; row * vocab < ref.size(); ++row) {
    double diff = 0.0, norm = 0.0;
    for (int64_t v = 0; v < vocab; ++v) {
      const double r = ref[row * vocab + v], d = ours[row * vocab + v] - r;
      diff += d * d;
      norm += r * r;
    }
    errors.push_back(std::sqrt(diff) / std::max(std::sqrt(norm), 1e-30));
  }
  return errors;
}

// max over rows of ||ours - ref|| / ||ref||; with `label`, prints every row's.
double maxRelativeError(const std::vector<float> &ours, const std::vector<float> &ref, int64_t vocab,
                        const char *label) {
  const std::vector<double> errors = rowRelativeErrors(ours, ref, vocab);
  if (label) {
    std::printf("%s:", label);
    for (double e : errors)
      std::printf(" %.2e", e);
    std::printf("\n");
  }
  return errors.empty() ? 0.0 : *std::max_element(errors.begin(), errors.end());
}

} // namespace

// Margin between the two largest values of a row.
static float topTwoMargin(const float *row, int64_t vocab) {
  float first = -INFINITY, second = -INFINITY;
  for (int64_t v = 0; v < vocab; ++v) {
    if (row[v] > first) {
      second = first;
      first = row[v];
    } else if (row[v] > second) {
      second = row[v];
    }
  }
  return first - second;
}

int runVerify(const VerifyOptions &options) {
  v4c::check(options.tolerance > 0, "--tolerance must be positive (e.g. 1e-4)");
  v4c::check(options.maxContext >= 0, "--max-context must be >= 0 (0: the model's)");
  RunnerOptions runnerOptions;
  runnerOptions.threads = options.threads;
  runnerOptions.maxContext = options.maxContext;
  std::unique_ptr<Runner> runner = openRunner(options.artifact, runnerOptions);
  const int64_t V = runner->vocabSize();
  const Golden g = readGolden(options.golden, V);
  const int64_t T = static_cast<int64_t>(g.inputIds.size());
  const size_t N = g.decodeIds.size();
  const double margin =
      options.tokenMargin >= 0 ? options.tokenMargin
                               : (isDeviceTarget(runner->program().target) ? options.tolerance : 0.0);

  // 1. The whole prompt (in the artifact's prefill chunks).
  std::vector<float> prefill(static_cast<size_t>(T * V));
  runner->newSession()->prefill(g.inputIds.data(), T, prefill.data());
  // 2. Two chunks split where the reference split them.
  std::vector<float> chunked(static_cast<size_t>(T * V));
  {
    std::unique_ptr<RunnerSession> session = runner->newSession();
    session->prefill(g.inputIds.data(), g.chunkSplit, chunked.data());
    session->prefill(g.inputIds.data() + g.chunkSplit, T - g.chunkSplit, chunked.data() + g.chunkSplit * V);
  }
  // 3. Prompt, then the reference's greedy tokens one at a time.
  std::vector<float> decode(N * static_cast<size_t>(V));
  size_t tokensMatched = 0, exempt = 0;
  {
    std::unique_ptr<RunnerSession> session = runner->newSession();
    std::vector<float> logits(static_cast<size_t>(T * V));
    session->prefill(g.inputIds.data(), T, logits.data());
    int32_t predicted = v4rt::argmax(logits.data() + (T - 1) * V, V);
    const float *reference = g.prefillLogits.data() + (T - 1) * V; // what predicted the token
    for (size_t i = 0; i < N; ++i) {
      const int32_t id = g.decodeIds[i];
      if (predicted == id)
        ++tokensMatched;
      else if (margin > 0 && topTwoMargin(reference, V) <= margin)
        ++exempt; // a near-tie in the reference: either token is right
      float *step = decode.data() + i * V;
      session->decode(id, step);
      predicted = v4rt::argmax(step, V);
      reference = g.decodeLogits.data() + i * V;
    }
  }
  const bool rows = options.perPosition;
  const double ePrefill = maxRelativeError(prefill, g.prefillLogits, V, rows ? "prefill per position" : nullptr);
  const double eChunked = maxRelativeError(chunked, g.chunkedLogits, V, rows ? "chunked per position" : nullptr);
  const double eDecode = maxRelativeError(decode, g.decodeLogits, V, rows ? "decode per step" : nullptr);
  std::printf("verify: prefill %.3e chunked %.3e decode %.3e tokens %zu/%zu", ePrefill, eChunked, eDecode,
              tokensMatched, N);
  if (margin > 0)
    std::printf(" (%zu exempt: reference top-2 margin <= %.1e)", exempt, margin);
  std::printf("\n");
  std::fflush(stdout);
  const bool ok = ePrefill <= options.tolerance && eChunked <= options.tolerance &&
                  eDecode <= options.tolerance && tokensMatched + exempt == N;
  if (!ok)
    std::fprintf(stderr, "verify: FAILED (tolerance %.1e)\n", options.tolerance);
  return ok ? 0 : 1;
}

} // namespace v4run
