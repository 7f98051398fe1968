// Reference kernels for mHC: the residual is hc streams of D channels per token.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "runtime/cpu/ReferenceKernels.h"
#include "runtime/cpu/VectorMath.h"

namespace v4rt::ref {

void hcExpand(const float *x, int64_t T, int64_t hc, int64_t D, float *out) {
  for (int64_t t = 0; t < T; ++t)
    for (int64_t j = 0; j < hc; ++j)
      std::memcpy(out + (t * hc + j) * D, x + t * D, sizeof(float) * D);
}

namespace {

// mix = fn @ rms(flatten(X)) for one token: `rows` outputs.
void mixStreams(const float *X, int64_t width, const float *fn, int64_t rows, double eps,
                std::vector<float> &normed, float *mix) {
  const float inv = inverseRms(X, width, eps);
  normed.resize(width);
  for (int64_t i = 0; i < width; ++i)
    normed[i] = X[i] * inv;
  for (int64_t r = 0; r < rows; ++r)
    mix[r] = dot(fn + r * width, normed.data(), width);
}

// sum_j pre_j X_j
void collapse(const float *X, const float *pre, int64_t hc, int64_t D, float *out) {
  for (int64_t d = 0; d < D; ++d) {
    float sum = 0.0f;
    for (int64_t j = 0; j < hc; ++j)
      sum += pre[j] * X[j * D + d];
    out[d] = sum;
  }
}

// Softmax over each row, + eps, then Sinkhorn: alternate column and row
// normalisation so the matrix becomes (close to) doubly stochastic.
void sinkhorn(float *C, int64_t hc, double eps, int64_t iterations) {
  const float e = static_cast<float>(eps);
  for (int64_t j = 0; j < hc; ++j) {
    float *row = C + j * hc;
    const float mx = *std::max_element(row, row + hc);
    float sum = 0.0f;
    for (int64_t c = 0; c < hc; ++c)
      sum += (row[c] = std::exp(row[c] - mx));
    for (int64_t c = 0; c < hc; ++c)
      row[c] = row[c] / sum + e;
  }
  auto normalizeColumns = [&] {
    for (int64_t c = 0; c < hc; ++c) {
      float sum = 0.0f;
      for (int64_t j = 0; j < hc; ++j)
        sum += C[j * hc + c];
      for (int64_t j = 0; j < hc; ++j)
        C[j * hc + c] /= sum + e;
    }
  };
  auto normalizeRows = [&] {
    for (int64_t j = 0; j < hc; ++j) {
      float sum = 0.0f;
      for (int64_t c = 0; c < hc; ++c)
        sum += C[j * hc + c];
      for (int64_t c = 0; c < hc; ++c)
        C[j * hc + c] /= sum + e;
    }
  };
  normalizeColumns();
  for (int64_t i = 1; i < iterations; ++i) {
    normalizeRows();
    normalizeColumns();
  }
}

} // namespace

void hcPre(const float *X, int64_t T, const float *fn, const float *base, const float *scale,
           const HyperParams &p, float *collapsed, float *post, float *comb, ThreadPool *pool) {
  const int64_t hc = p.hc, D = p.D, width = hc * D, rows = (2 + hc) * hc;
  parallelFor(pool, T, grainFor(rows * width), [&](int64_t begin, int64_t end) {
    std::vector<float> normed, mix(rows), pre(hc);
    for (int64_t t = begin; t < end; ++t) {
      const float *x = X + t * width;
      mixStreams(x, width, fn, rows, p.normEps, normed, mix.data());
      for (int64_t j = 0; j < hc; ++j) {
        pre[j] = sigmoid(mix[j] * scale[0] + base[j]) + static_cast<float>(p.hcEps);
        post[t * hc + j] = 2.0f * sigmoid(mix[hc + j] * scale[1] + base[hc + j]);
      }
      float *C = comb + t * hc * hc;
      for (int64_t i = 0; i < hc * hc; ++i)
        C[i] = mix[2 * hc + i] * scale[2] + base[2 * hc + i];
      sinkhorn(C, hc, p.hcEps, p.sinkhornIters);
      collapse(x, pre.data(), hc, D, collapsed + t * D);
    }
  });
}

void hcPost(const float *X, const float *y, const float *post, const float *comb, int64_t T,
            int64_t hc, int64_t D, float *out) {
  for (int64_t t = 0; t < T; ++t) {
    const float *x = X + t * hc * D;
    const float *C = comb + t * hc * hc;
    for (int64_t c = 0; c < hc; ++c) {
      float *o = out + (t * hc + c) * D;
      for (int64_t d = 0; d < D; ++d) {
        float mixed = 0.0f;
        for (int64_t j = 0; j < hc; ++j)
          mixed += C[j * hc + c] * x[j * D + d];
        o[d] = post[t * hc + c] * y[t * D + d] + mixed;
      }
    }
  }
}

void hcHead(const float *X, int64_t T, const float *fn, const float *base, const float *scale,
            const HyperParams &p, float *out) {
  const int64_t hc = p.hc, D = p.D, width = hc * D;
  std::vector<float> normed, mix(hc), pre(hc);
  for (int64_t t = 0; t < T; ++t) {
    const float *x = X + t * width;
    mixStreams(x, width, fn, hc, p.normEps, normed, mix.data());
    for (int64_t j = 0; j < hc; ++j)
      pre[j] = sigmoid(mix[j] * scale[0] + base[j]) + static_cast<float>(p.hcEps);
    collapse(x, pre.data(), hc, D, out + t * D);
  }
}

} // namespace v4rt::ref
