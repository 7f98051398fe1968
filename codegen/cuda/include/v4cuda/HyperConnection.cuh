// mHC (manifold-constrained hyper-connections): v4.hc_expand, v4.hc_pre,
// v4.hc_post, v4.hc_head and the fused v4.hc_post_pre, mirroring
// runtime/cpu/HyperConnectionKernels.cpp. The residual is HC streams of D
// channels per token ([T, HC*D], stream j = channels [j*D, (j+1)*D)).
//
// hc_pre / hc_head / hc_post_pre: one block of kHcThreads per token
// (grid.x = T). hc_expand / hc_post: elementwise, any grid, block 256.
#pragma once

#include <v4cuda/DenseMath.cuh>

namespace v4cuda {

constexpr int kHcThreads = 512;

// v4.hc_expand x [T, D] -> [T, HC*D] (HC copies).
template <typename TX, typename TY, int T_MAX, int HC, int D>
__device__ __forceinline__ void hcExpand(const TX *x, TY *out, const int32_t *dyn) {
  const int64_t count = static_cast<int64_t>(presentRows<T_MAX>(dyn)) * HC * D;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = i / (HC * D);
    const int d = static_cast<int>(i % D);
    out[i] = fromFloat<TY>(toFloat(x[t * D + d]));
  }
}

// One (t, d) of hc_post for all HC output streams:
// X'_c = post_c * y + sum_j comb[j*HC + c] X_j (ref::hcPost).
template <int HC, typename TX, typename TYy, typename TP, typename TC, typename TO>
__device__ __forceinline__ void hcPostChannel(const TX *X, const TYy *y, const TP *post, const TC *comb, TO *out,
                                              int64_t t, int d, int D) {
  float streams[HC];
#pragma unroll
  for (int j = 0; j < HC; ++j)
    streams[j] = toFloat(X[(t * HC + j) * D + d]);
  const float yv = toFloat(y[t * D + d]);
#pragma unroll
  for (int c = 0; c < HC; ++c) {
    float mixed = 0.0f;
#pragma unroll
    for (int j = 0; j < HC; ++j)
      mixed += toFloat(comb[t * HC * HC + j * HC + c]) * streams[j];
    out[(t * HC + c) * D + d] = fromFloat<TO>(toFloat(post[t * HC + c]) * yv + mixed);
  }
}

// v4.hc_post X [T, HC*D], y [T, D], post [T, HC], comb [T, HC*HC] -> [T, HC*D].
template <typename TX, typename TYy, typename TP, typename TC, typename TO, int T_MAX, int HC, int D>
__device__ __forceinline__ void hcPost(const TX *X, const TYy *y, const TP *post, const TC *comb, TO *out,
                                       const int32_t *dyn) {
  const int64_t count = static_cast<int64_t>(presentRows<T_MAX>(dyn)) * D;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    hcPostChannel<HC>(X, y, post, comb, out, i / D, static_cast<int>(i % D), D);
}

// The block's shared state for one token of hc_pre / hc_head.
template <int ROWS> struct HcShared {
  double scratch[32];
  float partial[kHcThreads / 32][ROWS];
  float mix[ROWS];
  float pre[ROWS]; // the first HC are used
};

// mix[r] = fn[r] . (x * inv_rms(x)) for r < ROWS over the W = HC*D channels of
// one token (ref's mixStreams), into shared memory. x may have been written
// by this block (hc_post_pre), so it is read with coherent loads.
template <typename TX, typename TF, int W, int ROWS>
__device__ __forceinline__ void hcMix(const TX *x, const TF *fn, double normEps, HcShared<ROWS> &sh) {
  constexpr int V = rowsAligned16<TF>(W, 0) && W % kElemsPer16<TF> == 0 ? kElemsPer16<TF> : 1;
  constexpr bool kXAligned = rowsAligned16<TX>(W, 0);
  double sumSquares = 0.0;
  for (int i = threadIdx.x; i < W; i += blockDim.x) {
    const double v = toFloat(x[i]);
    sumSquares += v * v;
  }
  const float inv = inverseRmsFromSum(blockSum(sumSquares, sh.scratch), W, normEps);
  float acc[ROWS];
#pragma unroll
  for (int r = 0; r < ROWS; ++r)
    acc[r] = 0.0f;
  for (int i = threadIdx.x * V; i < W; i += blockDim.x * V) {
    float normed[V];
    loadFloats<V, kXAligned, false>(x + i, normed);
#pragma unroll
    for (int v = 0; v < V; ++v)
      normed[v] *= inv; // ref: normed[i] = X[i] * inv, then the dot products
#pragma unroll
    for (int r = 0; r < ROWS; ++r) {
      float w[V];
      loadFloats<V, true>(fn + static_cast<int64_t>(r) * W + i, w);
#pragma unroll
      for (int v = 0; v < V; ++v)
        acc[r] = fmaf(w[v], normed[v], acc[r]);
    }
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int r = 0; r < ROWS; ++r) {
    const float total = warpSum(acc[r]);
    if (lane == 0)
      sh.partial[warp][r] = total;
  }
  __syncthreads();
  if (threadIdx.x < ROWS) {
    float total = 0.0f;
    for (int w = 0; w < static_cast<int>(blockDim.x >> 5); ++w)
      total += sh.partial[w][threadIdx.x];
    sh.mix[threadIdx.x] = total;
  }
  __syncthreads();
}

