// v4.indexer_topk: the lightning indexer's scores over the visible entries
// and their top-K (ref::indexerTopK, runtime/cpu/AttentionKernels.cpp):
//   score(p, w) = sum_h (max(q_h . k_w, 0) * score_scale) * (weights_h * weight_scale)
// over w < (p + 1) / m; out[t] = the K best entries, best first (equal
// scores: lower w first), padded with -1.
//
// Selection without a host sort and without storing all scores: a block
// keeps a shared candidate buffer of BUF >= K + blockDim (score, index)
// pairs. Each pass scores blockDim keys (one per thread) and appends those
// that beat the current K-th best (the threshold); when the next pass might
// overflow, a bitonic sort of the buffer keeps the K best and raises the
// threshold. After the first few passes almost nothing beats the threshold,
// so the cost is the scoring.
// Decode (few tokens) splits one token's keys over S blocks (grid.y); each
// writes its K best to a scratch area and the last of them (arriveLast)
// merges the S*K candidates with the same buffer.
#pragma once

#include <climits>
#include <cstdint>

#include <v4cuda/Cache.cuh>
#include <v4cuda/Common.cuh>

namespace v4cuda {

struct IndexerShape {
  int heads;          // nI
  int topK;           // K
  int rate;           // m of the keys cache
  float weightScale;  // nI^-0.5
  float scoreScale;   // dI^-0.5
};

namespace state {

// (score, index) pairs ordered best first: higher score, then lower index.
// An empty slot is (-inf, INT_MAX): every real candidate beats it.
__device__ __forceinline__ bool better(float scoreA, int indexA, float scoreB, int indexB) {
  return scoreA > scoreB || (scoreA == scoreB && indexA < indexB);
}

template <int BUF> struct TopKBuffer {
  float *score; // [BUF] shared
  int *index;   // [BUF] shared
  int *count;   // shared: filled slots
  int k;

  __device__ void reset() {
    for (int i = threadIdx.x; i < BUF; i += blockDim.x) {
      score[i] = -INFINITY;
      index[i] = INT_MAX;
    }
    if (threadIdx.x == 0)
      *count = 0;
    __syncthreads();
  }

  // Descending bitonic sort of all BUF slots (block-wide).
  __device__ void sort() {
    for (int size = 2; size <= BUF; size <<= 1)
      for (int stride = size >> 1; stride > 0; stride >>= 1) {
        for (int i = threadIdx.x; i < BUF; i += blockDim.x) {
          const int j = i ^ stride;
          if (j > i) {
            const bool bestFirst = (i & size) == 0;
            const bool swap = bestFirst ? better(score[j], index[j], score[i], index[i])
                                        : better(score[i], index[i], score[j], index[j]);
            if (swap) {
              const float s = score[i];
              score[i] = score[j];
              score[j] = s;
              const int x = index[i];
              index[i] = index[j];
              index[j] = x;
            }
          }
        }
        __syncthreads();
      }
  }

  // Keeps the K best, empties the rest; returns the new threshold (the K-th
  // best, an empty slot while fewer than K are known).
  __device__ void compact(float &thresholdScore, int &thresholdIndex) {
    sort();
    for (int i = k + threadIdx.x; i < BUF; i += blockDim.x) {
      score[i] = -INFINITY;
      index[i] = INT_MAX;
    }
    if (threadIdx.x == 0)
      *count = k;
    __syncthreads();
    thresholdScore = score[k - 1];
    thresholdIndex = index[k - 1];
  }

  // Called by every thread once per pass (uniform): makes room for one
  // candidate per thread, then inserts `valid` candidates that beat the
  // threshold.
  __device__ void offer(bool valid, float s, int i, float &thresholdScore, int &thresholdIndex) {
    const int filled = *count;
    __syncthreads(); // every thread has read `filled` before any inserts: one verdict for all
    if (filled + static_cast<int>(blockDim.x) > BUF)
      compact(thresholdScore, thresholdIndex);
    if (valid && better(s, i, thresholdScore, thresholdIndex)) {
      const int slot = atomicAdd(count, 1);
      score[slot] = s;
      index[slot] = i;
    }
    __syncthreads();
  }
};

} // namespace state

// grid = (bucket tokens, S); BUF a power of two >= K + blockDim. With S > 1,
// `scratchScore`/`scratchIndex` hold tokens*S*K pairs and `done` one counter
// per token. Per-row slots (RowSlots, a batched decode bucket): row t scores
// session t's keys.
template <int DI, int BUF, typename QT, typename WT, typename KeyRef>
__device__ void indexerTopK(const QT *q, const WT *weights, const int32_t *positions, KeyRef keySlots,
                            int32_t *out, IndexerShape shape, float *scratchScore, int *scratchIndex,
                            unsigned int *done, const int32_t *dyn) {
  using KeyT = state::SlotElement<KeyRef>;
  extern __shared__ float indexerShared[];
  const int T = presentTokens(dyn);
  const int t = blockIdx.x, split = blockIdx.y, splits = gridDim.y;
  if (t >= T)
    return;
  const KeyT *keys = state::rowSlot(keySlots, t);
  const int H = shape.heads, K = shape.topK;
  float *qs = indexerShared;   // [H][DI]
  float *headWeight = qs + H * DI; // [H]: weights * weight_scale
  state::TopKBuffer<BUF> buffer{headWeight + H, reinterpret_cast<int *>(headWeight + H + BUF),
                                reinterpret_cast<int *>(headWeight + H + 2 * BUF), K};
  for (int i = threadIdx.x; i < H * DI; i += blockDim.x)
    qs[i] = toFloat(q[static_cast<long long>(t) * H * DI + i]);
  for (int h = threadIdx.x; h < H; h += blockDim.x)
    headWeight[h] = toFloat(weights[static_cast<long long>(t) * H + h]) * shape.weightScale;
  buffer.reset(); // ends with __syncthreads

  const long long visible = (static_cast<long long>(positions[t]) + 1) / shape.rate;
  const long long perSplit = (visible + splits - 1) / splits;
  const long long begin = split * perSplit;
  const long long end = begin + perSplit < visible ? begin + perSplit : visible;
  float thresholdScore = -INFINITY;
  int thresholdIndex = INT_MAX;
  for (long long base = begin; base < end; base += blockDim.x) {
    const long long w = base + threadIdx.x;
    float score = 0.0f;
    if (w < end) {
      float key[DI];
      const KeyT *row = keys + w * DI;
      if constexpr ((DI * sizeof(KeyT)) % 16 == 0) {
        constexpr int kPer = static_cast<int>(16 / sizeof(KeyT));
#pragma unroll
        for (int d = 0; d < DI; d += kPer) {
          float chunk[kPer];
          state::loadVec<kPer>(row + d, chunk);
#pragma unroll
          for (int i = 0; i < kPer; ++i)
            key[d + i] = chunk[i];
        }
      } else {
#pragma unroll
        for (int d = 0; d < DI; ++d)
          key[d] = toFloat(row[d]);
      }
      for (int h = 0; h < H; ++h) {
        const float *qh = qs + h * DI; // every thread reads the same q: a broadcast
        float qk = 0.0f;
#pragma unroll
        for (int d = 0; d < DI; ++d)
          qk += qh[d] * key[d];
        score += (fmaxf(qk, 0.0f) * shape.scoreScale) * headWeight[h];
      }
    }
    buffer.offer(w < end, score, static_cast<int>(w), thresholdScore, thresholdIndex);
  }
  buffer.sort();

  if (splits > 1) {
    // Publish this split's K best; the last split of the token merges.
    const long long mine = (static_cast<long long>(t) * splits + split) * K;
    for (int i = threadIdx.x; i < K; i += blockDim.x) {
      scratchScore[mine + i] = buffer.score[i];
      scratchIndex[mine + i] = buffer.index[i];
    }
    if (!state::arriveLast(done + t, splits))
      return;
    buffer.reset();
    thresholdScore = -INFINITY;
    thresholdIndex = INT_MAX;
    const long long first = static_cast<long long>(t) * splits * K;
    for (int base = 0; base < splits * K; base += blockDim.x) {
      const int i = base + threadIdx.x;
      const bool valid = i < splits * K;
      const float s = valid ? state::loadCoherent(scratchScore + first + i) : -INFINITY;
      const int w = valid ? state::loadCoherent(scratchIndex + first + i) : INT_MAX;
      buffer.offer(valid && w != INT_MAX, s, w, thresholdScore, thresholdIndex);
    }
    buffer.sort();
  }
  for (int i = threadIdx.x; i < K; i += blockDim.x) {
    const int w = buffer.index[i];
    out[static_cast<long long>(t) * K + i] = w == INT_MAX ? -1 : w;
  }
}

} // namespace v4cuda
