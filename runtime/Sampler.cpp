#include "runtime/Sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "common/Error.h"

namespace v4rt {

int32_t argmax(const float *logits, int64_t vocab) {
  int64_t best = 0;
  for (int64_t i = 1; i < vocab; ++i)
    if (logits[i] > logits[best])
      best = i;
  return static_cast<int32_t>(best);
}

Sampler::Sampler(const SamplingOptions &options) : options_(options), rng_(options.seed) {
  v4c::check(options.temperature >= 0.0, "temperature must be >= 0");
  v4c::check(options.topP > 0.0 && options.topP <= 1.0, "top-p must be in (0, 1]");
}

int32_t Sampler::next(const float *logits, int64_t vocab) {
  if (options_.temperature == 0.0)
    return argmax(logits, vocab);
  std::vector<double> probs(vocab);
  const double mx = *std::max_element(logits, logits + vocab);
  double sum = 0.0;
  for (int64_t i = 0; i < vocab; ++i)
    sum += (probs[i] = std::exp((logits[i] - mx) / options_.temperature));
  std::vector<int32_t> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return probs[a] > probs[b]; });
  // Keep the smallest prefix whose mass reaches top-p, then sample in it.
  double kept = 0.0;
  size_t n = 0;
  while (n < order.size() && kept < options_.topP * sum)
    kept += probs[order[n++]];
  std::uniform_real_distribution<double> uniform(0.0, kept);
  double r = uniform(rng_);
  for (size_t i = 0; i < n; ++i) {
    r -= probs[order[i]];
    if (r <= 0.0)
      return order[i];
  }
  return order[n - 1];
}

} // namespace v4rt