// a * b + c with both roundings, like the CPU's separate multiply and add.
__device__ __forceinline__ float mulAdd(float a, float b, float c) { return __fadd_rn(__fmul_rn(a, b), c); }

// Row softmax + eps, then Sinkhorn normalisation (ref's sinkhorn), in place
// on C [HC][HC] (row j, column c). One thread.
template <int HC> __device__ __forceinline__ void sinkhorn(float (&C)[HC * HC], float eps, int iterations) {
#pragma unroll
  for (int j = 0; j < HC; ++j) {
    float mx = C[j * HC];
#pragma unroll
    for (int c = 1; c < HC; ++c)
      mx = fmaxf(mx, C[j * HC + c]);
    float sum = 0.0f;
#pragma unroll
    for (int c = 0; c < HC; ++c) {
      C[j * HC + c] = expf(C[j * HC + c] - mx);
      sum += C[j * HC + c];
    }
#pragma unroll
    for (int c = 0; c < HC; ++c)
      C[j * HC + c] = C[j * HC + c] / sum + eps;
  }
  // ref: columns once, then (iterations - 1) rounds of rows + columns.
  for (int it = 0; it < (iterations > 1 ? iterations : 1); ++it) {
    if (it > 0) { // rows, then columns; the first round is columns only
#pragma unroll
      for (int j = 0; j < HC; ++j) {
        float sum = 0.0f;
#pragma unroll
        for (int c = 0; c < HC; ++c)
          sum += C[j * HC + c];
#pragma unroll
        for (int c = 0; c < HC; ++c)
          C[j * HC + c] /= sum + eps;
      }
    }
#pragma unroll
    for (int c = 0; c < HC; ++c) {
      float sum = 0.0f;
#pragma unroll
      for (int j = 0; j < HC; ++j)
        sum += C[j * HC + c];
#pragma unroll
      for (int j = 0; j < HC; ++j)
        C[j * HC + c] /= sum + eps;
    }
  }
}

// collapsed[d] = sum_j pre_j X_j[d] for one token (ref's collapse).
template <typename TX, typename TY, int HC, int D>
__device__ __forceinline__ void hcCollapse(const TX *x, const float *pre, TY *out) {
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float sum = 0.0f;
#pragma unroll
    for (int j = 0; j < HC; ++j)
      sum += pre[j] * toFloat(x[j * D + d]);
    out[d] = fromFloat<TY>(sum);
  }
}

