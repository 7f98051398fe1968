// Row-wise and elementwise dense ops: v4.embed, v4.add, v4.rms_norm,
// v4.swiglu, v4.rope (ref:: functions of runtime/cpu/DenseKernels.cpp).
// The matmuls are in DenseLinear.cuh, fp8 in Quant.cuh.
//
// Launch geometry per op is stated above each template; the emitters in
// codegen/cuda/DenseEmitters.cpp compute the same numbers.
//
// In place (docs/ops.md, V4_InPlaceElementwise): add, swiglu, rms_norm and
// rope may run with out == an input. Each thread reads the elements it writes
// before writing them and no thread reads an element another thread writes
// (rms_norm reads its whole group for the sum before any write), so the bits
// are those of a separate output.
#pragma once

#include <v4cuda/DenseLinear.cuh>

namespace v4cuda {

// Elementwise kernels: a grid-stride loop over the present rows' elements.
constexpr int kElementwiseThreads = 256;

// v4.embed ids [T] i32, table [V, D] -> [T, D]. grid.x = T, block 256.
template <typename TT, typename TY, int VOCAB, int D>
__device__ __forceinline__ void embed(const int32_t *ids, const TT *table, TY *out, const int32_t *dyn) {
  const int t = blockIdx.x;
  if (t >= presentTokens(dyn))
    return;
  // The session range-checks ids; clamp like ref::embed.
  const int id = min(max(ids[t], 0), VOCAB - 1);
  const TT *row = table + static_cast<int64_t>(id) * D;
  TY *o = out + static_cast<int64_t>(t) * D;
  for (int d = threadIdx.x; d < D; d += blockDim.x)
    o[d] = fromFloat<TY>(toFloat(row[d]));
}

// v4.add a, b [T, C] -> [T, C]. Any grid (grid-stride), block 256.
template <typename TA, typename TB, typename TY, int T_MAX, int C>
__device__ __forceinline__ void add(const TA *a, const TB *b, TY *out, const int32_t *dyn) {
  const int64_t count = static_cast<int64_t>(presentRows<T_MAX>(dyn)) * C;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = fromFloat<TY>(toFloat(a[i]) + toFloat(b[i]));
}

// v4.swiglu gate, up [T, I] -> [T, I]. Any grid (grid-stride), block 256.
template <typename TG, typename TU, typename TY, int T_MAX, int I>
__device__ __forceinline__ void swiglu(const TG *gate, const TU *up, TY *out, float limit, const int32_t *dyn) {
  const int64_t count = static_cast<int64_t>(presentRows<T_MAX>(dyn)) * I;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = fromFloat<TY>(swigluRef(toFloat(gate[i]), toFloat(up[i]), limit));
}

// v4.rms_norm x [T, C], optional w [G] -> [T, C], each group of G channels
// normalised on its own (ref::rmsNorm).
//   G <= 1024: one warp per group, 8 groups per block:
//              grid.x = T * ceil((C/G) / 8), block 256.
//   G > 1024:  one block per group: grid.x = T * (C/G), block 256.
constexpr int kRmsNormThreads = 256;
template <int C, int G> __host__ __device__ constexpr int rmsNormBlocksPerRow() {
  return G <= 1024 ? (C / G + kRmsNormThreads / 32 - 1) / (kRmsNormThreads / 32) : C / G;
}

template <typename TX, typename TW, typename TY, int C, int G, bool HAS_W>
__device__ __forceinline__ void rmsNorm(const TX *x, const TW *w, TY *out, double eps, const int32_t *dyn) {
  constexpr int kGroups = C / G, kBlocksPerRow = rmsNormBlocksPerRow<C, G>();
  const int t = blockIdx.x / kBlocksPerRow, part = blockIdx.x % kBlocksPerRow;
  if (t >= presentTokens(dyn))
    return;
  if constexpr (G <= 1024) {
    const int g = part * (kRmsNormThreads / 32) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (g >= kGroups)
      return;
    const TX *in = x + static_cast<int64_t>(t) * C + g * G;
    TY *o = out + static_cast<int64_t>(t) * C + g * G;
    double sum = 0.0;
    for (int i = lane; i < G; i += 32) {
      const double v = toFloat(in[i]);
      sum += v * v;
    }
    const float inv = inverseRmsFromSum(warpSum(sum), G, eps);
    for (int i = lane; i < G; i += 32) {
      const float scaled = toFloat(in[i]) * inv;
      o[i] = fromFloat<TY>(HAS_W ? toFloat(w[i]) * scaled : scaled);
    }
  } else {
    __shared__ double scratch[32];
    const TX *in = x + static_cast<int64_t>(t) * C + part * G;
    TY *o = out + static_cast<int64_t>(t) * C + part * G;
    double sum = 0.0;
    for (int i = threadIdx.x; i < G; i += blockDim.x) {
      const double v = toFloat(in[i]);
      sum += v * v;
    }
    const float inv = inverseRmsFromSum(blockSum(sum, scratch), G, eps);
    for (int i = threadIdx.x; i < G; i += blockDim.x) {
      const float scaled = toFloat(in[i]) * inv;
      o[i] = fromFloat<TY>(HAS_W ? toFloat(w[i]) * scaled : scaled);
    }
  }
}

// One rotary pair at `position` (ref::ropeVector): (x0, x1) -> rotated, with
// the products rounded separately like the CPU (no fused multiply-add).
__device__ __forceinline__ void rotatePair(float &x0, float &x1, int position, float invFreq, double scaling,
                                           bool inverse) {
  const float angle = __fmul_rn(static_cast<float>(position), invFreq);
  const float c = static_cast<float>(static_cast<double>(cosf(angle)) * scaling);
  float s = static_cast<float>(static_cast<double>(sinf(angle)) * scaling);
  if (inverse)
    s = -s;
  const float r0 = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));
  const float r1 = __fadd_rn(__fmul_rn(x1, c), __fmul_rn(x0, s));
  x0 = r0;
  x1 = r1;
}

// v4.rope x [T, C] (heads of HD channels), positions [T] -> [T, C]: per head
// the last RD channels as pairs (2i, 2i+1) rotated by pos * invFreq[i], the
// rest copied. One thread per channel pair; any grid (grid-stride), block 256.
template <typename TX, typename TY, int T_MAX, int C, int HD, int RD>
__device__ __forceinline__ void rope(const TX *x, const int32_t *positions, TY *out, const float *invFreq,
                                     double scaling, bool inverse, const int32_t *dyn) {
  static_assert(C % HD == 0 && HD % 2 == 0 && RD % 2 == 0 && RD <= HD, "rope shape");
  constexpr int kPairsPerRow = C / 2, kFirstRotated = HD - RD;
  const int64_t pairs = static_cast<int64_t>(presentRows<T_MAX>(dyn)) * kPairsPerRow;
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; p < pairs;
       p += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int t = static_cast<int>(p / kPairsPerRow);
    const int channel = static_cast<int>(p % kPairsPerRow) * 2;
    const int local = channel % HD;
    const int64_t index = static_cast<int64_t>(t) * C + channel;
    float x0 = toFloat(x[index]), x1 = toFloat(x[index + 1]);
    if (local >= kFirstRotated)
      rotatePair(x0, x1, positions[t], invFreq[(local - kFirstRotated) / 2], scaling, inverse);
    out[index] = fromFloat<TY>(x0);
    out[index + 1] = fromFloat<TY>(x1);
  }
}

} // namespace v4cuda
