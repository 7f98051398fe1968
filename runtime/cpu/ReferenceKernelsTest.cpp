// Tests of the reference kernels against values worked out by hand, and of the
// chunking invariance the sessions rely on.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "runtime/cpu/ReferenceKernels.h"

namespace v4rt::ref {
namespace {

TEST(ReferenceKernels, LinearIsXTimesWTransposed) {
  const std::vector<float> x = {1, 2, 3, 4, 5, 6};          // [2, 3]
  const std::vector<float> w = {1, 0, -1, 0.5f, 0.5f, 0.5f}; // [2, 3]
  std::vector<float> y(4);
  ThreadPool pool(2);
  linear(x.data(), 2, 3, w.data(), 2, y.data(), &pool);
  EXPECT_FLOAT_EQ(y[0], -2.0f);
  EXPECT_FLOAT_EQ(y[1], 3.0f);
  EXPECT_FLOAT_EQ(y[2], -2.0f);
  EXPECT_FLOAT_EQ(y[3], 7.5f);
}

TEST(ReferenceKernels, GroupedLinearUsesOneWeightBlockPerGroup) {
  const std::vector<float> x = {1, 2, 3, 4};       // [1, G=2 x Kg=2]
  const std::vector<float> w = {1, 1, 2, -1};      // [G*R = 2, Kg = 2], R = 1
  std::vector<float> y(2);
  groupedLinear(x.data(), 1, 2, 2, w.data(), 1, y.data(), nullptr);
  EXPECT_FLOAT_EQ(y[0], 3.0f);  // [1,2].[1,1]
  EXPECT_FLOAT_EQ(y[1], 2.0f);  // [3,4].[2,-1]
}

TEST(ReferenceKernels, RmsNormPerGroupWithWeight) {
  const std::vector<float> x = {3, 4, 1, 1};
  const std::vector<float> w = {2, 0.5f};
  std::vector<float> y(4);
  rmsNorm(x.data(), 1, 4, 2, w.data(), 0.0, y.data());
  const float inv = 1.0f / std::sqrt(12.5f);
  EXPECT_NEAR(y[0], 2 * 3 * inv, 1e-6);
  EXPECT_NEAR(y[1], 0.5f * 4 * inv, 1e-6);
  EXPECT_NEAR(y[2], 2.0f, 1e-6);
  EXPECT_NEAR(y[3], 0.5f, 1e-6);
}

TEST(ReferenceKernels, RopeRotatesTrailingPairsAndInverseUndoesIt) {
  const float invFreq[1] = {0.5f};
  RopeParams p{4, 2, invFreq, 1.0};
  const float pi = 3.14159265358979f;
  std::vector<float> v = {7, 8, 1, 0};
  ropeVector(v.data(), static_cast<int64_t>(std::lround(pi)), p, false); // angle ~ pi/2
  // Position 3 -> angle 1.5 rad: (cos 1.5, sin 1.5).
  EXPECT_FLOAT_EQ(v[0], 7);
  EXPECT_FLOAT_EQ(v[1], 8);
  EXPECT_NEAR(v[2], std::cos(1.5f), 1e-6);
  EXPECT_NEAR(v[3], std::sin(1.5f), 1e-6);
  ropeVector(v.data(), 3, p, true);
  EXPECT_NEAR(v[2], 1.0f, 1e-6);
  EXPECT_NEAR(v[3], 0.0f, 1e-6);
}

TEST(ReferenceKernels, SwigluClampsGateAboveAndUpBothWays) {
  const std::vector<float> g = {20, -1}, u = {-30, 2};
  std::vector<float> y(2);
  swiglu(g.data(), u.data(), 2, 10.0, y.data());
  EXPECT_NEAR(y[0], 10.0f / (1 + std::exp(-10.0f)) * -10.0f, 1e-4);
  EXPECT_NEAR(y[1], -1.0f / (1 + std::exp(1.0f)) * 2.0f, 1e-6);
}

TEST(ReferenceKernels, HyperConnectionWithZeroProjection) {
  // fn = 0: pre = sigmoid(base) + eps, post = 2 sigmoid(base), comb from base.
  const int64_t hc = 2, D = 1;
  std::vector<float> X = {1.0f, 3.0f};
  std::vector<float> fn((2 + hc) * hc * hc * D, 0.0f);
  std::vector<float> base = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  std::vector<float> scale = {1, 1, 1};
  HyperParams p{hc, D, 1e-6, 0.0, 20};
  std::vector<float> collapsed(1), post(2), comb(4);
  hcPre(X.data(), 1, fn.data(), base.data(), scale.data(), p, collapsed.data(), post.data(),
        comb.data(), nullptr);
  EXPECT_NEAR(collapsed[0], 0.5f * 1 + 0.5f * 3, 1e-6);
  EXPECT_NEAR(post[0], 1.0f, 1e-6);
  for (float c : comb)
    EXPECT_NEAR(c, 0.5f, 1e-6);
  // X'_c = post_c * y + sum_j comb[j,c] X_j = 1*10 + 0.5*(1+3)
  std::vector<float> y = {10.0f}, out(2);
  hcPost(X.data(), y.data(), post.data(), comb.data(), 1, hc, D, out.data());
  EXPECT_NEAR(out[0], 12.0f, 1e-5);
  EXPECT_NEAR(out[1], 12.0f, 1e-5);
}

TEST(ReferenceKernels, SinkhornMakesCombDoublyStochastic) {
  const int64_t hc = 3, D = 2;
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  std::vector<float> X(hc * D), fn((2 + hc) * hc * hc * D), base((2 + hc) * hc);
  for (auto *v : {&X, &fn, &base})
    for (float &f : *v)
      f = normal(rng);
  std::vector<float> scale = {1, 1, 1}, collapsed(D), post(hc), comb(hc * hc);
  HyperParams p{hc, D, 1e-6, 1e-6, 30};
  hcPre(X.data(), 1, fn.data(), base.data(), scale.data(), p, collapsed.data(), post.data(),
        comb.data(), nullptr);
  for (int64_t i = 0; i < hc; ++i) {
    float row = 0, col = 0;
    for (int64_t j = 0; j < hc; ++j) {
      row += comb[i * hc + j];
      col += comb[j * hc + i];
    }
    EXPECT_NEAR(row, 1.0f, 2e-3); // the last step normalises columns
    EXPECT_NEAR(col, 1.0f, 1e-5);
  }
}

TEST(ReferenceKernels, HcaCompressorPoolsCompleteWindowsOnly) {
  // m = 2, C = 2, equal gates -> entry = normalised mean of the window.
  const float invFreq[1] = {0.0f}; // identity rotation
  CompressParams p{2, 2, false, RopeParams{2, 2, invFreq, 1.0}, 0.0};
  CacheBuffer state{4, 0, {}}, entries{2, 0, {}};
  state.resizeRows(4);
  const std::vector<float> kv = {1, 2, 3, 6, 5, 5}, gate(6, 0.0f), bias(4, 0.0f), norm = {1, 1};
  const std::vector<int32_t> pos = {0, 1, 2};
  compress(kv.data(), gate.data(), 3, bias.data(), norm.data(), pos.data(), p, state, entries);
  ASSERT_EQ(entries.rows, 1); // the window of positions 2-3 is not complete
  const float inv = 1.0f / std::sqrt((4.0f + 16.0f) / 2.0f); // mean = (2, 4)
  EXPECT_NEAR(entries.row(0)[0], 2 * inv, 1e-6);
  EXPECT_NEAR(entries.row(0)[1], 4 * inv, 1e-6);
}

TEST(ReferenceKernels, CsaCompressorOverlapsThePreviousWindow) {
  // m = 1, C = 1: entry w pools token w-1's first half and token w's second half.
  const float invFreq[1] = {0.0f};
  CompressParams p{1, 1, true, RopeParams{1, 0, invFreq, 1.0}, 0.0};
  CacheBuffer state{4, 0, {}}, entries{1, 0, {}};
  state.resizeRows(2);
  const std::vector<float> kv = {2, 3, 5, 7}, gate = {0, 0, 0, 0}, bias = {0, 0}, norm = {1};
  const std::vector<int32_t> pos = {0, 1};
  compress(kv.data(), gate.data(), 2, bias.data(), norm.data(), pos.data(), p, state, entries);
  ASSERT_EQ(entries.rows, 2);
  // Entry 0: only b of token 0 (3) -> rms-normalised to 1. Entry 1: mean(a0=2, b1=7) = 4.5 -> 1.
  EXPECT_NEAR(entries.row(0)[0], 1.0f, 1e-6);
  EXPECT_NEAR(entries.row(1)[0], 1.0f, 1e-6);
}

TEST(ReferenceKernels, AttentionSinkTakesMassButNoValue) {
  // One head, hd = 1, W = 4, one token at position 0 with q.k = 0 and sink 0:
  // p(token) = 1/2 -> out = kv / 2.
  const std::vector<float> q = {1}, kv = {6}, sinks = {0};
  const std::vector<int32_t> pos = {0};
  CacheBuffer window{1, 0, {}};
  window.resizeRows(4);
  AttentionParams p{1, 1, 4, 0, 0.0, 0};
  std::vector<float> out(1);
  attention(q.data(), kv.data(), sinks.data(), pos.data(), 1, window, nullptr, nullptr, p,
            out.data(), nullptr);
  EXPECT_NEAR(out[0], 3.0f, 1e-6);
}

TEST(ReferenceKernels, IndexerPrefersHigherScoresThenLowerIndex) {
  CacheBuffer keys{1, 0, {}};
  keys.resizeRows(4);
  keys.data = {1, 3, 3, -1}; // scores q*k with q = 1: 1, 3, 3, 0 (relu)
  const std::vector<float> q = {1}, w = {1};
  const std::vector<int32_t> pos = {15};
  IndexerParams p{1, 1, 3, 4, 1.0, 1.0};
  std::vector<int32_t> out(3);
  indexerTopK(q.data(), w.data(), pos.data(), 1, keys, p, out.data(), nullptr);
  EXPECT_EQ(out, (std::vector<int32_t>{1, 2, 0}));
  const std::vector<int32_t> early = {5}; // only entry 0 is visible at position 5
  indexerTopK(q.data(), w.data(), early.data(), 1, keys, p, out.data(), nullptr);
  EXPECT_EQ(out, (std::vector<int32_t>{0, -1, -1}));
}

TEST(ReferenceKernels, RouterSelectsByBiasedScoreAndWeightsByScore) {
  const std::vector<float> h = {1.0f};
  const std::vector<float> gate = {0.0f, 2.0f, -2.0f};
  const std::vector<float> bias = {0.0f, 0.0f, 5.0f};
  std::vector<float> weights(2);
  std::vector<int32_t> experts(2);
  RouterParams p{3, 2, 1.5};
  router(h.data(), 1, 1, gate.data(), bias.data(), p, weights.data(), experts.data());
  EXPECT_EQ(experts, (std::vector<int32_t>{2, 1}));
  const float s1 = std::sqrt(std::log1p(std::exp(2.0f))), s2 = std::sqrt(std::log1p(std::exp(-2.0f)));
  EXPECT_NEAR(weights[0], s2 / (s1 + s2) * 1.5f, 1e-6);
  EXPECT_NEAR(weights[1], s1 / (s1 + s2) * 1.5f, 1e-6);
}

TEST(ReferenceKernels, MoeSumsWeightedExperts) {
  // D = 1, I = 1, two experts: gate_up rows [g; u], down [1x1].
  const std::vector<float> h = {1.0f}, gateUp = {1, 2, 3, 4}, down = {10, 100};
  const std::vector<float> weights = {0.25f, 0.5f};
  const std::vector<int32_t> experts = {0, 1};
  MoeParams p{2, 2, 1, 1, 10.0};
  std::vector<float> out(1);
  moe(h.data(), 1, weights.data(), experts.data(), gateUp.data(), down.data(), p, out.data(),
      nullptr);
  auto silu = [](float x) { return x / (1 + std::exp(-x)); };
  EXPECT_NEAR(out[0], 0.25f * 10 * silu(1) * 2 + 0.5f * 100 * silu(3) * 4, 1e-3);
}

// Feeding tokens in chunks must give what one chunk gives: compressor state,
// window cache and indexer all carry over.
TEST(ReferenceKernels, ChunkedAttentionEqualsOneShot) {
  const int64_t T = 23, hd = 4, H = 2, m = 4, W = 5;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  auto randoms = [&](size_t n) {
    std::vector<float> v(n);
    for (float &f : v)
      f = normal(rng);
    return v;
  };
  const auto q = randoms(T * H * hd), kv = randoms(T * hd), ckv = randoms(T * 2 * hd),
             cgate = randoms(T * 2 * hd), bias = randoms(m * 2 * hd), norm = randoms(hd);
  const std::vector<float> sinks = {0.1f, -0.2f};
  const float invFreq[1] = {0.3f};
  CompressParams cp{m, hd, true, RopeParams{hd, 2, invFreq, 1.0}, 1e-6};
  AttentionParams ap{H, hd, W, m, 0.5, 0};

  auto run = [&](const std::vector<int64_t> &splits) {
    CacheBuffer window{hd, 0, {}}, state{4 * hd, 0, {}}, entries{hd, 0, {}};
    window.resizeRows(W);
    state.resizeRows(2 * m);
    std::vector<float> out(T * H * hd);
    int64_t start = 0;
    for (int64_t end : splits) {
      std::vector<int32_t> pos;
      for (int64_t p = start; p < end; ++p)
        pos.push_back(static_cast<int32_t>(p));
      const int64_t n = end - start;
      compress(ckv.data() + start * 2 * hd, cgate.data() + start * 2 * hd, n, bias.data(),
               norm.data(), pos.data(), cp, state, entries);
      attention(q.data() + start * H * hd, kv.data() + start * hd, sinks.data(), pos.data(), n,
                window, &entries, nullptr, ap, out.data() + start * H * hd, nullptr);
      cacheAppend(window, kv.data() + start * hd, pos.data(), n);
      start = end;
    }
    return out;
  };
  const auto oneShot = run({T});
  const auto chunked = run({3, 4, 11, 12, T});
  for (int64_t i = 0; i < T * H * hd; ++i)
    ASSERT_NEAR(chunked[i], oneShot[i], 1e-6) << "at " << i;
}

} // namespace
} // namespace v4rt::ref
