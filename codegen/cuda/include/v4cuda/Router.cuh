// MoE routers on the device (no host round trip): v4.router (scores + top-k)
// and v4.hash_router (experts from the token id), mirroring the router part
// of runtime/cpu/MoeKernels.cpp. One block of kRouterThreads per token
// (grid.x = T).
#pragma once

#include <v4cuda/DenseMath.cuh>

namespace v4cuda {

constexpr int kRouterThreads = 1024; // at decode one block streams the whole gate

// sqrt(softplus(gate[e] . h)) (ref's expertScores), computed by one warp;
// every lane gets the score.
template <typename TH, typename TG, int D>
__device__ __forceinline__ float expertScore(const TH *h, const TG *gate, int e) {
  constexpr int V = rowsAligned16<TG>(D, 0) && D % kElemsPer16<TG> == 0 ? kElemsPer16<TG> : 1;
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

// v4.router h [T, D], gate [E, D], bias [E] -> weights [T, K], experts [T, K] i32.
template <typename TH, typename TG, typename TB, typename TW, int D, int E, int K>
__device__ __forceinline__ void router(const TH *h, const TG *gate, const TB *bias, TW *weights, int32_t *experts,
                                       float routedScaling, const int32_t *dyn) {
  static_assert(K >= 1 && K <= E, "top_k within the experts");
  const int64_t t = blockIdx.x;
  if (t >= presentTokens(dyn))
    return;
  __shared__ float scores[E], biased[E];
  __shared__ bool taken[E];
  const TH *x = h + t * D;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int e = warp; e < E; e += warps) {
    const float s = expertScore<TH, TG, D>(x, gate, e);
    if (lane == 0) {
      scores[e] = s;
      biased[e] = s + toFloat(bias[e]);
      taken[e] = false;
    }
  }
  __syncthreads();
  if (warp != 0)
    return;
  // Top-K of the biased scores by K rounds of a warp argmax (ties: lower e).
  float selectedScores[K];
  int32_t *chosen = experts + t * K;
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
    writeRouteWeights<K>(selectedScores, routedScaling, weights + t * K);
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
