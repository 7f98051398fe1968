// Quantized reference kernels (see QuantKernels.h) and their plan adapters:
// the `quantCpuKernels` family.
#include "runtime/cpu/QuantKernels.h"

#include <algorithm>
#include <string>
#include <vector>

#include "common/Error.h"
#include "runtime/cpu/CpuKernels.h"
#include "runtime/cpu/VectorMath.h"

namespace v4rt::ref {

namespace {

// Row `row` of a block-quantized [rows, cols] matrix, dequantized into out[cols].
void dequantizeRow(const uint8_t *codes, const uint8_t *scales, int64_t row, int64_t cols,
                   quant::BlockShape block, const float *table, uint8_t mask, float *out) {
  const int64_t blockCols = quant::ceilDiv(cols, block.cols);
  const uint8_t *rowCodes = codes + row * cols;
  const uint8_t *rowScales = scales + (row / block.rows) * blockCols;
  for (int64_t c0 = 0, b = 0; c0 < cols; c0 += block.cols, ++b) {
    const float s = quant::decodeUe8m0(rowScales[b]);
    const int64_t c1 = std::min(cols, c0 + block.cols);
    for (int64_t c = c0; c < c1; ++c)
      out[c] = table[rowCodes[c] & mask] * s;
  }
}

} // namespace

void fakeQuantizeActivations(float *x, int64_t T, int64_t K, int64_t group) {
  std::vector<uint8_t> codes(static_cast<size_t>(K));
  std::vector<uint8_t> scales(static_cast<size_t>(quant::ceilDiv(K, group)));
  const float *table = quant::e4m3Table();
  for (int64_t t = 0; t < T; ++t) {
    float *row = x + t * K;
    quant::quantizeActivations(row, 1, K, group, codes.data(), scales.data());
    for (int64_t c = 0; c < K; ++c)
      row[c] = table[codes[c]] * quant::decodeUe8m0(scales[c / group]);
  }
}

void linearFp8(const float *x, int64_t T, int64_t K, const uint8_t *w, const uint8_t *scales,
               int64_t N, quant::BlockShape block, float *out, ThreadPool *pool) {
  // Power-of-two scales make dequantization exact, so fq(x) . deq(w) in f32
  // equals DeepSeek's per-block integer-code products times both scales, up
  // to the order of the f32 additions.
  std::vector<float> xq(x, x + T * K);
  fakeQuantizeActivations(xq.data(), T, K, block.cols);
  const float *table = quant::e4m3Table();
  parallelFor(pool, N, grainFor(K * T), [&](int64_t begin, int64_t end) {
    std::vector<float> wRow(static_cast<size_t>(K));
    for (int64_t n = begin; n < end; ++n) {
      dequantizeRow(w, scales, n, K, block, table, 0xFF, wRow.data());
      for (int64_t t = 0; t < T; ++t)
        out[t * N + n] = dot(xq.data() + t * K, wRow.data(), K);
    }
  });
}

void moeFp4(const float *h, int64_t T, const float *weights, const int32_t *experts,
            const uint8_t *gateUp, const uint8_t *gateUpScales, const uint8_t *down,
            const uint8_t *downScales, int64_t blockCols, const MoeParams &p, float *out,
            ThreadPool *pool) {
  const int64_t D = p.D, I = p.I, k = p.topK;
  const float L = static_cast<float>(p.swigluLimit);
  const quant::BlockShape block{1, blockCols};
  const float *table = quant::e2m1Table();
  // Per-expert slabs: codes and scales of expert e start at e * (rows * cols)
  // and e * (rows * ceil(cols / blockCols)).
  const int64_t gateUpScaleSlab = 2 * I * quant::ceilDiv(D, blockCols);
  const int64_t downScaleSlab = D * quant::ceilDiv(I, blockCols);
  std::vector<float> xq(h, h + T * D);
  fakeQuantizeActivations(xq.data(), T, D, quant::kActivationGroup);
  std::fill(out, out + T * D, 0.0f);
  std::vector<float> act(static_cast<size_t>(I));
  for (int64_t t = 0; t < T; ++t) {
    const float *x = xq.data() + t * D;
    for (int64_t slot = 0; slot < k; ++slot) {
      const int64_t e = std::clamp<int64_t>(experts[t * k + slot], 0, p.experts - 1);
      const float weight = weights[t * k + slot];
      const uint8_t *gu = gateUp + e * 2 * I * D;
      const uint8_t *guScales = gateUpScales + e * gateUpScaleSlab;
      const uint8_t *dn = down + e * D * I;
      const uint8_t *dnScales = downScales + e * downScaleSlab;
      parallelFor(pool, I, grainFor(2 * D), [&](int64_t begin, int64_t end) {
        std::vector<float> gRow(static_cast<size_t>(D)), uRow(static_cast<size_t>(D));
        for (int64_t i = begin; i < end; ++i) {
          dequantizeRow(gu, guScales, i, D, block, table, 0x0F, gRow.data());
          dequantizeRow(gu, guScales, I + i, D, block, table, 0x0F, uRow.data());
          const float g = dot(gRow.data(), x, D);
          const float u = dot(uRow.data(), x, D);
          act[i] = silu(std::min(g, L)) * std::clamp(u, -L, L);
        }
      });
      fakeQuantizeActivations(act.data(), 1, I, quant::kActivationGroup);
      parallelFor(pool, D, grainFor(I), [&](int64_t begin, int64_t end) {
        std::vector<float> dRow(static_cast<size_t>(I));
        for (int64_t d = begin; d < end; ++d) {
          dequantizeRow(dn, dnScales, d, I, block, table, 0x0F, dRow.data());
          out[t * D + d] += dot(dRow.data(), act.data(), I) * weight;
        }
      });
    }
  }
}

} // namespace v4rt::ref

namespace v4rt {

namespace {

// The `block` attribute ([rows, cols] of one weight scale block).
quant::BlockShape blockAttr(const KernelArgs &a) {
  for (const Attr &attr : a.step().attrs)
    if (attr.name == "block") {
      v4c::check(attr.ints.size() == 2 && attr.ints[0] > 0 && attr.ints[1] > 0,
                 "kernel step attribute 'block' must be two positive sizes [rows, cols]");
      return {attr.ints[0], attr.ints[1]};
    }
  throw v4c::Error("kernel step is missing attribute 'block'");
}

// v4.linear_fp8 %x, %w, %scale
void linearFp8Kernel(const KernelArgs &a) {
  ref::linearFp8(a.in<float>(0), a.tokens, a.inDim(0, 1), a.in<uint8_t>(1), a.in<uint8_t>(2),
                 a.inDim(1, 0), blockAttr(a), a.out<float>(0), a.pool);
}

// v4.moe_fp4 %h, %weights, %experts, %gate_up, %gate_up_scale, %down, %down_scale
void moeFp4Kernel(const KernelArgs &a) {
  const ref::MoeParams p = moeParams(a);
  checkExpertIds(a, p);
  ref::moeFp4(a.in<float>(0), a.tokens, a.in<float>(1), a.in<int32_t>(2), a.in<uint8_t>(3),
              a.in<uint8_t>(4), a.in<uint8_t>(5), a.in<uint8_t>(6), blockAttr(a).cols, p,
              a.out<float>(0), a.pool);
}

} // namespace

std::vector<NamedKernel> quantCpuKernels() {
  return {
      {"v4.linear_fp8", linearFp8Kernel},
      {"v4.moe_fp4", moeFp4Kernel},
  };
}

} // namespace v4rt
