// mHC (manifold-constrained hyper-connections): v4.hc_expand, v4.hc_pre,
// v4.hc_post, v4.hc_head and the fused v4.hc_post_pre, mirroring
// runtime/cpu/HyperConnectionKernels.cpp. The residual is HC streams of D
// channels per token ([T, HC*D], stream j = channels [j*D, (j+1)*D)).
//
// hc_pre / hc_head / hc_post_pre, two launch shapes (DenseEmitters.cpp picks
// by the bucket's static tokens), block kHcThreads:
//   token tiles (T > 8, prefill): kHcTileTokens tokens per block (hcTileMix).
//   split (T <= 8, decode): the mix weights fn [rows, HC*D] are spread over
//     the grid, block p taking columns [p * CHUNK, +CHUNK) of every row for
//     every present token (hcSplitMix). The rms of a token's row is needed
//     before any product (ref: normed[i] = X[i] * inv, then the dots), so
//     each block first computes the whole row's sum of squares itself (the
//     row is small and L2-resident; the weights are not). Partial dots go to
//     a per-entry scratch; the last block (Cache.cuh arriveLast) adds the
//     parts in a fixed order and finishes: pre / post / Sinkhorn / collapse.
// hc_expand / hc_post: elementwise, any grid, block 256.
#pragma once

#include <v4cuda/Cache.cuh>
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

// ---- split shape (decode) ------------------------------------------------------

// Columns of the streams row per block: one 16-byte load of fn per lane.
template <typename TF> __host__ __device__ constexpr int hcSplitChunk() { return 32 * kElemsPer16<TF>; }
// Scratch floats: one partial dot per (token, row, block).
template <int T_MAX, int ROWS, int PARTS> __host__ __device__ constexpr int hcSplitScratch() {
  return T_MAX * ROWS * PARTS;
}

// The streams row of hc_pre / hc_head: stored in X.
template <typename TX, int W> struct StoredStreams {
  const TX *X;
  __device__ float value(int t, int i) const { return toFloat(X[static_cast<int64_t>(t) * W + i]); }
  __device__ void store(int, int, float) const {}
  // For the last block's collapse (every block's stores are visible).
  __device__ float finalValue(int t, int i) const { return value(t, i); }
};

// The streams row of hc_post_pre: hc_post's output rounded to TO (what the
// unfused hc_pre would read), computed from X, y, post, comb; each block
// stores its chunk of it.
template <int HC, int D, typename TX, typename TYy, typename TP, typename TC, typename TO> struct PostedStreams {
  const TX *X;
  const TYy *y;
  const TP *post;
  const TC *comb;
  TO *out;
  __device__ float value(int t, int i) const {
    const int c = i / D, d = i % D;
    float mixed = 0.0f;
#pragma unroll
    for (int j = 0; j < HC; ++j) // hcPostChannel's expression, term by term
      mixed += toFloat(comb[t * HC * HC + j * HC + c]) * toFloat(X[(static_cast<int64_t>(t) * HC + j) * D + d]);
    return toFloat(fromFloat<TO>(toFloat(post[t * HC + c]) * toFloat(y[static_cast<int64_t>(t) * D + d]) + mixed));
  }
  __device__ void store(int t, int i, float v) const { out[static_cast<int64_t>(t) * HC * D + i] = fromFloat<TO>(v); }
  __device__ float finalValue(int t, int i) const { return toFloat(__ldcg(out + static_cast<int64_t>(t) * HC * D + i)); }
};

// The block's shared state of the split mix.
template <int T_MAX, int ROWS, int HC> struct HcSplitShared {
  double scratch[32];
  float inv[T_MAX];
  float mix[T_MAX][ROWS];
  float pre[T_MAX][HC];
};

// 1 / rms of every present token's W stream values into sh.inv (whole block).
template <int W, class Streams, class Shared>
__device__ __forceinline__ void hcInverseRms(const Streams &streams, double normEps, int present, Shared &sh) {
  for (int t = 0; t < present; ++t) {
    double sumSquares = 0.0;
    for (int i = threadIdx.x; i < W; i += blockDim.x) {
      const double v = streams.value(t, i);
      sumSquares += v * v;
    }
    const float inv = inverseRmsFromSum(blockSum(sumSquares, sh.scratch), W, normEps);
    if (threadIdx.x == 0)
      sh.inv[t] = inv;
  }
  __syncthreads();
}

