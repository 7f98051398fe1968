// Reference kernels: embedding, linear layers, norms, activations, rotary.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "runtime/cpu/ReferenceKernels.h"
#include "runtime/cpu/VectorMath.h"

namespace v4rt::ref {

void embed(const int32_t *ids, int64_t T, const float *table, int64_t vocab, int64_t D,
           float *out) {
  for (int64_t t = 0; t < T; ++t) {
    // Ids are range-checked by the session before a plan runs; clamp defensively.
    const int64_t id = std::clamp<int64_t>(ids[t], 0, vocab - 1);
    std::memcpy(out + t * D, table + id * D, sizeof(float) * D);
  }
}

void add(const float *a, const float *b, int64_t count, float *out) {
  for (int64_t i = 0; i < count; ++i)
    out[i] = a[i] + b[i];
}

void linear(const float *x, int64_t T, int64_t K, const float *w, int64_t N, float *out,
            ThreadPool *pool) {
  // Parallel over output features: each weight row is read once per chunk of
  // tokens, which is what decode (T = 1, weight-bound) needs.
  parallelFor(pool, N, grainFor(K * T), [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
      const float *wRow = w + n * K;
      for (int64_t t = 0; t < T; ++t)
        out[t * N + n] = dot(x + t * K, wRow, K);
    }
  });
}

void groupedLinear(const float *x, int64_t T, int64_t groups, int64_t Kg, const float *w,
                   int64_t R, float *out, ThreadPool *pool) {
  const int64_t outCols = groups * R;
  parallelFor(pool, outCols, grainFor(Kg * T), [&](int64_t begin, int64_t end) {
    for (int64_t col = begin; col < end; ++col) {
      const int64_t g = col / R;
      const float *wRow = w + col * Kg;
      for (int64_t t = 0; t < T; ++t)
        out[t * outCols + col] = dot(x + t * groups * Kg + g * Kg, wRow, Kg);
    }
  });
}

void rmsNorm(const float *x, int64_t T, int64_t C, int64_t group, const float *w, double eps,
             float *out) {
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t g0 = 0; g0 < C; g0 += group) {
      const float *in = x + t * C + g0;
      float *o = out + t * C + g0;
      const float inv = inverseRms(in, group, eps);
      for (int64_t i = 0; i < group; ++i)
        o[i] = w ? w[i] * (in[i] * inv) : in[i] * inv;
    }
  }
}

void swiglu(const float *gate, const float *up, int64_t count, double limit, float *out) {
  const float L = static_cast<float>(limit);
  for (int64_t i = 0; i < count; ++i)
    out[i] = silu(std::min(gate[i], L)) * std::clamp(up[i], -L, L);
}

void ropeVector(float *v, int64_t position, const RopeParams &p, bool inverse) {
  float *r = v + (p.headDim - p.ropeDim);
  const float pos = static_cast<float>(position);
  for (int64_t i = 0; i < p.ropeDim / 2; ++i) {
    // Angle in fp32 like the reference (inv_freq @ position in float).
    const float angle = pos * p.invFreq[i];
    const float c = static_cast<float>(std::cos(angle) * p.scaling);
    float s = static_cast<float>(std::sin(angle) * p.scaling);
    if (inverse)
      s = -s;
    const float x0 = r[2 * i], x1 = r[2 * i + 1];
    r[2 * i] = x0 * c - x1 * s;
    r[2 * i + 1] = x1 * c + x0 * s;
  }
}

void rope(const float *x, const int32_t *positions, int64_t T, int64_t C, const RopeParams &p,
          bool inverse, float *out) {
  if (out != x)
    std::memcpy(out, x, sizeof(float) * T * C);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h0 = 0; h0 < C; h0 += p.headDim)
      ropeVector(out + t * C + h0, positions[t], p, inverse);
}

} // namespace v4rt::ref
