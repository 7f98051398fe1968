// v4.attention for ONE token (decode buckets of one session), split over
// the candidates (flash-decoding), so an HCA layer at 1M context (8,192
// entries + the window) or a CSA layer (512 selected entries + the window)
// is read by many blocks instead of one block per head group.
//
// Candidates as in ref::attention and attentionHeads (Attention.cuh): the
// window's positions p-W+1..p (p itself from this step's kv, rounded to the
// window cache's type; the rest from the ring), then the visible entries,
// all of them or the top-k ones (-1 and not-yet-visible ones skipped).
//
// Geometry: grid.x = (nh / HG) head groups x S splits, block b = (group
// b / S, split b % S); split s takes candidates [s * ceil(n / S), ...) of the
// n candidates. Its warps run the online softmax of attentionHeads over
// their candidates; the block folds its warps into one partial per head
// (running max m, denominator l = sum e^(logit - m), acc = sum e^(logit - m) e,
// without the sink) in device scratch; the last split of the group to finish
// (arriveLast, counter reset for graph replay) combines the S partials with
// the sink like the reference's softmax-with-sink:
//   M = max(sink, m_s), out = sum_s acc_s e^(m_s - M) / (e^(sink - M) + sum_s l_s e^(m_s - M)).
// An empty split has m = -inf, l = 0, acc = 0 and adds nothing.
#pragma once

#include <cstdint>
#include <type_traits>

#include <v4cuda/Attention.cuh>
#include <v4cuda/Cache.cuh>
#include <v4cuda/Common.cuh>

