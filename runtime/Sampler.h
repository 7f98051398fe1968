// Picks the next token from logits: greedy, or temperature + top-p with a seed.
#pragma once

#include <cstdint>
#include <random>

namespace v4rt {

struct SamplingOptions {
  double temperature = 0.0; // 0: greedy (argmax, lowest id on ties)
  double topP = 1.0;        // nucleus: smallest set whose probability >= topP
  uint64_t seed = 0;
};

class Sampler {
public:
  explicit Sampler(const SamplingOptions &options);
  int32_t next(const float *logits, int64_t vocab);

private:
  SamplingOptions options_;
  std::mt19937_64 rng_;
};

int32_t argmax(const float *logits, int64_t vocab);

} // namespace v4rt