// Every block: partial dots of its column chunk; returns true in the last
// block only, with sh.mix holding the full dots of every present token.
template <int T_MAX, int W, int ROWS, int PARTS, typename TF, class Streams, int HC>
__device__ __forceinline__ bool hcSplitMix(const Streams &streams, const TF *fn, double normEps, float *partials,
                                           unsigned int *done, int present, HcSplitShared<T_MAX, ROWS, HC> &sh) {
  constexpr int V = kElemsPer16<TF>, CHUNK = hcSplitChunk<TF>();
  static_assert(W % V == 0 && PARTS == (W + CHUNK - 1) / CHUNK, "whole 16-byte loads of fn; one chunk per block");
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  hcInverseRms<W>(streams, normEps, present, sh);
  const int i0 = blockIdx.x * CHUNK + lane * V;
  float normed[T_MAX][V];
#pragma unroll
  for (int t = 0; t < T_MAX; ++t)
#pragma unroll
    for (int v = 0; v < V; ++v) {
      const bool inside = t < present && i0 + v < W;
      const float x = inside ? streams.value(t, i0 + v) : 0.0f;
      if (inside && warp == 0)
        streams.store(t, i0 + v, x);
      normed[t][v] = x * (t < present ? sh.inv[t] : 0.0f); // ref: X[i] * inv
    }
  for (int r = warp; r < ROWS; r += warps) {
    float w[V];
    if (i0 < W)
      loadFloats<V, true>(fn + static_cast<int64_t>(r) * W + i0, w);
    else
#pragma unroll
      for (int v = 0; v < V; ++v)
        w[v] = 0.0f;
#pragma unroll
    for (int t = 0; t < T_MAX; ++t) {
      float acc = 0.0f;
#pragma unroll
      for (int v = 0; v < V; ++v)
        acc = fmaf(w[v], normed[t][v], acc);
      acc = warpSum(acc);
      if (lane == 0 && t < present)
        partials[(t * ROWS + r) * PARTS + blockIdx.x] = acc;
    }
  }
  if (!state::arriveLast(done, gridDim.x))
    return false;
  for (int pair = threadIdx.x; pair < present * ROWS; pair += blockDim.x) {
    float total = 0.0f;
    for (int part = 0; part < PARTS; ++part) // a fixed order: the same bits on every run
      total += state::loadCoherent(partials + pair * PARTS + part);
    sh.mix[pair / ROWS][pair % ROWS] = total;
  }
  __syncthreads();
  return true;
}

// collapsed[t][d] = sum_j pre_j X_j[d] for the present tokens (ref's collapse).
template <int T_MAX, int HC, int D, class Streams, typename TY, int ROWS>
__device__ __forceinline__ void hcSplitCollapse(const Streams &streams, const HcSplitShared<T_MAX, ROWS, HC> &sh,
                                                TY *out, int present) {
  for (int i = threadIdx.x; i < present * D; i += blockDim.x) {
    const int t = i / D, d = i % D;
    float sum = 0.0f;
#pragma unroll
    for (int j = 0; j < HC; ++j)
      sum += sh.pre[t][j] * streams.finalValue(t, j * D + d);
    out[static_cast<int64_t>(t) * D + d] = fromFloat<TY>(sum);
  }
}

