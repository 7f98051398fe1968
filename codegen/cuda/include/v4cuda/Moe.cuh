// v4.moe and v4.moe_fp4: the routed experts (ref::moe, MoeKernels.cpp;
// ref::moeFp4, QuantKernels.cpp):
//   out[t] = sum over the token's k slots of weight * down_e(swiglu(gate_up_e h)),
//   [g; u] = gate_up_e h (g rows [0, I), u rows [I, 2I)).
// moe_fp4: gate_up/down are e2m1 codes (one per byte) with ue8m0 scales per
// 1 x blockCols; h and the SwiGLU output are quantized to e4m3 per 1 x 128
// group first (fake quantization, exactly Quantization.cpp's rounding).
// Expert ids come from the device (the router's output); an id outside
// [0, E) is clamped, as the fp4 reference does, so it can never read outside
// the weights.
//
// Three launch shapes (StateEmitters.cpp picks):
//  - split path (decode, T <= 8): block (token, slot, slice) computes the
//    SwiGLU of `slice` rows of I and their part of the down product for all
//    D outputs (every weight byte read once per token, T * k * I / slice
//    blocks; bf16 slices shrink to 32 rows so >= 264 blocks stream the
//    experts), adding into an f32 accumulator; the last block (arriveLast)
//    rounds it into `out` and clears it for the next launch.
//  - tensor cores (prefill, bf16 or fp4 experts): MoeMma.cuh.
//  - grouped path (prefill, f32): one block per (expert, slice of I) handles
//    the chunk's tokens routed to that expert, TOK at a time, so weights are
//    read once per TOK tokens (moeGrouped below); CUDA cores.
#pragma once

#include <cstdint>

#include <v4cuda/Cache.cuh>
#include <v4cuda/Common.cuh>
#include <v4cuda/DenseMath.cuh>

namespace v4cuda {

struct MoeShape {
  int experts; // E
  int topK;    // k
  int D;
  int I;
  float limit; // swiglu_limit
};

constexpr int kMoeThreads = 256;
constexpr int kMoeActivationGroup = 128; // e4m3 activation scale block (Quantization.h kActivationGroup)

namespace state {

// e2m1 code (low nibble, bit 3 = sign) -> +-{0, 0.5, 1, 1.5, 2, 3, 4, 6}.
__device__ __forceinline__ float decodeE2M1(uint32_t code) {
  const uint32_t exponent = (code >> 1) & 3u, mantissa = code & 1u;
  const float magnitude = exponent == 0 ? 0.5f * mantissa : ldexpf(1.0f + 0.5f * mantissa, exponent - 1);
  return (code & 8u) ? -magnitude : magnitude;
}
// ue8m0 byte -> 2^(e - 127); 0xFF is the format's NaN.
__device__ __forceinline__ float decodeUe8m0(uint32_t scale) {
  return scale == 0xFFu ? __int_as_float(0x7fc00000) : ldexpf(1.0f, static_cast<int>(scale) - 127);
}
// quant::chooseUe8m0 as an exponent: the smallest e with amax / 2^e <= maxValue.
__device__ __forceinline__ int ue8m0Exponent(float amax, float maxValue) {
  if (!(amax > 0.0f) || isinf(amax))
    return 0;
  int exponent = 0;
  frexpf(amax / maxValue, &exponent);
  while (exponent > -127 && ldexpf(maxValue, exponent - 1) >= amax)
    --exponent;
  while (ldexpf(maxValue, exponent) < amax)
    ++exponent;
  return exponent < -127 ? -127 : (exponent > 127 ? 127 : exponent);
}

// x[0, n) (shared) <- fq(x): e4m3 per group of 128 with a ue8m0 scale
// (ref::fakeQuantizeActivations). One warp per group; block-wide.
__device__ __forceinline__ void fakeQuantizeShared(float *x, int n) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int g0 = warp * kMoeActivationGroup; g0 < n; g0 += warps * kMoeActivationGroup) {
    const int g1 = g0 + kMoeActivationGroup < n ? g0 + kMoeActivationGroup : n;
    float amax = 0.0f;
    for (int i = g0 + lane; i < g1; i += 32)
      amax = fmaxf(amax, fabsf(x[i]));
    amax = warpMax(amax);
    const int exponent = ue8m0Exponent(amax, 448.0f);
    const float inverse = ldexpf(1.0f, -exponent), scale = ldexpf(1.0f, exponent);
    for (int i = g0 + lane; i < g1; i += 32)
      x[i] = static_cast<float>(__nv_fp8_e4m3(x[i] * inverse)) * scale;
  }
  __syncthreads();
}

