// Reference kernels for the MoE sublayer: routers and routed experts.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "runtime/cpu/ReferenceKernels.h"
#include "runtime/cpu/VectorMath.h"

namespace v4rt::ref {

namespace {

// scores = sqrt(softplus(gate h)) for one token.
void expertScores(const float *h, int64_t D, const float *gate, int64_t E, float *scores) {
  for (int64_t e = 0; e < E; ++e)
    scores[e] = std::sqrt(softplus(dot(gate + e * D, h, D)));
}

void normalizeWeights(const float *scores, const int32_t *selected, int64_t k, double scaling,
                      float *weights) {
  float sum = 0.0f;
  for (int64_t i = 0; i < k; ++i)
    sum += scores[selected[i]];
  for (int64_t i = 0; i < k; ++i)
    weights[i] = scores[selected[i]] / (sum + 1e-20f) * static_cast<float>(scaling);
}

} // namespace

void router(const float *h, int64_t T, int64_t D, const float *gate, const float *bias,
            const RouterParams &p, float *weights, int32_t *experts) {
  const int64_t E = p.experts, k = p.topK;
  std::vector<float> scores(E), biased(E);
  std::vector<int32_t> order(E);
  for (int64_t t = 0; t < T; ++t) {
    expertScores(h + t * D, D, gate, E, scores.data());
    for (int64_t e = 0; e < E; ++e)
      biased[e] = scores[e] + bias[e];
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) {
      return biased[a] != biased[b] ? biased[a] > biased[b] : a < b;
    });
    std::copy(order.begin(), order.begin() + k, experts + t * k);
    normalizeWeights(scores.data(), experts + t * k, k, p.routedScaling, weights + t * k);
  }
}

void hashRouter(const float *h, int64_t T, int64_t D, const float *gate, const int32_t *tid2eid,
                int64_t vocab, const int32_t *ids, const RouterParams &p, float *weights,
                int32_t *experts) {
  const int64_t E = p.experts, k = p.topK;
  std::vector<float> scores(E);
  for (int64_t t = 0; t < T; ++t) {
    expertScores(h + t * D, D, gate, E, scores.data());
    const int64_t id = std::clamp<int64_t>(ids[t], 0, vocab - 1);
    for (int64_t i = 0; i < k; ++i)
      experts[t * k + i] = std::clamp<int32_t>(tid2eid[id * k + i], 0, static_cast<int32_t>(E - 1));
    normalizeWeights(scores.data(), experts + t * k, k, p.routedScaling, weights + t * k);
  }
}

void moe(const float *h, int64_t T, const float *weights, const int32_t *experts,
         const float *gateUp, const float *down, const MoeParams &p, float *out,
         ThreadPool *pool) {
  const int64_t D = p.D, I = p.I, k = p.topK;
  const float L = static_cast<float>(p.swigluLimit);
  std::fill(out, out + T * D, 0.0f);
  for (int64_t t = 0; t < T; ++t) {
    const float *x = h + t * D;
    for (int64_t slot = 0; slot < k; ++slot) {
      const int64_t e = experts[t * k + slot];
      const float weight = weights[t * k + slot];
      const float *gu = gateUp + e * 2 * I * D;
      const float *dn = down + e * D * I;
      std::vector<float> act(I);
      parallelFor(pool, I, grainFor(2 * D), [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          const float g = dot(gu + i * D, x, D);
          const float u = dot(gu + (I + i) * D, x, D);
          act[i] = silu(std::min(g, L)) * std::clamp(u, -L, L);
        }
      });
      parallelFor(pool, D, grainFor(I), [&](int64_t begin, int64_t end) {
        for (int64_t d = begin; d < end; ++d)
          out[t * D + d] += dot(dn + d * I, act.data(), I) * weight;
      });
    }
  }
}

} // namespace v4rt::ref