// The last block of hc_pre / hc_post_pre: pre, post, Sinkhorn'd comb and the
// collapse of every present token (ref::hcPre's arithmetic).
template <int T_MAX, int HC, int D, class Streams, typename TB, typename TS, typename TY, typename TP, typename TC>
__device__ __forceinline__ void hcSplitPreFinish(const Streams &streams, const TB *base, const TS *scale,
                                                 TY *collapsed, TP *post, TC *comb, float hcEps, int sinkhornIters,
                                                 int present, HcSplitShared<T_MAX, (2 + HC) * HC, HC> &sh) {
  const int t = threadIdx.x;
  if (t < present) {
    const float s0 = toFloat(scale[0]), s1 = toFloat(scale[1]), s2 = toFloat(scale[2]);
#pragma unroll
    for (int j = 0; j < HC; ++j) {
      sh.pre[t][j] = sigmoidRef(mulAdd(sh.mix[t][j], s0, toFloat(base[j]))) + hcEps;
      post[t * HC + j] = fromFloat<TP>(2.0f * sigmoidRef(mulAdd(sh.mix[t][HC + j], s1, toFloat(base[HC + j]))));
    }
    float C[HC * HC];
#pragma unroll
    for (int i = 0; i < HC * HC; ++i)
      C[i] = mulAdd(sh.mix[t][2 * HC + i], s2, toFloat(base[2 * HC + i]));
    sinkhorn<HC>(C, hcEps, sinkhornIters);
#pragma unroll
    for (int i = 0; i < HC * HC; ++i)
      comb[t * HC * HC + i] = fromFloat<TC>(C[i]);
  }
  __syncthreads();
  hcSplitCollapse<T_MAX, HC, D>(streams, sh, collapsed, present);
}

// v4.hc_pre, split: grid.x = PARTS = ceil(HC*D / hcSplitChunk<TF>()), block
// kHcThreads; `partials` (hcSplitScratch floats) and `done` (one counter)
// are the entry's device scratch.
template <typename TX, typename TF, typename TB, typename TS, typename TY, typename TP, typename TC, int T_MAX, int HC,
          int D, int PARTS>
__device__ __forceinline__ void hcPreSplit(const TX *X, const TF *fn, const TB *base, const TS *scale, TY *collapsed,
                                           TP *post, TC *comb, double normEps, float hcEps, int sinkhornIters,
                                           float *partials, unsigned int *done, const int32_t *dyn) {
  constexpr int ROWS = (2 + HC) * HC;
  __shared__ HcSplitShared<T_MAX, ROWS, HC> sh;
  const int present = presentRows<T_MAX>(dyn);
  const StoredStreams<TX, HC * D> streams{X};
  if (hcSplitMix<T_MAX, HC * D, ROWS, PARTS>(streams, fn, normEps, partials, done, present, sh))
    hcSplitPreFinish<T_MAX, HC, D>(streams, base, scale, collapsed, post, comb, hcEps, sinkhornIters, present, sh);
}

// v4.hc_post_pre, split: as hcPreSplit; every block also stores its chunk of
// new_streams.
template <typename TX, typename TYy, typename TP, typename TC, typename TF, typename TB, typename TS, typename TO,
          typename TY, typename TP2, typename TC2, int T_MAX, int HC, int D, int PARTS>
__device__ __forceinline__ void hcPostPreSplit(const TX *X, const TYy *y, const TP *post, const TC *comb,
                                               const TF *fn, const TB *base, const TS *scale, TO *streamsOut,
                                               TY *collapsed, TP2 *newPost, TC2 *newComb, double normEps, float hcEps,
                                               int sinkhornIters, float *partials, unsigned int *done,
                                               const int32_t *dyn) {
  constexpr int ROWS = (2 + HC) * HC;
  __shared__ HcSplitShared<T_MAX, ROWS, HC> sh;
  const int present = presentRows<T_MAX>(dyn);
  const PostedStreams<HC, D, TX, TYy, TP, TC, TO> streams{X, y, post, comb, streamsOut};
  if (hcSplitMix<T_MAX, HC * D, ROWS, PARTS>(streams, fn, normEps, partials, done, present, sh))
    hcSplitPreFinish<T_MAX, HC, D>(streams, base, scale, collapsed, newPost, newComb, hcEps, sinkhornIters, present,
                                   sh);
}

