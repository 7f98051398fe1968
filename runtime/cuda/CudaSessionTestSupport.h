// Test support for CudaSession tests on the emulated driver (or a GPU):
// prompts, logits comparisons and a cold session's reference logits.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "runtime/cuda/CudaSession.h"

namespace v4rt::cuda::test {

inline std::vector<int32_t> pseudoRandomIds(size_t count, int64_t vocab, uint32_t seed) {
  std::vector<int32_t> ids(count);
  uint32_t state = seed * 2654435761u + 12345u;
  for (int32_t &id : ids) {
    state = state * 1664525u + 1013904223u;
    id = static_cast<int32_t>((state >> 8) % static_cast<uint32_t>(vocab));
  }
  return ids;
}

inline std::vector<int32_t> slice(const std::vector<int32_t> &ids, int64_t begin, int64_t end) {
  return std::vector<int32_t>(ids.begin() + begin, ids.begin() + end);
}

// Largest |a - b| (infinite where only one is NaN).
inline float maxAbsDifference(const std::vector<float> &a, const std::vector<float> &b) {
  EXPECT_EQ(a.size(), b.size());
  float worst = 0.0f;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    if (std::isnan(a[i]) != std::isnan(b[i]))
      return INFINITY;
    worst = std::max(worst, std::fabs(a[i] - b[i]));
  }
  return worst;
}

inline std::vector<float> decodeLogits(CudaSession &session, int32_t id, int64_t vocab) {
  std::vector<float> logits(static_cast<size_t>(vocab));
  session.decode(id, logits.data());
  return logits;
}

// A cold session's logits after prefilling `prefix` and decoding `next`.
inline std::vector<float> coldDecode(const CudaModel &model, const std::vector<int32_t> &prefix, int32_t next) {
  CudaSession cold(model);
  cold.prefill(prefix.data(), static_cast<int64_t>(prefix.size()), nullptr);
  return decodeLogits(cold, next, model.vocabSize());
}

} // namespace v4rt::cuda::test