// Dense expert rows [rows, cols] of WT.
template <typename WT> struct DenseExpertRows {
  const WT *w;
  int cols;
  template <int V> __device__ void load(long long row, int col, float (&out)[V]) const {
    loadVec<V>(w + row * cols + col, out);
  }
};

// fp4 expert rows: codes [rows, cols] (one per byte), scales [rows, ceil(cols / blockCols)].
struct Fp4ExpertRows {
  const uint8_t *codes;
  const uint8_t *scales;
  int cols;
  int blockCols;
  template <int V> __device__ void load(long long row, int col, float (&out)[V]) const {
    const int scaleCols = (cols + blockCols - 1) / blockCols;
    const uint8_t *c = codes + row * cols + col;
    // V codes in one 4-, 8- or 16-byte load (row * cols + col is a multiple of V).
    uint8_t bytes[V];
    loadElements<V>(c, bytes);
    const uint8_t *rowScales = scales + row * scaleCols;
#pragma unroll
    for (int v = 0; v < V; ++v) // the dequantized weight, as the CPU's dequantizeRow
      out[v] = decodeE2M1(bytes[v]) * decodeUe8m0(rowScales[(col + v) / blockCols]);
  }
};

// row . x over cols [0, n) (x in shared), one warp, V columns per lane step
// (long rows: the gate/up projections, lanes read consecutive chunks).
template <int V, typename Rows>
__device__ __forceinline__ float warpRowDot(const Rows &rows, long long row, int colBegin, const float *x, int n) {
  const int lane = threadIdx.x & 31;
  float sum = 0.0f;
#pragma unroll 4
  for (int i = lane * V; i < n; i += 32 * V) {
    float w[V];
    rows.template load<V>(row, colBegin + i, w);
#pragma unroll
    for (int v = 0; v < V; ++v)
      sum += w[v] * x[i + v];
  }
  return warpSum(sum);
}

// row . x over cols [0, n), one thread (the down projection: one output row
// per thread, V-column vector loads, x read as a shared-memory broadcast).
template <int V, typename Rows>
__device__ __forceinline__ float threadRowDot(const Rows &rows, long long row, int colBegin, const float *x, int n) {
  float sum = 0.0f;
#pragma unroll 4
  for (int i = 0; i < n; i += V) {
    float w[V];
    rows.template load<V>(row, colBegin + i, w);
#pragma unroll
    for (int v = 0; v < V; ++v)
      sum += w[v] * x[i + v];
  }
  return sum;
}

// act[i - i0] = swiglu(g_i, u_i) for i in [i0, i1) of expert e (one warp per row).
template <int V, typename Rows>
__device__ __forceinline__ void expertSwiglu(const Rows &gateUp, int e, const float *x, float *act, int i0,
                                             int i1, const MoeShape &shape) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  const long long base = static_cast<long long>(e) * 2 * shape.I;
  for (int i = i0 + warp; i < i1; i += warps) {
    const float g = warpRowDot<V>(gateUp, base + i, 0, x, shape.D);
    const float u = warpRowDot<V>(gateUp, base + shape.I + i, 0, x, shape.D);
    if (lane == 0)
      act[i - i0] = swigluRef(g, u, shape.limit);
  }
  __syncthreads();
}

__device__ __forceinline__ int clampExpert(int32_t e, int experts) {
  return e < 0 ? 0 : (e >= experts ? experts - 1 : e);
}

template <typename HT> __device__ __forceinline__ void loadTokenRow(const HT *h, int t, int D, float *x) {
  for (int d = threadIdx.x; d < D; d += blockDim.x)
    x[d] = toFloat(h[static_cast<long long>(t) * D + d]);
  __syncthreads();
}

} // namespace state

