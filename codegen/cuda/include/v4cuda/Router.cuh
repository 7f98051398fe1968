// MoE routers on the device (no host round trip): v4.router (scores + top-k)
// and v4.hash_router (experts from the token id), mirroring the router part
// of runtime/cpu/MoeKernels.cpp.
//
// v4.router has two launch shapes (DenseEmitters.cpp picks by the bucket's
// static tokens):
//   per token (T > 8):  grid.x = ceil(T / routerTokensPerBlock<E>()),
//                       kRouterThreads; the block scores every expert of its
//                       8 (E <= 512) tokens and selects each one's top-k.
//   split (T <= 8, decode): the gate [E, D] is spread over the grid, one warp
//                       per (expert, part of D) for every present token, so
//                       the whole GPU streams it; each partial dot goes to a
//                       per-entry scratch, and the last block to finish (the
//                       "last block finishes" hand-off of Cache.cuh) adds the
//                       parts in a fixed order and selects the top-k.
#pragma once

#include <v4cuda/Cache.cuh>
#include <v4cuda/DenseMath.cuh>

namespace v4cuda {

constexpr int kRouterThreads = 1024; // per-token shape: 32 warps over the experts

// Elements per load of a gate row: 16 bytes when the rows allow it.
template <typename TG, int D> __host__ __device__ constexpr int routerGateVector() {
  return rowsAligned16<TG>(D, 0) && D % kElemsPer16<TG> == 0 ? kElemsPer16<TG> : 1;
}

// sqrt(softplus(gate[e] . h)) (ref's expertScores), computed by one warp;
// every lane gets the score.
template <typename TH, typename TG, int D>
__device__ __forceinline__ float expertScore(const TH *h, const TG *gate, int e) {
  constexpr int V = routerGateVector<TG, D>();
  constexpr bool kHAligned = rowsAligned16<TH>(D, 0);
  const int lane = threadIdx.x & 31;
  const TG *row = gate + static_cast<int64_t>(e) * D;
  float acc = 0.0f;
  // Unrolled so each lane has several 16-byte loads in flight: at decode one
  // block streams the whole gate matrix.
#pragma unroll 8
  for (int k = lane * V; k < D; k += 32 * V) {
    float w[V], x[V];
    loadFloats<V, true>(row + k, w);
    loadFloats<V, kHAligned>(h + k, x);
#pragma unroll
    for (int i = 0; i < V; ++i)
      acc = fmaf(w[i], x[i], acc);
  }
  return sqrtf(softplusRef(warpSum(acc)));
}

// Normalised weights of the selected experts (ref's normalizeWeights):
// w_i = s[e_i] / (sum_i s[e_i] + 1e-20) * scaling. One thread.
template <int K, typename TW>
__device__ __forceinline__ void writeRouteWeights(const float (&selectedScores)[K], float scaling, TW *weights) {
  float sum = 0.0f;
#pragma unroll
  for (int i = 0; i < K; ++i)
    sum += selectedScores[i];
#pragma unroll
  for (int i = 0; i < K; ++i)
    weights[i] = fromFloat<TW>(selectedScores[i] / (sum + 1e-20f) * scaling);
}

// True when (v, e) ranks before (best, bestIndex): higher value first, ties
// to the lower index; `bestIndex == none` is "nothing yet".
__device__ __forceinline__ bool ranksBefore(float v, int e, float best, int bestIndex, int none) {
  return bestIndex == none || v > best || (v == best && e < bestIndex);
}

// Top-K of `biased` (ties to the lower index) by K rounds of a warp argmax,
// then the normalised weights of the chosen experts' `scores`: writes
// chosen[0, K) and weights[0, K). Called by one whole warp; `taken` [E] is
// shared scratch this function initialises.
template <int E, int K, typename TW>
__device__ __forceinline__ void selectTopK(const float *scores, const float *biased, bool *taken, int32_t *chosen,
                                           TW *weights, float routedScaling) {
  const int lane = threadIdx.x & 31;
  for (int e = lane; e < E; e += 32)
    taken[e] = false;
  __syncwarp();
  float selectedScores[K];
#pragma unroll
  for (int i = 0; i < K; ++i) {
    float best = -INFINITY;
    int bestIndex = E;
    for (int e = lane; e < E; e += 32)
      if (!taken[e] && ranksBefore(biased[e], e, best, bestIndex, E)) {
        best = biased[e];
        bestIndex = e;
      }
    for (int offset = 16; offset > 0; offset >>= 1) {
      const float otherBest = __shfl_xor_sync(0xffffffffu, best, offset);
      const int otherIndex = __shfl_xor_sync(0xffffffffu, bestIndex, offset);
      if (otherIndex != E && ranksBefore(otherBest, otherIndex, best, bestIndex, E)) {
        best = otherBest;
        bestIndex = otherIndex;
      }
    }
    __syncwarp();
    if (lane == 0) {
      chosen[i] = bestIndex;
      taken[bestIndex] = true;
    }
    __syncwarp();
    selectedScores[i] = scores[bestIndex];
  }
  if (lane == 0)
    writeRouteWeights<K>(selectedScores, routedScaling, weights);
  __syncwarp();
}

// This lane's share of the dots of gate row `row` with the first `rows` of N
// h rows (hRows, D apart) over columns [k0, k1): fmaf in column order, lane
// stride 32 V; the caller warpSums acc[t].
template <int N, int D, typename TH, typename TG>
__device__ __forceinline__ void routerLaneDots(const TG *row, const TH *hRows, int k0, int k1, int lane, int rows,
                                               float (&acc)[N]) {
  constexpr int V = routerGateVector<TG, D>();
  constexpr bool kHAligned = rowsAligned16<TH>(D, 0) && V * sizeof(TH) % 16 == 0;
#pragma unroll
  for (int t = 0; t < N; ++t)
    acc[t] = 0.0f;
#pragma unroll 4
  for (int k = k0 + lane * V; k < k1; k += 32 * V) {
    float w[V];
    loadFloats<V, true>(row + k, w);
#pragma unroll
    for (int t = 0; t < N; ++t)
      if (t < rows) {
        float x[V];
        loadFloats<V, kHAligned>(hRows + static_cast<int64_t>(t) * D + k, x);
#pragma unroll
        for (int i = 0; i < V; ++i)
          acc[t] = fmaf(w[i], x[i], acc[t]);
      }
  }
}

// Tokens per block of the per-token shape (prefill): each gate row a warp
// loads serves this many tokens (the gate is re-read from L2 once per block,
// not once per token); the shared [TPB][E] arrays stay under 48 KB.
template <int E> __host__ __device__ constexpr int routerTokensPerBlock() { return E <= 512 ? 8 : (E <= 1024 ? 4 : 1); }

// v4.router h [T, D], gate [E, D], bias [E] -> weights [T, K], experts [T, K] i32.
// Per-token shape: grid.x = ceil(T / routerTokensPerBlock<E>()), block
// kRouterThreads; warp w of the block selects the top-k of its token w.
template <typename TH, typename TG, typename TB, typename TW, int D, int E, int K>
__device__ __forceinline__ void router(const TH *h, const TG *gate, const TB *bias, TW *weights, int32_t *experts,
                                       float routedScaling, const int32_t *dyn) {
  static_assert(K >= 1 && K <= E, "top_k within the experts");
  constexpr int TPB = routerTokensPerBlock<E>();
  const int t0 = blockIdx.x * TPB, present = presentTokens(dyn);
  if (t0 >= present)
    return;
  const int rows = min(TPB, present - t0); // uniform over the block
  __shared__ float scores[TPB][E], biased[TPB][E];
  __shared__ bool taken[TPB][E];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int e = warp; e < E; e += warps) {
    float acc[TPB];
    routerLaneDots<TPB, D>(gate + static_cast<int64_t>(e) * D, h + static_cast<int64_t>(t0) * D, 0, D, lane, rows,
                           acc);
#pragma unroll
    for (int t = 0; t < TPB; ++t) {
      const float s = sqrtf(softplusRef(warpSum(acc[t]))); // ref's expertScores
      if (lane == 0 && t < rows) {
        scores[t][e] = s;
        biased[t][e] = s + toFloat(bias[e]);
      }
    }
  }
  __syncthreads();
  if (warp < rows)
    selectTopK<E, K>(scores[warp], biased[warp], taken[warp], experts + static_cast<int64_t>(t0 + warp) * K,
                     weights + static_cast<int64_t>(t0 + warp) * K, routedScaling);
}