// hc_head's finish once sh.mix holds the dots: pre = sigmoid(mix * scale +
// base) + eps, then the weighted sum of the streams into out.
template <int T_MAX, int HC, int D, typename TB, typename TS, typename TY, class Streams>
__device__ __forceinline__ void hcHeadFinish(const Streams &streams, const TB *base, const TS *scale, float hcEps,
                                             TY *out, int present, HcSplitShared<T_MAX, HC, HC> &sh) {
  for (int pair = threadIdx.x; pair < present * HC; pair += blockDim.x)
    sh.pre[pair / HC][pair % HC] =
        sigmoidRef(mulAdd(sh.mix[pair / HC][pair % HC], toFloat(scale[0]), toFloat(base[pair % HC]))) + hcEps;
  __syncthreads();
  hcSplitCollapse<T_MAX, HC, D>(streams, sh, out, present);
}

// v4.hc_head, split: grid.x = PARTS, block kHcThreads.
template <typename TX, typename TF, typename TB, typename TS, typename TY, int T_MAX, int HC, int D, int PARTS>
__device__ __forceinline__ void hcHeadSplit(const TX *X, const TF *fn, const TB *base, const TS *scale, TY *out,
                                            double normEps, float hcEps, float *partials, unsigned int *done,
                                            const int32_t *dyn) {
  __shared__ HcSplitShared<T_MAX, HC, HC> sh;
  const int present = presentRows<T_MAX>(dyn);
  const StoredStreams<TX, HC * D> streams{X};
  if (!hcSplitMix<T_MAX, HC * D, HC, PARTS>(streams, fn, normEps, partials, done, present, sh))
    return;
  hcHeadFinish<T_MAX, HC, D>(streams, base, scale, hcEps, out, present, sh);
}

// ---- token tiles (prefill) ------------------------------------------------------
// grid.x = ceil(T / kHcTileTokens), block kHcThreads: a block mixes
// kHcTileTokens tokens at once, so fn is read from L2 once per tile, not once
// per token. Per token the sum of squares first (a pass over its row), then
// the row in chunks of kHcTileColumns: the normed values (x * inv, the
// reference's rounding) staged in shared memory, a warp per fn row over the
// chunk for every token of the tile. The finish is the split shape's.

constexpr int kHcTileTokens = 8, kHcTileColumns = 512;

template <int W, int ROWS, typename TF, class Streams, int HC>
__device__ __forceinline__ void hcTileMix(const Streams &streams, const TF *fn, double normEps, int present,
                                          HcSplitShared<kHcTileTokens, ROWS, HC> &sh) {
  constexpr int TG = kHcTileTokens, C = kHcTileColumns, V = kElemsPer16<TF>;
  static_assert(W % V == 0 && C % (32 * V) == 0, "whole 16-byte loads of fn");
  __shared__ float normed[TG][C];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  hcInverseRms<W>(streams, normEps, present, sh);
  constexpr int kRowsPerWarp = (ROWS + kHcThreads / 32 - 1) / (kHcThreads / 32);
  float acc[kRowsPerWarp][TG];
#pragma unroll
  for (int q = 0; q < kRowsPerWarp; ++q)
#pragma unroll
    for (int t = 0; t < TG; ++t)
      acc[q][t] = 0.0f;
  for (int c0 = 0; c0 < W; c0 += C) {
    for (int i = threadIdx.x; i < TG * C; i += blockDim.x) {
      const int t = i / C, c = i % C;
      float x = 0.0f;
      if (t < present && c0 + c < W) {
        x = streams.value(t, c0 + c);
        streams.store(t, c0 + c, x);
        x *= sh.inv[t]; // ref: X[i] * inv
      }
      normed[t][c] = x;
    }
    __syncthreads();
#pragma unroll
    for (int q = 0; q < kRowsPerWarp; ++q) {
      const int r = warp + q * warps;
      if (r < ROWS)
        for (int c = lane * V; c < C && c0 + c < W; c += 32 * V) {
          float w[V];
          loadFloats<V, true>(fn + static_cast<int64_t>(r) * W + c0 + c, w);
#pragma unroll
          for (int t = 0; t < TG; ++t)
#pragma unroll
            for (int v = 0; v < V; ++v)
              acc[q][t] = fmaf(w[v], normed[t][c + v], acc[q][t]);
        }
    }
    __syncthreads(); // normed is rewritten
  }
#pragma unroll
  for (int q = 0; q < kRowsPerWarp; ++q) {
    const int r = warp + q * warps;
#pragma unroll
    for (int t = 0; t < TG; ++t) {
      const float total = warpSum(acc[q][t]);
      if (lane == 0 && r < ROWS && t < present)
        sh.mix[t][r] = total;
    }
  }
  __syncthreads();
}

