// v4.indexer_topk for ONE token (decode buckets of one session), built to
// scale to a million tokens of context: at 1M a CSA layer holds 262,144
// keys, too many for the blocks of one token in Indexer.cuh.
//
// Scores (ref::indexerTopK, runtime/cpu/AttentionKernels.cpp) bit for bit:
// q . k in the reference's order (VectorMath.h `dot`: 16 lane sums over
// channels l, l+16, ..., then the pairwise tree 8, 4, 2, 1, then the tail
// channels in order), then score = sum over heads in order of
// (max(qk, 0) * score_scale) * (weights_h * weight_scale), each a separate
// fp32 rounding (__fmul_rn / __fadd_rn, never contracted). The lane sums
// use fmaf only when both operands are 16-bit or narrower floats: their
// product has at most 22 significant bits, so fma and multiply-then-add
// round alike (products below 2^-133, under fp32's subnormal grid, aside).
// Equal scores therefore rank exactly as the reference ranks them.
//
// Geometry: grid.x = S blocks ("splits"), each a contiguous range of keys
// (a multiple of the tile, at least one tile; splits past the visible keys
// only report an empty list). A block scores its range tile by tile: TK keys
// are staged in shared memory transposed ([channel][key], fp32), q as
// [channel][head]; thread (head group, key quad) accumulates KT = 4 keys x
// HT heads at once (a register tile: one vector load of 4 keys and HT / 4
// broadcast loads of q per KT x HT multiply-adds). The per-head terms go
// through shared memory so one thread per key adds them in head order.
// Selection without a full sort: the tile is ranked by counting (indices
// are distinct, so the order is total) and merged into the block's running
// best-K list by rank (each element's position in the merged list = its
// rank in its own list + the number of the other list's elements before
// it, a binary search). The block publishes its list; the last block of
// each group of G splits merges the group's lists the same way, and the
// last of those merges the group lists into the output (two "last block
// finishes" hand-offs, counters reset for graph replay). out = the K best
// (higher score, then lower index), padded with -1.
#pragma once

#include <climits>
#include <cstdint>
#include <type_traits>

#include <v4cuda/Cache.cuh>
#include <v4cuda/Common.cuh>
#include <v4cuda/Indexer.cuh>

namespace v4cuda {

// Keys per thread of the scoring tile (one 16-byte shared load).
constexpr int kIndexerDecodeKeysPerThread = 4;

// Dynamic shared memory of indexerTopKDecode, in 4-byte words (offsets are
// multiples of 4 words: 16-byte vector loads). `tileKeys` = TK,
// `group` = G. StateEmitters.cpp computes the same sizes.
struct IndexerDecodeLayout {
  int heads, headDim, tileKeys, topK, group;