// ---- split shape (decode) ----------------------------------------------------

constexpr int kRouterSplitThreads = 256;

// Columns of one part: D / PARTS rounded up to whole 16-byte loads of the gate.
template <typename TG, int D, int PARTS> __host__ __device__ constexpr int routerPartColumns() {
  constexpr int V = routerGateVector<TG, D>();
  return ((D + PARTS - 1) / PARTS + V - 1) / V * V;
}

// Scratch floats of the split router: one partial dot per (token, expert, part).
template <int T_MAX, int E, int PARTS> __host__ __device__ constexpr int routerSplitScratch() {
  return T_MAX * E * PARTS;
}

// grid.x = ceil(E * PARTS / 8), block kRouterSplitThreads; `partials`
// (routerSplitScratch floats) and `done` (one counter, zero between launches)
// are the entry's device scratch.
template <typename TH, typename TG, typename TB, typename TW, int T_MAX, int D, int E, int K, int PARTS>
__device__ __forceinline__ void routerSplit(const TH *h, const TG *gate, const TB *bias, TW *weights,
                                            int32_t *experts, float routedScaling, float *partials,
                                            unsigned int *done, const int32_t *dyn) {
  static_assert(K >= 1 && K <= E, "top_k within the experts");
  static_assert(T_MAX >= 1 && T_MAX <= 8, "the split router is the decode shape");
  constexpr int kColumns = routerPartColumns<TG, D, PARTS>();
  const int present = presentRows<T_MAX>(dyn);
  const int lane = threadIdx.x & 31, warps = blockDim.x >> 5;
  const int item = blockIdx.x * warps + (threadIdx.x >> 5);
  if (item < E * PARTS) { // no barrier inside
    const int e = item / PARTS, part = item % PARTS;
    const int k0 = part * kColumns, k1 = min(D, k0 + kColumns);
    float acc[T_MAX];
    routerLaneDots<T_MAX, D>(gate + static_cast<int64_t>(e) * D, h, k0, k1, lane, present, acc);
#pragma unroll
    for (int t = 0; t < T_MAX; ++t) {
      const float sum = warpSum(acc[t]);
      if (lane == 0 && t < present)
        partials[(t * E + e) * PARTS + part] = sum;
    }
  }
  if (!state::arriveLast(done, gridDim.x))
    return;
  __shared__ float scores[E], biased[E];
  __shared__ bool taken[E];
  for (int t = 0; t < present; ++t) {
    for (int e = threadIdx.x; e < E; e += blockDim.x) {
      float dot = 0.0f;
      for (int part = 0; part < PARTS; ++part) // a fixed order: the same bits on every run
        dot += state::loadCoherent(partials + (t * E + e) * PARTS + part);
      const float s = sqrtf(softplusRef(dot));
      scores[e] = s;
      biased[e] = s + toFloat(bias[e]);
    }
    __syncthreads();
    if (threadIdx.x < 32)
      selectTopK<E, K>(scores, biased, taken, experts + t * K, weights + t * K, routedScaling);
    __syncthreads(); // scores are rewritten for the next token
  }
}

