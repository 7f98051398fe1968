// The window ring (v4.cache_append, v4.rope_cache_append) and the helpers the
// state kernel family (Cache, Compressor, Indexer, Attention, Moe) shares:
// rope of one pair, row loads, and the "last block finishes" hand-off.
//
// Mirrors runtime/cpu/AttentionKernels.cpp (cacheAppend) and
// DenseKernels.cpp (ropeVector). Window ring layout: [W, width], position p
// in row p % W (codegen/cuda/KernelEmitter.h).
#pragma once

#include <cstdint>
#include <type_traits>

#include <v4cuda/Common.cuh>

namespace v4cuda {

// A cache operand of a decode bucket of B > 1 sessions (KernelEmitter.h,
// "Entry ABI"): a device table of B slot bases, row t -> session t's slot.
// Everywhere else a cache operand is a plain pointer to one session's slot,
// and the bucket's tokens are consecutive positions of that session (a chunk).
template <typename T> struct RowSlots {
  T *const *bases;
};

namespace state {

// The slot row t works on: the one session's slot, or session t's.
template <typename T> __device__ __forceinline__ T *rowSlot(T *slot, int) { return slot; }
template <typename T> __device__ __forceinline__ T *rowSlot(RowSlots<T> slots, int t) { return slots.bases[t]; }
// Whether a cache operand was passed (optional operands come as nullptr).
template <typename T> __device__ __forceinline__ bool slotGiven(T *slot) { return slot != nullptr; }
template <typename T> __device__ __forceinline__ bool slotGiven(RowSlots<T> slots) { return slots.bases != nullptr; }
// kPerRow: every row is its own session's next token (a batched decode
// bucket), not one token of a chunk. Element: the slot's storage type.
template <typename Ref> struct SlotTraits {
  static constexpr bool kPerRow = false;
  using Element = std::remove_const_t<std::remove_pointer_t<Ref>>;
};
template <typename T> struct SlotTraits<RowSlots<T>> {
  static constexpr bool kPerRow = true;
  using Element = std::remove_const_t<T>;
};
template <typename Ref> constexpr bool kPerRow = SlotTraits<Ref>::kPerRow;
template <typename Ref> using SlotElement = typename SlotTraits<Ref>::Element;

// ref::ropeVector's cos/sin for pair i at `position`: the angle in fp32
// (position * inv_freq[i]), cosf/sinf rounded to float, then times `scaling`
// in double and rounded again. cos/sin of the double argument rounded to
// float is the correctly rounded cosf/sinf the CPU's libm returns.
__device__ __forceinline__ void ropeCosSin(long long position, float invFreq, double scaling,
                                           bool inverse, float &c, float &s) {
  const float angle = static_cast<float>(position) * invFreq;
  const float cosAngle = static_cast<float>(cos(static_cast<double>(angle)));
  const float sinAngle = static_cast<float>(sin(static_cast<double>(angle)));
  c = static_cast<float>(static_cast<double>(cosAngle) * scaling);
  s = static_cast<float>(static_cast<double>(sinAngle) * scaling);
  if (inverse)
    s = -s;
}

// (x0, x1) <- (x0 c - x1 s, x1 c + x0 s), rounded like the CPU (no FMA
// contraction), so a roped row matches the reference bit for bit.
__device__ __forceinline__ void ropeRotate(float &x0, float &x1, float c, float s) {
  const float a = x0, b = x1;
  x0 = __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s));
  x1 = __fadd_rn(__fmul_rn(b, c), __fmul_rn(a, s));
}

// Index i of the rope pair starting at channel `channel` (even) of a head of
// `headDim` whose LAST `ropeDim` channels rotate; -1 when it passes through.
__device__ __forceinline__ int ropePairIndex(int channel, int headDim, int ropeDim) {
  const int inHead = channel % headDim, first = headDim - ropeDim;
  return inHead >= first ? (inHead - first) / 2 : -1;
}

// V consecutive elements as floats, in one vector load where loadElements
// can: the caller guarantees that alignment (row starts and channel offsets
// multiples of V, buffers 64-byte aligned).
template <int V, typename T> __device__ __forceinline__ void loadVec(const T *p, float (&out)[V]) {
  T elems[V];
  loadElements<V>(p, elems);
#pragma unroll
  for (int i = 0; i < V; ++i)
    out[i] = toFloat(elems[i]);
}

