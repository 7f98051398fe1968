// Reference kernels of the quantized ops (v4.linear_fp8, v4.moe_fp4): the
// single definition of their numerics, run by the CPU backend and the tests.
// Weights arrive as one code per byte plus ue8m0 block scales (Quantization.h);
// activations are quantized to e4m3 per 1 x 128 group at run time, then both
// sides are dequantized exactly (power-of-two scales) and accumulated in f32.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector> // before ReferenceKernels.h: CacheBuffer.h relies on its includer for size_t

#include "runtime/cpu/Quantization.h"
#include "runtime/cpu/ReferenceKernels.h"

namespace v4rt::ref {

// y[T, N] = fq(x) w^T with w [N, K] e4m3 codes and scales
// [ceil(N/block.rows), ceil(K/block.cols)]; fq quantizes x to e4m3 per 1 x
// block.cols group (the weight's K block, 128 in DeepSeek's releases).
void linearFp8(const float *x, int64_t T, int64_t K, const uint8_t *w, const uint8_t *scales,
               int64_t N, quant::BlockShape block, float *out, ThreadPool *pool);

// v4.moe with fp4 (e2m1) experts: gate_up [E, 2I, D] and down [E, D, I]
// codes, scales [E, 2I, ceil(D/blockCols)] and [E, D, ceil(I/blockCols)].
// Expert inputs (h and the SwiGLU output) are quantized to e4m3 per 1 x 128.
void moeFp4(const float *h, int64_t T, const float *weights, const int32_t *experts,
            const uint8_t *gateUp, const uint8_t *gateUpScales, const uint8_t *down,
            const uint8_t *downScales, int64_t blockCols, const MoeParams &p, float *out,
            ThreadPool *pool);

// fq(x): x quantized to e4m3 per 1 x group and dequantized, in place.
void fakeQuantizeActivations(float *x, int64_t T, int64_t K, int64_t group);

} // namespace v4rt::ref