  __host__ __device__ static constexpr int align4(int words) { return (words + 3) / 4 * 4; }
  __host__ __device__ constexpr int q() const { return 0; } // [DI][H] fp32
  __host__ __device__ constexpr int headWeight() const { return align4(headDim * heads); } // [H]
  // Staging q: [H][DI + 1]. Scoring: keys [DI][TK] then terms [H][TK].
  // Merging: G lists of K scores, then G lists of K indices.
  __host__ __device__ constexpr int work() const { return headWeight() + align4(heads); }
  __host__ __device__ constexpr int workWords() const {
    const int staging = align4(heads * (headDim + 1));
    const int scoring = align4(headDim * tileKeys) + align4(heads * tileKeys);
    const int merging = 2 * align4(group * topK);
    const int most = scoring > merging ? scoring : merging;
    return staging > most ? staging : most;
  }
  // The tile's scores / indices, and the same ranked.
  __host__ __device__ constexpr int tile() const { return work() + workWords(); }
  // Two best-K lists (scores, indices), the running one and the next.
  __host__ __device__ constexpr int lists() const { return tile() + 4 * align4(tileKeys); }
  // Per merged list: its length (G ints).
  __host__ __device__ constexpr int counts() const { return lists() + 4 * align4(topK); }
  __host__ __device__ constexpr int words() const { return counts() + align4(group); }
  __host__ __device__ constexpr int bytes() const { return words() * 4; }
};

// Device scratch of one entry (static __device__ arrays the emitter defines).
struct IndexerDecodeScratch {
  float *splitScore;   // [S][K]: each split's best-first list
  int *splitIndex;     // [S][K]
  int *splitCount;     // [S]: its length
  float *groupScore;   // [ceil(S / G)][K]: each group's merged list
  int *groupIndex;     // [ceil(S / G)][K]
  int *groupCount;     // [ceil(S / G)]
  unsigned *groupDone; // [ceil(S / G)] arrival counters (reset by the last block)
  unsigned *topDone;   // [1]
};

namespace state {

// Whether products of T's values with 16-bit-or-narrower floats are exact in fp32.
template <typename T> constexpr bool kNarrowFloat = sizeof(T) <= 2;

// One lane step of the reference's dot: acc + a * b with the reference's roundings.
template <bool FUSE> __device__ __forceinline__ float laneStep(float acc, float a, float b) {
  if constexpr (FUSE)
    return fmaf(a, b, acc); // a * b exact: one rounding either way
  else
    return __fadd_rn(acc, __fmul_rn(a, b));
}

// N consecutive floats of shared memory (16-byte loads when N % 4 == 0; the
// caller keeps the address 16-byte aligned then).
template <int N> __device__ __forceinline__ void loadShared(const float *p, float (&out)[N]) {
  if constexpr (N % 4 == 0) {
#pragma unroll
    for (int i = 0; i < N; i += 4) {
      const float4 v = *reinterpret_cast<const float4 *>(p + i);
      out[i] = v.x;
      out[i + 1] = v.y;
      out[i + 2] = v.z;
      out[i + 3] = v.w;
    }
  } else {
#pragma unroll
    for (int i = 0; i < N; ++i)
      out[i] = p[i];
  }
}

// The bit-reversed 4-bit index: the reference's pairwise tree over lanes
// 0..15 adds lanes l and l + 8 first, so leaves in this order pair up.
__host__ __device__ constexpr int reverse4(int j) {
  return ((j & 1) << 3) | ((j & 2) << 1) | ((j & 4) >> 1) | ((j & 8) >> 3);
}

// Lane sum l of the reference's dot for a KT x HT register tile:
// sum over i of q[16 i + l] * k[16 i + l], i ascending, from +0.
template <int DI, int KT, int HT, bool FUSE>
__device__ __forceinline__ void laneSums(const float *keysT, int tileKeys, const float *qT, int heads, int k0,
                                         int h0, int l, float (&acc)[KT][HT]) {
#pragma unroll
  for (int kt = 0; kt < KT; ++kt)
#pragma unroll
    for (int ht = 0; ht < HT; ++ht)
      acc[kt][ht] = 0.0f;
#pragma unroll
  for (int i = 0; i < DI / 16; ++i) {
    const int d = 16 * i + l;
    float kv[KT], qv[HT];
    loadShared<KT>(keysT + d * tileKeys + k0, kv);
    loadShared<HT>(qT + d * heads + h0, qv);
#pragma unroll
    for (int kt = 0; kt < KT; ++kt)
#pragma unroll
      for (int ht = 0; ht < HT; ++ht)
        acc[kt][ht] = laneStep<FUSE>(acc[kt][ht], qv[ht], kv[kt]);
  }
}

// The pairwise tree over the lane sums at leaves J0..J0+N-1 (bit-reversed lanes).
template <int DI, int KT, int HT, bool FUSE, int J0, int N>
__device__ __forceinline__ void laneTree(const float *keysT, int tileKeys, const float *qT, int heads, int k0,
                                         int h0, float (&out)[KT][HT]) {
  if constexpr (N == 1) {
    laneSums<DI, KT, HT, FUSE>(keysT, tileKeys, qT, heads, k0, h0, reverse4(J0), out);
  } else {
    float right[KT][HT];
    laneTree<DI, KT, HT, FUSE, J0, N / 2>(keysT, tileKeys, qT, heads, k0, h0, out);
    laneTree<DI, KT, HT, FUSE, J0 + N / 2, N / 2>(keysT, tileKeys, qT, heads, k0, h0, right);
#pragma unroll
    for (int kt = 0; kt < KT; ++kt)
#pragma unroll
      for (int ht = 0; ht < HT; ++ht)
        out[kt][ht] = __fadd_rn(out[kt][ht], right[kt][ht]);
  }
}

// The number of leading entries of a best-first list that come before
// (score, index): strictly better, or also equal ones when `equalFirst`.
__device__ __forceinline__ int rankIn(const float *score, const int *index, int n, float s, int w, bool equalFirst) {
  int lo = 0, hi = n;
  while (lo < hi) {
    const int mid = (lo + hi) >> 1;
    const bool before = better(score[mid], index[mid], s, w) || (equalFirst && score[mid] == s && index[mid] == w);
    if (before)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

// out = the first min(K, na + nb) of the merge of best-first lists a and b
// (all in shared memory; block-wide; the caller synchronises after).
__device__ __forceinline__ void mergeBest(const float *aScore, const int *aIndex, int na, const float *bScore,
                                          const int *bIndex, int nb, float *outScore, int *outIndex, int K) {
  for (int i = threadIdx.x; i < na + nb; i += blockDim.x) {
    float s;
    int w, at;
    if (i < na) {
      s = aScore[i];
      w = aIndex[i];
      at = i + rankIn(bScore, bIndex, nb, s, w, false);
    } else {
      s = bScore[i - na];
      w = bIndex[i - na];
      at = i - na + rankIn(aScore, aIndex, na, s, w, true); // equal pairs: a's first
    }
    if (at < K) {
      outScore[at] = s;
      outIndex[at] = w;
    }
  }
}

// Merges best-first list b (length nb) into the running list (run, length
// n) through `next`, then swaps run and next; returns the new length. The
// caller synchronises before `run` is read.
__device__ __forceinline__ int mergeIntoRun(float *&runScore, int *&runIndex, int n, const float *bScore,
                                            const int *bIndex, int nb, float *&nextScore, int *&nextIndex, int K) {
  mergeBest(runScore, runIndex, n, bScore, bIndex, nb, nextScore, nextIndex, K);
  float *s = runScore;
  runScore = nextScore;
  nextScore = s;
  int *x = runIndex;
  runIndex = nextIndex;
  nextIndex = x;
  return n + nb < K ? n + nb : K;
}

// Merges `lists` best-first lists of global scratch (list i at score +
// (first + i) * K, length count[first + i], written by other blocks of this
// launch) into the running list of length n (shared `run`, ping-pong with
// `next`). Returns the merged length; `run` / `next` are swapped as needed.
__device__ inline int mergeScratchLists(const float *score, const int *index, const int *count, int first, int lists,
                                        int K, int n, float *stageScore, int *stageIndex, int *stageCount, float *&runScore,
                                        int *&runIndex, float *&nextScore, int *&nextIndex) {
  for (int i = threadIdx.x; i < lists; i += blockDim.x)
    stageCount[i] = loadCoherent(count + first + i);
  __syncthreads();
  for (int i = threadIdx.x; i < lists * K; i += blockDim.x) {
    const int list = i / K, at = i % K;
    if (at < stageCount[list]) {
      stageScore[i] = loadCoherent(score + static_cast<long long>(first) * K + i);
      stageIndex[i] = loadCoherent(index + static_cast<long long>(first) * K + i);
    }
  }
  __syncthreads();
  for (int list = 0; list < lists; ++list) {
    const int m = stageCount[list];
    if (m == 0)
      continue;
    n = mergeIntoRun(runScore, runIndex, n, stageScore + list * K, stageIndex + list * K, m, nextScore, nextIndex, K);
    __syncthreads();
  }
  return n;
}

} // namespace state

// grid.x = S splits, blockDim.x = 256 (a multiple of H / HT); HT divides H;
// `group` = G splits per first-level merge. Dynamic shared memory:
// IndexerDecodeLayout{H, DI, TK, K, G}.bytes() with TK = 4 * (blockDim.x / (H / HT)).
template <int DI, int HT, typename QT, typename WT, typename KeyT>
__device__ void indexerTopKDecode(const QT *q, const WT *weights, const int32_t *positions, const KeyT *keys,
                                  int32_t *out, IndexerShape shape, int group, IndexerDecodeScratch scratch,
                                  const int32_t *dyn) {
  constexpr int KT = kIndexerDecodeKeysPerThread;
  constexpr bool FUSE = state::kNarrowFloat<QT> && state::kNarrowFloat<KeyT>;
  extern __shared__ float indexerShared[];
  if (presentTokens(dyn) < 1)
    return;
  const int H = shape.heads, K = shape.topK;
  const int headGroups = H / HT, keyQuads = static_cast<int>(blockDim.x) / headGroups, TK = keyQuads * KT;
  const IndexerDecodeLayout layout{H, DI, TK, K, group};
  float *qT = indexerShared + layout.q();
  float *headWeight = indexerShared + layout.headWeight();
  float *keysT = indexerShared + layout.work();
  float *terms = keysT + IndexerDecodeLayout::align4(DI * TK);
  float *tileScore = indexerShared + layout.tile();
  int *tileIndex = reinterpret_cast<int *>(tileScore + IndexerDecodeLayout::align4(TK));
  float *rankedScore = tileScore + 2 * IndexerDecodeLayout::align4(TK);
  int *rankedIndex = reinterpret_cast<int *>(tileScore + 3 * IndexerDecodeLayout::align4(TK));
  const int listWords = IndexerDecodeLayout::align4(K);
  float *runScore = indexerShared + layout.lists();
  int *runIndex = reinterpret_cast<int *>(runScore + listWords);
  float *nextScore = runScore + 2 * listWords;
  int *nextIndex = reinterpret_cast<int *>(runScore + 3 * listWords);

  // q [H][DI] -> qT [DI][H] through a copy with rows of DI + 1 (odd) floats:
  // neither pass has shared-memory bank conflicts. The scoring area is free
  // until the first tile (whose staging waits for a barrier).
  float *qStage = keysT;
  for (int i = threadIdx.x; i < H * DI; i += blockDim.x)
    qStage[(i / DI) * (DI + 1) + i % DI] = toFloat(q[i]);
  __syncthreads();
  for (int i = threadIdx.x; i < H * DI; i += blockDim.x)
    qT[i] = qStage[(i % H) * (DI + 1) + i / H];
  for (int h = threadIdx.x; h < H; h += blockDim.x)
    headWeight[h] = __fmul_rn(toFloat(weights[h]), shape.weightScale);

  const int split = blockIdx.x, splits = gridDim.x;
  const long long visible = (static_cast<long long>(positions[0]) + 1) / shape.rate;
  long long perSplit = (visible + splits - 1) / splits;
  perSplit = (perSplit + TK - 1) / TK * TK; // whole tiles, at least one
  if (perSplit < TK)
    perSplit = TK;
  const long long begin = split * perSplit;
  const long long end = begin + perSplit < visible ? begin + perSplit : visible;

  const int tid = threadIdx.x;
  const bool computes = tid < headGroups * keyQuads;
  const int k0 = (tid % keyQuads) * KT, h0 = (tid / keyQuads) * HT;
  int n = 0; // length of the running list
  for (long long base = begin; base < end; base += TK) {
    const int present = end - base < TK ? static_cast<int>(end - base) : TK;
    __syncthreads(); // q is staged / the previous tile's keys and terms are consumed
    // Stage the tile transposed: key rows [w][DI] -> keysT[d][key], zeros past the range.
    constexpr int V = (DI * sizeof(KeyT)) % 16 == 0 ? static_cast<int>(16 / sizeof(KeyT)) : 1;
    for (int c = tid; c < TK * (DI / V); c += blockDim.x) {
      const int key = c % TK, d0 = (c / TK) * V;
      float chunk[V];
      if (key < present) {
        state::loadVec<V>(keys + (base + key) * DI + d0, chunk);
      } else {
#pragma unroll
        for (int v = 0; v < V; ++v)
          chunk[v] = 0.0f;
      }
#pragma unroll
      for (int v = 0; v < V; ++v)
        keysT[(d0 + v) * TK + key] = chunk[v];
    }
    __syncthreads();
    if (computes) {
      float dots[KT][HT];
      state::laneTree<DI, KT, HT, FUSE, 0, 16>(keysT, TK, qT, H, k0, h0, dots);
#pragma unroll
      for (int d = DI / 16 * 16; d < DI; ++d) { // the tail channels, in order
        float kv[KT], qv[HT];
        state::loadShared<KT>(keysT + d * TK + k0, kv);
        state::loadShared<HT>(qT + d * H + h0, qv);
#pragma unroll
        for (int kt = 0; kt < KT; ++kt)
#pragma unroll
          for (int ht = 0; ht < HT; ++ht)
            dots[kt][ht] = state::laneStep<FUSE>(dots[kt][ht], qv[ht], kv[kt]);
      }
#pragma unroll
      for (int ht = 0; ht < HT; ++ht) {
        const int h = h0 + ht;
        const float weight = headWeight[h];
#pragma unroll
        for (int kt = 0; kt < KT; ++kt) {
          const float qk = dots[kt][ht];
          const float relu = qk < 0.0f ? 0.0f : qk; // std::max(qk, 0.0f)
          terms[h * TK + k0 + kt] = __fmul_rn(__fmul_rn(relu, shape.scoreScale), weight);
        }
      }
    }
    __syncthreads();
    for (int key = tid; key < present; key += blockDim.x) {
      float score = 0.0f;
      for (int h = 0; h < H; ++h)
        score = __fadd_rn(score, terms[h * TK + key]);
      tileScore[key] = score;
      tileIndex[key] = static_cast<int>(base + key);
    }
    __syncthreads();
    // Rank the tile (a total order: indices differ), then merge by rank.
    for (int key = tid; key < present; key += blockDim.x) {
      const float s = tileScore[key];
      const int w = tileIndex[key];
      int rank = 0;
      for (int other = 0; other < present; ++other)
        rank += state::better(tileScore[other], tileIndex[other], s, w) ? 1 : 0;
      rankedScore[rank] = s;
      rankedIndex[rank] = w;
    }
    __syncthreads();
    n = state::mergeIntoRun(runScore, runIndex, n, rankedScore, rankedIndex, present, nextScore, nextIndex, K);
  }
  __syncthreads();

  // Publish this split's list; the last split of the group merges the group.
  for (int i = tid; i < n; i += blockDim.x) {
    scratch.splitScore[static_cast<long long>(split) * K + i] = runScore[i];
    scratch.splitIndex[static_cast<long long>(split) * K + i] = runIndex[i];
  }
  if (tid == 0)
    scratch.splitCount[split] = n;
  const int groupOf = split / group, groups = (splits + group - 1) / group;
  const int firstSplit = groupOf * group;
  const int members = splits - firstSplit < group ? splits - firstSplit : group;
  if (!state::arriveLast(scratch.groupDone + groupOf, members))
    return;
  float *stageScore = keysT; // the scoring area is free now
  int *stageIndex = reinterpret_cast<int *>(keysT + IndexerDecodeLayout::align4(group * K));
  int *stageCount = reinterpret_cast<int *>(indexerShared + layout.counts());
  n = state::mergeScratchLists(scratch.splitScore, scratch.splitIndex, scratch.splitCount, firstSplit, members, K, 0,
                               stageScore, stageIndex, stageCount, runScore, runIndex, nextScore, nextIndex);
  if (groups > 1) {
    // Publish the group's list; the last group merges the groups.
    for (int i = tid; i < n; i += blockDim.x) {
      scratch.groupScore[static_cast<long long>(groupOf) * K + i] = runScore[i];
      scratch.groupIndex[static_cast<long long>(groupOf) * K + i] = runIndex[i];
    }
    if (tid == 0)
      scratch.groupCount[groupOf] = n;
    if (!state::arriveLast(scratch.topDone, groups))
      return;
    n = 0;
    for (int first = 0; first < groups; first += group) { // G lists at a time fit the stage
      const int lists = groups - first < group ? groups - first : group;
      n = state::mergeScratchLists(scratch.groupScore, scratch.groupIndex, scratch.groupCount, first, lists, K, n,
                                   stageScore, stageIndex, stageCount, runScore, runIndex, nextScore, nextIndex);
    }
  }
  for (int i = tid; i < K; i += blockDim.x)
    out[i] = i < n ? runIndex[i] : -1;
}

} // namespace v4cuda