namespace v4cuda {

// Floats of device scratch per (head group, split): HG partials of HD + 2.
template <int HD, int HG> __host__ __device__ constexpr long long attentionDecodePartialFloats() { return static_cast<long long>(HG) * (HD + 2); }

// Dynamic shared memory of attentionDecodeSplit, in floats, for `warps`
// warps and S splits.
template <int HD> __host__ __device__ constexpr int attentionDecodeSharedFloats(int warps, int splits) {
  return warps * HD + 2 * warps + splits;
}

namespace state {

// Candidate i of the token at `pos` (c: the window's c.windowCount first,
// then the entries); false for a skipped top-k slot.
template <int HD, typename KvT, typename WinT, typename EntT>
__device__ __forceinline__ bool loadCandidate(int i, long long pos, const AttentionCandidates &c, long long W,
                                              const KvT *kv, const WinT *window, const EntT *entries,
                                              const int32_t *topk, int lane,
                                              float (&e)[AttentionLanes<HD>::J][AttentionLanes<HD>::V]) {
  if (i < c.windowCount) {
    const long long j = c.firstWindow + i;
    if (j == pos) {
      loadLaneRow<HD>(kv, lane, e);
      if constexpr (!std::is_same_v<KvT, WinT>) // as the window cache will store it
        roundLaneRow<WinT>(e);
    } else {
      loadLaneRow<HD>(window + (j % W) * HD, lane, e);
    }
    return true;
  }
  long long w = i - c.windowCount;
  if (topk != nullptr) {
    w = topk[w];
    if (w < 0 || w >= c.visible) // -1 padding or an entry this token cannot see
      return false;
  }
  loadLaneRow<HD>(entries + w * HD, lane, e);
  return true;
}

} // namespace state

// blockDim.x a multiple of 32; `partials` holds (nh / HG) * S *
// attentionDecodePartialFloats<HD, HG>() floats, `done` nh / HG counters.
template <int HD, int HG, typename QT, typename KvT, typename SinkT, typename WinT, typename EntT, typename OutT>
__device__ void attentionDecodeSplit(const QT *q, const KvT *kv, const SinkT *sinks, const int32_t *positions,
                                     const WinT *window, const EntT *entries, const int32_t *topk, OutT *out,
                                     AttentionShape shape, float *partials, unsigned int *done, const int32_t *dyn) {
  using L = state::AttentionLanes<HD>;
  extern __shared__ float attentionShared[];
  if (presentTokens(dyn) < 1)
    return;
  const int splits = gridDim.x / (shape.numHeads / HG);
  const int groupIndex = blockIdx.x / splits, split = blockIdx.x % splits, head0 = groupIndex * HG;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  const long long pos = positions[0], W = shape.window;

  float qh[HG][L::J][L::V];
#pragma unroll
  for (int g = 0; g < HG; ++g)
    state::loadLaneRow<HD>(q + static_cast<long long>(head0 + g) * HD, lane, qh[g]);

  const state::AttentionCandidates candidates(pos, shape, entries != nullptr, topk != nullptr);
  const int count = candidates.count;
  const int perSplit = (count + splits - 1) / splits;
  const int begin = split * perSplit, end = begin + perSplit < count ? begin + perSplit : count;

  state::OnlineSoftmax<HD, HG> softmax;
  softmax.reset();

  // The warp's candidates i, i + warps, ...; the next row is loaded before
  // the current one is used, so two row loads are in flight per warp.
  float e[L::J][L::V];
  int i = begin + warp;
  bool ok = i < end &&
            state::loadCandidate<HD>(i, pos, candidates, W, kv, window, entries, topk, lane, e);
  for (; i < end; i += warps) { // warp-uniform
    float next[L::J][L::V];
    const bool nextOk = i + warps < end &&
                        state::loadCandidate<HD>(i + warps, pos, candidates, W, kv, window, entries, topk, lane, next);
#pragma unroll
    for (int g = 0; g < HG; ++g) {
      if (!ok)
        break;
      softmax.add(g, qh[g], e, shape.scale);
    }
    if (nextOk)
#pragma unroll
      for (int j = 0; j < L::J; ++j)
#pragma unroll
        for (int v = 0; v < L::V; ++v)
          e[j][v] = next[j][v];
    ok = nextOk;
  }

  // Fold the warps into this split's partial per head (no sink yet).
  float *partialRows = attentionShared;           // [warps][HD]
  float *mergeMax = attentionShared + warps * HD; // [warps]
  float *mergeDenom = mergeMax + warps;           // [warps]
  float *splitScale = mergeDenom + warps;         // [splits]
  const long long stride = attentionDecodePartialFloats<HD, HG>();
  float *mine = partials + (static_cast<long long>(groupIndex) * splits + split) * stride;
#pragma unroll
  for (int g = 0; g < HG; ++g) {
    __syncthreads(); // the previous head's rows are consumed
    if (lane == 0) {
      mergeMax[warp] = softmax.runMax[g];
      mergeDenom[warp] = softmax.runDenom[g];
    }
    __syncthreads();
    float M = -INFINITY;
    for (int w = 0; w < warps; ++w)
      M = fmaxf(M, mergeMax[w]);
    float denom = 0.0f;
    if (M != -INFINITY)
      for (int w = 0; w < warps; ++w)
        denom += mergeDenom[w] * expf(mergeMax[w] - M); // an idle warp: 0 * e^-inf
    const float scale = M == -INFINITY ? 0.0f : expf(softmax.runMax[g] - M);
    softmax.storeScaled(g, scale, lane, partialRows + warp * HD);
    __syncthreads();
    float *row = mine + g * (HD + 2);
    if (threadIdx.x == 0) {
      row[0] = M;
      row[1] = denom;
    }
    for (int d = threadIdx.x; d < HD; d += blockDim.x) {
      float sum = 0.0f;
      for (int w = 0; w < warps; ++w)
        sum += partialRows[w * HD + d];
      row[2 + d] = sum;
    }
  }

  if (!state::arriveLast(done + groupIndex, splits))
    return;
  // Combine the group's splits with the sink, one head at a time.
  const float *group = partials + static_cast<long long>(groupIndex) * splits * stride;
  for (int g = 0; g < HG; ++g) {
    const int h = head0 + g;
    const float sink = toFloat(sinks[h]);
    __syncthreads(); // splitScale of the previous head is consumed
    if (threadIdx.x == 0) {
      float M = sink;
      for (int s = 0; s < splits; ++s)
        M = fmaxf(M, state::loadCoherent(group + s * stride + g * (HD + 2)));
      float denom = expf(sink - M);
      for (int s = 0; s < splits; ++s) {
        const float *row = group + s * stride + g * (HD + 2);
        const float scale = expf(state::loadCoherent(row) - M); // an empty split: e^-inf = 0
        splitScale[s] = scale;
        denom += state::loadCoherent(row + 1) * scale;
      }
      mergeMax[0] = denom;
    }
    __syncthreads();
    const float denom = mergeMax[0];
    OutT *o = out + static_cast<long long>(h) * HD;
    for (int d = threadIdx.x; d < HD; d += blockDim.x) {
      float sum = 0.0f;
      for (int s = 0; s < splits; ++s)
        sum += state::loadCoherent(group + s * stride + g * (HD + 2) + 2 + d) * splitScale[s];
      o[d] = fromFloat<OutT>(sum / denom);
    }
  }
}

} // namespace v4cuda