// hc_pre of token t whose streams row is x: collapsed, post and comb rows.
template <typename TX, typename TF, typename TB, typename TS, typename TY, typename TP, typename TC, int HC, int D>
__device__ __forceinline__ void hcPreToken(const TX *x, const TF *fn, const TB *base, const TS *scale, TY *collapsed,
                                           TP *post, TC *comb, double normEps, float hcEps, int sinkhornIters,
                                           int64_t t) {
  constexpr int ROWS = (2 + HC) * HC;
  __shared__ HcShared<ROWS> sh;
  hcMix<TX, TF, HC * D, ROWS>(x, fn, normEps, sh);
  if (threadIdx.x == 0) {
    const float s0 = toFloat(scale[0]), s1 = toFloat(scale[1]), s2 = toFloat(scale[2]);
#pragma unroll
    for (int j = 0; j < HC; ++j) {
      sh.pre[j] = sigmoidRef(mulAdd(sh.mix[j], s0, toFloat(base[j]))) + hcEps;
      post[t * HC + j] = fromFloat<TP>(2.0f * sigmoidRef(mulAdd(sh.mix[HC + j], s1, toFloat(base[HC + j]))));
    }
    float C[HC * HC];
#pragma unroll
    for (int i = 0; i < HC * HC; ++i)
      C[i] = mulAdd(sh.mix[2 * HC + i], s2, toFloat(base[2 * HC + i]));
    sinkhorn<HC>(C, hcEps, sinkhornIters);
#pragma unroll
    for (int i = 0; i < HC * HC; ++i)
      comb[t * HC * HC + i] = fromFloat<TC>(C[i]);
  }
  __syncthreads();
  hcCollapse<TX, TY, HC, D>(x, sh.pre, collapsed + t * D);
}

// v4.hc_pre X [T, HC*D], fn [(2+HC)*HC, HC*D], base [(2+HC)*HC], scale [3]
//   -> collapsed [T, D], post [T, HC], comb [T, HC*HC]. grid.x = T, block kHcThreads.
template <typename TX, typename TF, typename TB, typename TS, typename TY, typename TP, typename TC, int HC, int D>
__device__ __forceinline__ void hcPre(const TX *X, const TF *fn, const TB *base, const TS *scale, TY *collapsed,
                                      TP *post, TC *comb, double normEps, float hcEps, int sinkhornIters,
                                      const int32_t *dyn) {
  const int64_t t = blockIdx.x;
  if (t >= presentTokens(dyn))
    return;
  hcPreToken<TX, TF, TB, TS, TY, TP, TC, HC, D>(X + t * HC * D, fn, base, scale, collapsed, post, comb, normEps,
                                                hcEps, sinkhornIters, t);
}

// v4.hc_head X [T, HC*D], fn [HC, HC*D], base [HC], scale [1] -> [T, D].
// grid.x = T, block kHcThreads.
template <typename TX, typename TF, typename TB, typename TS, typename TY, int HC, int D>
__device__ __forceinline__ void hcHead(const TX *X, const TF *fn, const TB *base, const TS *scale, TY *out,
                                       double normEps, float hcEps, const int32_t *dyn) {
  const int64_t t = blockIdx.x;
  if (t >= presentTokens(dyn))
    return;
  __shared__ HcShared<HC> sh;
  const TX *x = X + t * HC * D;
  hcMix<TX, TF, HC * D, HC>(x, fn, normEps, sh);
  if (threadIdx.x < HC)
    sh.pre[threadIdx.x] = sigmoidRef(mulAdd(sh.mix[threadIdx.x], toFloat(scale[0]), toFloat(base[threadIdx.x]))) + hcEps;
  __syncthreads();
  hcCollapse<TX, TY, HC, D>(x, sh.pre, out + t * D);
}

// v4.hc_post_pre X, y, post, comb, fn, base, scale -> new_streams, collapsed,
// new_post, new_comb: hc_post of the token into new_streams, then hc_pre
// reading that row back (as the unfused pair would). grid.x = T, block kHcThreads.
template <typename TX, typename TYy, typename TP, typename TC, typename TF, typename TB, typename TS, typename TO,
          typename TY, typename TP2, typename TC2, int HC, int D>
__device__ __forceinline__ void hcPostPre(const TX *X, const TYy *y, const TP *post, const TC *comb, const TF *fn,
                                          const TB *base, const TS *scale, TO *streams, TY *collapsed, TP2 *newPost,
                                          TC2 *newComb, double normEps, float hcEps, int sinkhornIters,
                                          const int32_t *dyn) {
  const int64_t t = blockIdx.x;
  if (t >= presentTokens(dyn))
    return;
  for (int d = threadIdx.x; d < D; d += blockDim.x)
    hcPostChannel<HC>(X, y, post, comb, streams, t, d, D);
  __syncthreads(); // the row is complete (and visible to the block) before hc_pre reads it
  hcPreToken<TO, TF, TB, TS, TY, TP2, TC2, HC, D>(streams + t * HC * D, fn, base, scale, collapsed, newPost, newComb,
                                                  normEps, hcEps, sinkhornIters, t);
}

} // namespace v4cuda