// Grouped path (prefill). grid.x = E * slices, block (expert e, slice s):
// it scans the chunk's expert ids for the (token, slot) pairs routed to e
// and handles them TOK at a time, so each weight row it loads serves TOK
// tokens: the SwiGLU of its `slice` rows of I (warp per row), then their
// part of the down product for all D outputs (thread per output), added
// into the f32 accumulator. A token's row is final after k * slices
// additions; the block that makes the last one (a per-token counter) rounds
// it into `out` and clears it. Dynamic shared memory: moeGroupedSharedBytes.
constexpr int moeGroupedSharedBytes(int D, int slice, int tokens, int threads) {
  return (tokens * (D + slice) + threads + 1 + tokens) * 4;
}

template <int V, bool FP4, int TOK, typename HT, typename WeightT, typename GateUpRows, typename DownRows,
          typename OutT>
__device__ void moeGrouped(const HT *h, const WeightT *weights, const int32_t *experts, const GateUpRows &gateUp,
                           const DownRows &down, OutT *out, MoeShape shape, int slice, float *accumulator,
                           unsigned int *done, const int32_t *dyn) {
  extern __shared__ float moeShared[];
  const int T = presentTokens(dyn);
  const int D = shape.D, I = shape.I, k = shape.topK;
  const int slices = (I + slice - 1) / slice;
  const int e = blockIdx.x / slices, part = blockIdx.x % slices;
  const int i0 = part * slice, i1 = i0 + slice < I ? i0 + slice : I, n = i1 - i0;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  float *x = moeShared;                                      // [TOK][D]
  float *act = x + TOK * D;                                  // [TOK][slice]
  int *pairs = reinterpret_cast<int *>(act + TOK * slice);   // [blockDim]: t * k + slot routed to e
  int *pairCount = pairs + blockDim.x;                       // [1]
  int *finished = pairCount + 1;                             // [TOK]
  const long long gateRow = static_cast<long long>(e) * 2 * I, downRow = static_cast<long long>(e) * D;

  for (int base = 0; base < T * k; base += blockDim.x) { // uniform
    if (threadIdx.x == 0)
      *pairCount = 0;
    __syncthreads();
    const int pair = base + static_cast<int>(threadIdx.x);
    if (pair < T * k && state::clampExpert(experts[pair], shape.experts) == e)
      pairs[atomicAdd(pairCount, 1)] = pair;
    __syncthreads();
    const int matched = *pairCount;
    for (int g = 0; g < matched; g += TOK) { // uniform
      const int group = matched - g < TOK ? matched - g : TOK;
      for (int j = 0; j < group; ++j) {
        const long long t = pairs[g + j] / k;
        for (int d = threadIdx.x; d < D; d += blockDim.x)
          x[j * D + d] = toFloat(h[t * D + d]);
      }
      __syncthreads();
      if constexpr (FP4)
        for (int j = 0; j < group; ++j)
          state::fakeQuantizeShared(x + j * D, D);
      for (int r = i0 + warp; r < i1; r += warps) {
        float gate[TOK], up[TOK];
#pragma unroll
        for (int j = 0; j < TOK; ++j)
          gate[j] = up[j] = 0.0f;
        for (int c = lane * V; c < D; c += 32 * V) {
          float wg[V], wu[V];
          gateUp.template load<V>(gateRow + r, c, wg);
          gateUp.template load<V>(gateRow + I + r, c, wu);
#pragma unroll
          for (int j = 0; j < TOK; ++j)
            if (j < group)
#pragma unroll
              for (int v = 0; v < V; ++v) {
                gate[j] += wg[v] * x[j * D + c + v];
                up[j] += wu[v] * x[j * D + c + v];
              }
        }
#pragma unroll
        for (int j = 0; j < TOK; ++j) {
          const float gj = warpSum(gate[j]), uj = warpSum(up[j]);
          if (lane == 0 && j < group)
            act[j * slice + (r - i0)] = swigluRef(gj, uj, shape.limit);
        }
      }
      __syncthreads();
      if constexpr (FP4)
        for (int j = 0; j < group; ++j)
          state::fakeQuantizeShared(act + j * slice, n);
      for (int d = threadIdx.x; d < D; d += blockDim.x) {
        float y[TOK];
#pragma unroll
        for (int j = 0; j < TOK; ++j)
          y[j] = 0.0f;
        for (int c = 0; c < n; c += V) {
          float w[V];
          down.template load<V>(downRow + d, i0 + c, w);
#pragma unroll
          for (int j = 0; j < TOK; ++j)
            if (j < group)
#pragma unroll
              for (int v = 0; v < V; ++v)
                y[j] += w[v] * act[j * slice + c + v];
        }
        for (int j = 0; j < group; ++j) {
          const int routed = pairs[g + j];
          atomicAdd(accumulator + static_cast<long long>(routed / k) * D + d, y[j] * toFloat(weights[routed]));
        }
      }
      // Which of these tokens received their last addition here?
      __threadfence();
      __syncthreads();
      if (threadIdx.x == 0)
        for (int j = 0; j < group; ++j) {
          const int t = pairs[g + j] / k;
          finished[j] = atomicAdd(done + t, 1u) == static_cast<unsigned int>(k * slices) - 1;
          if (finished[j])
            atomicExch(done + t, 0u);
        }
      __syncthreads();
      for (int j = 0; j < group; ++j)
        if (finished[j]) { // uniform
          __threadfence();
          const long long t = pairs[g + j] / k;
          for (int d = threadIdx.x; d < D; d += blockDim.x) {
            out[t * D + d] = fromFloat<OutT>(state::loadCoherent(accumulator + t * D + d));
            accumulator[t * D + d] = 0.0f;
          }
        }
      __syncthreads(); // x, act, pairs and finished are reused
    }
  }
}

