// Small inner loops shared by the reference kernels.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace v4rt::ref {

// Sum of a[i]*b[i] with 16 independent float lanes (vectorisable without
// -ffast-math), folded pairwise at the end.
inline float dot(const float *a, const float *b, int64_t n) {
  constexpr int kLanes = 16;
  float lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l)
      lanes[l] += a[i + l] * b[i + l];
  for (int width = kLanes / 2; width > 0; width /= 2)
    for (int l = 0; l < width; ++l)
      lanes[l] += lanes[l + width];
  float sum = lanes[0];
  for (; i < n; ++i)
    sum += a[i] * b[i];
  return sum;
}

// 1 / sqrt(mean(x^2) + eps), accumulated in double.
inline float inverseRms(const float *x, int64_t n, double eps) {
  double sumSquares = 0.0;
  for (int64_t i = 0; i < n; ++i)
    sumSquares += static_cast<double>(x[i]) * x[i];
  return static_cast<float>(1.0 / std::sqrt(sumSquares / static_cast<double>(n) + eps));
}

// Items per parallel task so each task does at least ~64K multiply-adds:
// waking a worker for less costs more than it saves.
inline int64_t grainFor(int64_t workPerItem) {
  return std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, workPerItem));
}

inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }
inline float silu(float x) { return x / (1.0f + std::exp(-x)); }

// torch.nn.functional.softplus with beta 1, threshold 20.
inline float softplus(float x) { return x > 20.0f ? x : std::log1p(std::exp(x)); }

} // namespace v4rt::ref