// An element written by another block of this launch: read through L2 (a
// stale L1 line of this SM must not answer).
__device__ __forceinline__ float loadCoherent(const float *p) { return __ldcg(p); }
__device__ __forceinline__ int loadCoherent(const int *p) { return __ldcg(p); }

// The "last block finishes" hand-off: every block calls this once after its
// global writes; it returns true in exactly one block (the last to arrive),
// which then sees every other block's writes. `counter` is a __device__
// variable of the entry; the last block resets it, so the next launch (or a
// graph replay) starts from 0. Launches of one entry must not overlap in
// time (one stream).
__device__ __forceinline__ bool arriveLast(unsigned int *counter, unsigned int blocks) {
  __threadfence(); // this block's writes are visible device-wide before it counts
  __syncthreads();
  bool last = false;
  if (threadIdx.x == 0) {
    last = atomicAdd(counter, 1u) == blocks - 1;
    if (last)
      atomicExch(counter, 0u);
  }
  last = __syncthreads_or(last) != 0; // thread 0's verdict, to every thread
  if (last)
    __threadfence(); // order the other blocks' writes before our reads
  return last;
}

} // namespace state

// v4.cache_append: the last min(T, W) tokens of the chunk into the ring
// (ref::cacheAppend). grid.x = min(bucket tokens, W); block b stores token
// T - min(T, W) + b; threads stride the row. Per-row slots (batched decode):
// every row into its own session's ring, grid.x = bucket tokens.
template <typename WinRef, typename KvT>
__device__ void cacheAppendRows(WinRef window, const KvT *kv, const int32_t *positions, int W,
                                int width, const int32_t *dyn) {
  using CacheT = state::SlotElement<WinRef>;
  const int T = presentTokens(dyn);
  const int kept = (state::kPerRow<WinRef> || T < W) ? T : W;
  if (static_cast<int>(blockIdx.x) >= kept)
    return;
  const int t = T - kept + static_cast<int>(blockIdx.x);
  CacheT *row = state::rowSlot(window, t) + static_cast<long long>(positions[t] % W) * width;
  const KvT *src = kv + static_cast<long long>(t) * width;
  for (int d = threadIdx.x; d < width; d += blockDim.x)
    row[d] = fromFloat<CacheT>(toFloat(src[d]));
}

// v4.rope_cache_append: roped = rope(kv, positions), then the roped rows into
// the ring like cache_append (ref::rope + ref::cacheAppend). grid.x = bucket
// tokens (one block per token); thread i handles the channel pairs
// (2i, 2i+1), i < width / 2, strided by blockDim. Per-row slots: every row
// into its own session's ring.
template <typename KvT, typename RopedT, typename WinRef>
__device__ void ropeCacheAppendRows(const KvT *kv, const int32_t *positions, RopedT *roped,
                                    WinRef window, const float *invFreq, int W, int width,
                                    int headDim, int ropeDim, double scaling, bool inverse,
                                    const int32_t *dyn) {
  using CacheT = state::SlotElement<WinRef>;
  const int T = presentTokens(dyn);
  const int t = blockIdx.x;
  if (t >= T)
    return;
  const long long pos = positions[t];
  const bool keep = state::kPerRow<WinRef> || t >= T - W; // later chunks read only the last W tokens
  CacheT *ring = state::rowSlot(window, t) + (pos % W) * width;
  for (int pair = threadIdx.x; pair < width / 2; pair += blockDim.x) {
    const int d = 2 * pair;
    float x0 = toFloat(kv[static_cast<long long>(t) * width + d]);
    float x1 = toFloat(kv[static_cast<long long>(t) * width + d + 1]);
    const int i = state::ropePairIndex(d, headDim, ropeDim);
    if (i >= 0) {
      float c, s;
      state::ropeCosSin(pos, invFreq[i], scaling, inverse, c, s);
      state::ropeRotate(x0, x1, c, s);
    }
    const RopedT r0 = fromFloat<RopedT>(x0), r1 = fromFloat<RopedT>(x1);
    roped[static_cast<long long>(t) * width + d] = r0;
    roped[static_cast<long long>(t) * width + d + 1] = r1;
    if (keep) { // the ring holds what `roped` holds (same rounding)
      ring[d] = fromFloat<CacheT>(toFloat(r0));
      ring[d + 1] = fromFloat<CacheT>(toFloat(r1));
    }
  }
}

} // namespace v4cuda
