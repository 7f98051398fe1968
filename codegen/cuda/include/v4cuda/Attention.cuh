// v4.attention: per head, softmax over the window candidates (positions
// p-W+1..p), the visible compressed entries (all of them, or the top-k ones)
// and a sink logit that takes probability mass but gives no value
// (ref::attention, runtime/cpu/AttentionKernels.cpp).
//
// One block per (token, group of HG heads): the candidates are shared by all
// heads (one kv vector per position, K = V), so a group loads each candidate
// row once for HG heads. Each warp walks candidates warp, warp + warps, ...
// with an online softmax (running max, denominator and weighted sum per
// head); the warps are merged at the end with the sink. Lane l holds the
// channels l*V + 32*V*j (+0..V-1) of q, the candidates and the output.
#pragma once

#include <cstdint>
#include <type_traits>

#include <v4cuda/Cache.cuh>
#include <v4cuda/Common.cuh>

namespace v4cuda {

struct AttentionShape {
  int numHeads;   // nh
  int window;     // W: ring rows
  int rate;       // m of the entries (0: sliding only)
  int topkWidth;  // columns of `topk` (0: none)
  float scale;    // logit = (q . e) * scale
};

namespace state {

// Lane layout of one head_dim row: J chunks of V channels per lane.
template <int HD> struct AttentionLanes {
  static constexpr int V = HD % 128 == 0 ? 4 : 1;
  static constexpr int J = (HD + 32 * V - 1) / (32 * V);
  __device__ static int channel(int lane, int j) { return j * 32 * V + lane * V; }
};

// Loads this lane's channels of a row (zeros beyond HD).
template <int HD, typename T>
__device__ __forceinline__ void loadLaneRow(const T *row, int lane, float (&out)[AttentionLanes<HD>::J][AttentionLanes<HD>::V]) {
  using L = AttentionLanes<HD>;
#pragma unroll
  for (int j = 0; j < L::J; ++j) {
    const int d = L::channel(lane, j);
    if (d < HD) {
      loadVec<L::V>(row + d, out[j]);
    } else {
#pragma unroll
      for (int v = 0; v < L::V; ++v)
        out[j][v] = 0.0f;
    }
  }
}

// The candidates of the token at `pos`: the window's positions firstWindow..pos
// (windowCount of them) first, then the entries: all `visible` ones, or the
// topkWidth top-k slots; `count` in all.
struct AttentionCandidates {
  long long firstWindow = 0, visible = 0;
  int windowCount = 0, count = 0;
  __device__ AttentionCandidates(long long pos, const AttentionShape &shape, bool hasEntries, bool hasTopk) {
    const long long W = shape.window;
    firstWindow = pos - W + 1 > 0 ? pos - W + 1 : 0;
    windowCount = static_cast<int>(pos - firstWindow + 1);
    const bool useEntries = shape.rate > 0 && hasEntries;
    visible = useEntries ? (pos + 1) / shape.rate : 0;
    const int entryCount = !useEntries ? 0 : (hasTopk ? shape.topkWidth : static_cast<int>(visible));
    count = windowCount + entryCount;
  }
};

// Rounds a loaded row to element type T and back: this step's kv as the
// window cache will store it (ref::attention rounds it to the cache's
// format), so one prefill, chunks and decode see the same candidates.
template <typename T, int J, int V> __device__ __forceinline__ void roundLaneRow(float (&e)[J][V]) {
#pragma unroll
  for (int c = 0; c < J; ++c)
#pragma unroll
    for (int v = 0; v < V; ++v)
      e[c][v] = toFloat(fromFloat<T>(e[c][v]));
}

// One warp's online softmax over its candidates, per head g of a group of
// HG: running max m, denominator l = sum e^(logit - m) and
// acc = sum e^(logit - m) e (this lane's channels), no sink.
template <int HD, int HG> struct OnlineSoftmax {
  using L = AttentionLanes<HD>;
  float runMax[HG], runDenom[HG], acc[HG][L::J][L::V];

  __device__ __forceinline__ void reset() {
#pragma unroll
    for (int g = 0; g < HG; ++g) {
      runMax[g] = -INFINITY;
      runDenom[g] = 0.0f;
#pragma unroll
      for (int j = 0; j < L::J; ++j)
#pragma unroll
        for (int v = 0; v < L::V; ++v)
          acc[g][j][v] = 0.0f;
    }
  }

  // Adds candidate e with logit (qh . e) * scale to head g (whole warp).
  __device__ __forceinline__ void add(int g, const float (&qh)[L::J][L::V], const float (&e)[L::J][L::V],
                                      float scale) {
    float partial = 0.0f;
#pragma unroll
    for (int j = 0; j < L::J; ++j)
#pragma unroll
      for (int v = 0; v < L::V; ++v)
        partial += qh[j][v] * e[j][v];
    const float logit = warpSum(partial) * scale;
    const float newMax = fmaxf(runMax[g], logit);
    const float rescale = expf(runMax[g] - newMax); // 0 for the first candidate
    const float weight = expf(logit - newMax);
    runMax[g] = newMax;
    runDenom[g] = runDenom[g] * rescale + weight;
#pragma unroll
    for (int j = 0; j < L::J; ++j)
#pragma unroll
      for (int v = 0; v < L::V; ++v)
        acc[g][j][v] = acc[g][j][v] * rescale + weight * e[j][v];
  }

  // This lane's channels of head g's acc times `factor` into row[0, HD).
  __device__ __forceinline__ void storeScaled(int g, float factor, int lane, float *row) const {
#pragma unroll
    for (int j = 0; j < L::J; ++j) {
      const int d = L::channel(lane, j);
#pragma unroll
      for (int v = 0; v < L::V; ++v)
        if (d + v < HD)
          row[d + v] = acc[g][j][v] * factor;
    }
  }
};

} // namespace state

// Block (token t, head group g) = blockIdx.x / (nh / HG), blockIdx.x % (nh / HG);
// blockDim.x a multiple of 32. Per-row slots (RowSlots, a batched decode
// bucket): row t reads session t's window and entries, and its own kv row is
// the only candidate not yet in its ring.

template <int HD, int HG, typename QT, typename KvT, typename SinkT, typename WinRef, typename EntRef,
          typename OutT>
__device__ void attentionHeads(const QT *q, const KvT *kv, const SinkT *sinks,
                               const int32_t *positions, WinRef windowSlots, EntRef entrySlots,
                               const int32_t *topk, OutT *out, AttentionShape shape,
                               const int32_t *dyn) {
  using L = state::AttentionLanes<HD>;
  using WinT = state::SlotElement<WinRef>;
  extern __shared__ float attentionShared[];
  const int T = presentTokens(dyn);
  const int groups = shape.numHeads / HG;
  const int t = blockIdx.x / groups, head0 = (blockIdx.x % groups) * HG;
  if (t >= T)
    return;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  const long long pos = positions[t];
  // The chunk's first position and its kv row (per-row slots: this row alone).
  const long long chunkStart = state::kPerRow<WinRef> ? pos : positions[0];
  const long long chunkRow = state::kPerRow<WinRef> ? t : 0;
  const auto *window = state::rowSlot(windowSlots, t);
  const auto *entries = state::slotGiven(entrySlots) ? state::rowSlot(entrySlots, t) : nullptr;
  const long long W = shape.window;

  float qh[HG][L::J][L::V];
#pragma unroll
  for (int g = 0; g < HG; ++g)
    state::loadLaneRow<HD>(q + (static_cast<long long>(t) * shape.numHeads + head0 + g) * HD, lane, qh[g]);

  const state::AttentionCandidates candidates(pos, shape, entries != nullptr, topk != nullptr);

  state::OnlineSoftmax<HD, HG> softmax;
  softmax.reset();

  for (int i = warp; i < candidates.count; i += warps) { // warp-uniform
    float e[L::J][L::V];
    if (i < candidates.windowCount) {
      const long long j = candidates.firstWindow + i;
      if (j >= chunkStart) {
        state::loadLaneRow<HD>(kv + (j - chunkStart + chunkRow) * HD, lane, e);
        if constexpr (!std::is_same_v<KvT, WinT>)
          state::roundLaneRow<WinT>(e);
      } else
        state::loadLaneRow<HD>(window + (j % W) * HD, lane, e);
    } else {
      long long w = i - candidates.windowCount;
      if (topk != nullptr) {
        w = topk[static_cast<long long>(t) * shape.topkWidth + w];
        if (w < 0 || w >= candidates.visible) // -1 padding or an entry this token cannot see
          continue;
      }
      state::loadLaneRow<HD>(entries + w * HD, lane, e);
    }
#pragma unroll
    for (int g = 0; g < HG; ++g)
      softmax.add(g, qh[g], e, shape.scale);
  }

  // Merge the warps, one head at a time: out = sum_w acc_w e^(m_w - M) /
  // (e^(sink - M) + sum_w denom_w e^(m_w - M)), M = max(sink, m_w).
  float *partialRows = attentionShared;                 // [warps][HD]
  float *mergeMax = attentionShared + warps * HD;       // [warps]
  float *mergeDenom = mergeMax + warps;                 // [warps]
#pragma unroll
  for (int g = 0; g < HG; ++g) {
    const int h = head0 + g;
    __syncthreads(); // the previous head's rows are consumed
    if (lane == 0) {
      mergeMax[warp] = softmax.runMax[g];
      mergeDenom[warp] = softmax.runDenom[g];
    }
    __syncthreads();
    const float sink = toFloat(sinks[h]);
    float M = sink;
    for (int w = 0; w < warps; ++w)
      M = fmaxf(M, mergeMax[w]);
    float denom = expf(sink - M);
    for (int w = 0; w < warps; ++w)
      denom += mergeDenom[w] * expf(mergeMax[w] - M); // an idle warp has m = -inf: adds 0
    softmax.storeScaled(g, expf(softmax.runMax[g] - M), lane, partialRows + warp * HD);
    __syncthreads();
    OutT *o = out + (static_cast<long long>(t) * shape.numHeads + h) * HD;
    for (int d = threadIdx.x; d < HD; d += blockDim.x) {
      float sum = 0.0f;
      for (int w = 0; w < warps; ++w)
        sum += partialRows[w * HD + d];
      o[d] = fromFloat<OutT>(sum / denom);
    }
  }
}

} // namespace v4cuda