// v4.hash_router h [T, D], gate [E, D], tid2eid [VOCAB, K] i32, ids [T] i32
//   -> weights [T, K], experts [T, K] i32: experts from the token id, weights
// from the scores of those experts only (the others are never read).
template <typename TH, typename TG, typename TW, int D, int E, int K, int VOCAB>
__device__ __forceinline__ void hashRouter(const TH *h, const TG *gate, const int32_t *tid2eid, const int32_t *ids,
                                           TW *weights, int32_t *experts, float routedScaling, const int32_t *dyn) {
  const int64_t t = blockIdx.x;
  if (t >= presentTokens(dyn))
    return;
  __shared__ float scores[K];
  __shared__ int32_t chosen[K];
  const int id = min(max(ids[t], 0), VOCAB - 1);
  if (threadIdx.x < K) {
    const int32_t e = min(max(tid2eid[static_cast<int64_t>(id) * K + threadIdx.x], 0), E - 1);
    chosen[threadIdx.x] = e;
    experts[t * K + threadIdx.x] = e;
  }
  __syncthreads();
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int i = warp; i < K; i += warps) {
    const float s = expertScore<TH, TG, D>(h + t * D, gate, chosen[i]);
    if (lane == 0)
      scores[i] = s;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    float selectedScores[K];
#pragma unroll
    for (int i = 0; i < K; ++i)
      selectedScores[i] = scores[i];
    writeRouteWeights<K>(selectedScores, routedScaling, weights + t * K);
  }
}

} // namespace v4cuda