// Split path. grid.x = bucket tokens * k * slices, any multiple of 32
// threads (the emitter: kMoeThreads, 512 for fp4), dynamic shared memory
// moeSplitSharedBytes. `slice` rows of I per block
// (with FP4 a multiple of 128, or all of I, so each e4m3 group of the
// SwiGLU output lies in one block). `accumulator` holds tokens * D floats
// (zero between launches), `done` one counter per token.
constexpr int moeSplitSharedBytes(int D, int slice) { return (D + slice) * 4; }

template <int V, bool FP4, typename HT, typename WeightT, typename GateUpRows, typename DownRows, typename OutT>
__device__ void moeSplit(const HT *h, const WeightT *weights, const int32_t *experts, const GateUpRows &gateUp,
                         const DownRows &down, OutT *out, MoeShape shape, int slice, float *accumulator,
                         unsigned int *done, const int32_t *dyn) {
  extern __shared__ float moeShared[];
  const int T = presentTokens(dyn);
  const int D = shape.D, I = shape.I, k = shape.topK;
  const int slices = (I + slice - 1) / slice;
  const int t = blockIdx.x / (k * slices), slot = (blockIdx.x / slices) % k, part = blockIdx.x % slices;
  if (t >= T)
    return;
  float *x = moeShared, *act = moeShared + D;
  state::loadTokenRow(h, t, D, x);
  if constexpr (FP4)
    state::fakeQuantizeShared(x, D);
  const int e = state::clampExpert(experts[static_cast<long long>(t) * k + slot], shape.experts);
  const float weight = toFloat(weights[static_cast<long long>(t) * k + slot]);
  const int i0 = part * slice, i1 = i0 + slice < I ? i0 + slice : I;
  state::expertSwiglu<V>(gateUp, e, x, act, i0, i1, shape);
  if constexpr (FP4)
    state::fakeQuantizeShared(act, i1 - i0);
  float *acc = accumulator + static_cast<long long>(t) * D;
  for (int d = threadIdx.x; d < D; d += blockDim.x)
    atomicAdd(acc + d, state::threadRowDot<V>(down, static_cast<long long>(e) * D + d, i0, act, i1 - i0) * weight);
  if (!state::arriveLast(done + t, k * slices))
    return;
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    out[static_cast<long long>(t) * D + d] = fromFloat<OutT>(state::loadCoherent(acc + d));
    acc[d] = 0.0f;
  }
}

} // namespace v4cuda
