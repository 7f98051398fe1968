// The quantized kernels against the f32 reference kernels run on the same
// weights dequantized, and the quantized inputs' error bounds.
#include "runtime/cpu/QuantKernels.h"

#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "runtime/cpu/CpuKernels.h"

namespace v4rt {
namespace {

std::vector<float> randomValues(size_t count, unsigned seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> values(count);
  for (float &v : values)
    v = normal(rng);
  return values;
}

float maxAbsDiff(const std::vector<float> &a, const std::vector<float> &b) {
  float m = 0.0f;
  for (size_t i = 0; i < a.size(); ++i)
    m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

TEST(LinearFp8, EqualsF32LinearOnDequantizedOperands) {
  const int64_t T = 3, K = 300, N = 130; // partial blocks in both weight dimensions
  const quant::BlockShape block{128, 128};
  std::vector<float> x = randomValues(T * K, 1), w = randomValues(N * K, 2, 0.05f);
  std::vector<uint8_t> codes(N * K), scales(quant::scaleCount(N, K, block));
  quant::quantizeBlocks(w.data(), N, K, block, quant::Format::E4M3, codes.data(), scales.data());
  std::vector<float> wq(N * K), xq = x;
  quant::dequantizeBlocks(codes.data(), scales.data(), N, K, block, quant::Format::E4M3, wq.data());
  ref::fakeQuantizeActivations(xq.data(), T, K, 128);

  std::vector<float> got(T * N), expected(T * N), exact(T * N);
  ref::linearFp8(x.data(), T, K, codes.data(), scales.data(), N, block, got.data(), nullptr);
  ref::linear(xq.data(), T, K, wq.data(), N, expected.data(), nullptr);
  ref::linear(x.data(), T, K, w.data(), N, exact.data(), nullptr);
  EXPECT_LT(maxAbsDiff(got, expected), 1e-5f);
  // Against unquantized f32: each product has relative error <= ~2 * 2^-4,
  // so |error| <= 2^-3 * sum |x_k w_k|; random signs make it far smaller.
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n = 0; n < N; ++n) {
      float absSum = 0.0f;
      for (int64_t k = 0; k < K; ++k)
        absSum += std::fabs(x[t * K + k] * w[n * K + k]);
      EXPECT_LE(std::fabs(got[t * N + n] - exact[t * N + n]), absSum / 8) << t << "," << n;
    }
  EXPECT_GT(maxAbsDiff(got, exact), 0.0f); // quantization did happen
}

TEST(LinearFp8, QuantizesActivationsPerGroup) {
  // One huge activation in group 0 must not wipe out group 1's small values.
  const int64_t K = 256, N = 1;
  std::vector<float> x(K, 0.0f), w(K, 0.0f);
  x[0] = 1000.0f;
  x[200] = 0.001f;
  w[200] = 1.0f;
  std::vector<uint8_t> codes(K), scales(quant::scaleCount(N, K, {1, 128}));
  quant::quantizeBlocks(w.data(), N, K, {1, 128}, quant::Format::E4M3, codes.data(), scales.data());
  float y = 0.0f;
  ref::linearFp8(x.data(), 1, K, codes.data(), scales.data(), N, {1, 128}, &y, nullptr);
  EXPECT_NEAR(y, 0.001f, 0.001f / 16);
}

TEST(MoeFp4, EqualsF32MoeOnDequantizedExpertsAndActivations) {
  ref::MoeParams p;
  p.experts = 3;
  p.topK = 2;
  p.D = 64;
  p.I = 40; // down rows have a partial 32-block
  p.swigluLimit = 7.0;
  const int64_t T = 2, E = p.experts, D = p.D, I = p.I;
  std::vector<float> h = randomValues(T * D, 3);
  std::vector<float> gateUp = randomValues(E * 2 * I * D, 4, 0.2f), down = randomValues(E * D * I, 5, 0.2f);
  const quant::BlockShape block{1, 32};
  std::vector<uint8_t> guCodes(gateUp.size()), dnCodes(down.size());
  std::vector<uint8_t> guScales(quant::scaleCount(E * 2 * I, D, block));
  std::vector<uint8_t> dnScales(quant::scaleCount(E * D, I, block));
  quant::quantizeBlocks(gateUp.data(), E * 2 * I, D, block, quant::Format::E2M1, guCodes.data(), guScales.data());
  quant::quantizeBlocks(down.data(), E * D, I, block, quant::Format::E2M1, dnCodes.data(), dnScales.data());
  std::vector<float> guDeq(gateUp.size()), dnDeq(down.size());
  quant::dequantizeBlocks(guCodes.data(), guScales.data(), E * 2 * I, D, block, quant::Format::E2M1, guDeq.data());
  quant::dequantizeBlocks(dnCodes.data(), dnScales.data(), E * D, I, block, quant::Format::E2M1, dnDeq.data());

  const std::vector<float> weights = {0.7f, 0.3f, 0.5f, 0.5f};
  const std::vector<int32_t> experts = {2, 0, 1, 2};
  std::vector<float> got(T * D), expected(T * D, 0.0f);
  ref::moeFp4(h.data(), T, weights.data(), experts.data(), guCodes.data(), guScales.data(), dnCodes.data(),
              dnScales.data(), 32, p, got.data(), nullptr);
  // The same computation spelled out with the f32 kernels.
  std::vector<float> hq = h;
  ref::fakeQuantizeActivations(hq.data(), T, D, 128);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t slot = 0; slot < 2; ++slot) {
      const int64_t e = experts[t * 2 + slot];
      std::vector<float> gu(2 * I), act(I), y(D);
      ref::linear(hq.data() + t * D, 1, D, guDeq.data() + e * 2 * I * D, 2 * I, gu.data(), nullptr);
      ref::swiglu(gu.data(), gu.data() + I, I, p.swigluLimit, act.data());
      ref::fakeQuantizeActivations(act.data(), 1, I, 128);
      ref::linear(act.data(), 1, I, dnDeq.data() + e * D * I, D, y.data(), nullptr);
      for (int64_t d = 0; d < D; ++d)
        expected[t * D + d] += y[d] * weights[t * 2 + slot];
    }
  EXPECT_LT(maxAbsDiff(got, expected), 1e-4f);
}

TEST(QuantCpuKernels, AreRegistered) {
  EXPECT_NE(findCpuKernel("v4.linear_fp8"), nullptr);
  EXPECT_NE(findCpuKernel("v4.moe_fp4"), nullptr);
}

} // namespace
} // namespace v4rt