// v4.hc_pre, token tiles: as hcPre for kHcTileTokens tokens per block.
template <typename TX, typename TF, typename TB, typename TS, typename TY, typename TP, typename TC, int T_MAX, int HC,
          int D>
__device__ __forceinline__ void hcPreTile(const TX *X, const TF *fn, const TB *base, const TS *scale, TY *collapsed,
                                          TP *post, TC *comb, double normEps, float hcEps, int sinkhornIters,
                                          const int32_t *dyn) {
  constexpr int ROWS = (2 + HC) * HC, W = HC * D;
  __shared__ HcSplitShared<kHcTileTokens, ROWS, HC> sh;
  const int t0 = blockIdx.x * kHcTileTokens, present = min(kHcTileTokens, presentRows<T_MAX>(dyn) - t0);
  if (present <= 0)
    return;
  const StoredStreams<TX, W> streams{X + static_cast<int64_t>(t0) * W};
  hcTileMix<W, ROWS>(streams, fn, normEps, present, sh);
  hcSplitPreFinish<kHcTileTokens, HC, D>(streams, base, scale, collapsed + static_cast<int64_t>(t0) * D,
                                         post + t0 * HC, comb + t0 * HC * HC, hcEps, sinkhornIters, present, sh);
}

// v4.hc_post_pre, token tiles: every block stores its tokens' new streams.
template <typename TX, typename TYy, typename TP, typename TC, typename TF, typename TB, typename TS, typename TO,
          typename TY, typename TP2, typename TC2, int T_MAX, int HC, int D>
__device__ __forceinline__ void hcPostPreTile(const TX *X, const TYy *y, const TP *post, const TC *comb, const TF *fn,
                                              const TB *base, const TS *scale, TO *streamsOut, TY *collapsed,
                                              TP2 *newPost, TC2 *newComb, double normEps, float hcEps,
                                              int sinkhornIters, const int32_t *dyn) {
  constexpr int ROWS = (2 + HC) * HC, W = HC * D;
  __shared__ HcSplitShared<kHcTileTokens, ROWS, HC> sh;
  const int t0 = blockIdx.x * kHcTileTokens, present = min(kHcTileTokens, presentRows<T_MAX>(dyn) - t0);
  if (present <= 0)
    return;
  const int64_t row = t0;
  const PostedStreams<HC, D, TX, TYy, TP, TC, TO> streams{X + row * W, y + row * D, post + row * HC,
                                                          comb + row * HC * HC, streamsOut + row * W};
  hcTileMix<W, ROWS>(streams, fn, normEps, present, sh);
  hcSplitPreFinish<kHcTileTokens, HC, D>(streams, base, scale, collapsed + row * D, newPost + row * HC,
                                         newComb + row * HC * HC, hcEps, sinkhornIters, present, sh);
}

// v4.hc_head, token tiles.
template <typename TX, typename TF, typename TB, typename TS, typename TY, int T_MAX, int HC, int D>
__device__ __forceinline__ void hcHeadTile(const TX *X, const TF *fn, const TB *base, const TS *scale, TY *out,
                                           double normEps, float hcEps, const int32_t *dyn) {
  constexpr int W = HC * D;
  __shared__ HcSplitShared<kHcTileTokens, HC, HC> sh;
  const int t0 = blockIdx.x * kHcTileTokens, present = min(kHcTileTokens, presentRows<T_MAX>(dyn) - t0);
  if (present <= 0)
    return;
  const StoredStreams<TX, W> streams{X + static_cast<int64_t>(t0) * W};
  hcTileMix<W, HC>(streams, fn, normEps, present, sh);
  hcHeadFinish<kHcTileTokens, HC, D>(streams, base, scale, hcEps, out + static_cast<int64_t>(t0) * D, present, sh);
}

} // namespace v4cuda
