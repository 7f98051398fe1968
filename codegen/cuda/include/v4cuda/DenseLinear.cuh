// The matmul core of the dense family: y[t, n] = sum_k a(t, k) * b(n, k) in
// fp32 (ref::linear's arithmetic, summation order aside), shared by v4.linear,
// v4.grouped_linear, v4.norm_linear, v4.linear_swiglu and v4.linear_fp8.
//
// Two shapes of kernel, chosen by the emitter from the bucket's static tokens:
//   gemvRows  (T <= 8, decode): one warp per RPW weight rows, 16-byte weight
//             loads along K, every present token row reuses the loaded weights.
//   gemmTile  (larger T): a BM x BN output tile per block, BK-deep fp32 tiles
//             of both operands in shared memory, TM x TN outputs per thread.
// What varies per op is plugged in as three small policies:
//   A (activations): prologue() fills a per-(row, group) table in shared
//      memory (rms of the row for norm_linear, e4m3 scale for linear_fp8),
//      at(t, k) / run<V>(t, k, out) give the operand value as float.
//   B (weights): at(n, k) / run<V>(n, k, out) over "virtual" rows n < NV
//      (linear_swiglu interleaves gate row i = 2i and up row i = 2i + 1).
//   E (epilogue): store<W>(t, n0, vals) writes virtual columns n0..n0+W-1 of
//      row t (linear_swiglu turns each (gate, up) pair into one output).
// kMmaOk on A and B: the operand is (as the unfused bf16 program has it)
// exactly a bf16 value, so the tensor-core tiles (DenseMma.cuh: wmma,
// DenseWgmma.cuh: Hopper wgmma) may run it. kCpAsyncOk: the operand is the
// stored bf16 row itself (16-byte aligned; sourceRow(row) is its first
// element), so the wgmma tile copies it with cp.async, not through registers.
#pragma once

#include <type_traits>

#include <v4cuda/DenseMath.cuh>
#include <v4cuda/DenseMma.cuh>
#include <v4cuda/DenseWgmma.cuh>
#include <v4cuda/DenseWgmmaFp8.cuh>

namespace v4cuda {

// ---- A operands -----------------------------------------------------------

// Plain activations: x[t * LDX + offset + k] (offset: grouped linear's group).
template <typename TX, int LDX, int OFFSET_STEP> struct PlainRows {
  static constexpr bool kAligned = rowsAligned16<TX>(LDX, OFFSET_STEP);
  static constexpr bool kMmaOk = std::is_same<TX, __nv_bfloat16>::value;
  static constexpr bool kCpAsyncOk = kMmaOk && kAligned;
  static constexpr int kTableBytesPerRow = 0;
  const TX *x; // already offset to this group's first column
  __device__ void prologue(int, int, unsigned char *, int) {}
  __device__ const TX *sourceRow(int t) const { return x + static_cast<int64_t>(t) * LDX; }
  __device__ float at(int t, int k) const { return toFloat(x[static_cast<int64_t>(t) * LDX + k]); }
  template <int V> __device__ void run(int t, int k, float (&out)[V]) const {
    loadFloats<V, kAligned>(x + static_cast<int64_t>(t) * LDX + k, out);
  }
};

// rms_norm in the prologue (v4.norm_linear): each group of G channels of a row
// is x * inv_rms(group) [* w[k % G]], exactly ref::rmsNorm's expression.
template <typename TX, typename TN, int K, int G, bool HAS_W> struct NormedRows {
  static constexpr int kGroups = K / G;
  static constexpr bool kAligned = rowsAligned16<TX>(K, 0);
  static constexpr int kTableBytesPerRow = kGroups * 4;
  // The unfused bf16 program stores the normed rows as bf16 too.
  static constexpr bool kMmaOk = std::is_same<TX, __nv_bfloat16>::value;
  const TX *x;
  const TN *normW; // [G] or nullptr
  double eps;
  const float *inv = nullptr; // [rows][kGroups] in shared memory
  int row0 = 0;

  // Table for rows [row0, row0 + rows): one warp per (row, group).
  __device__ void prologue(int firstRow, int rows, unsigned char *table, int present) {
    float *invTable = reinterpret_cast<float *>(table);
    const int lane = threadIdx.x & 31, warps = blockDim.x >> 5;
    for (int pair = threadIdx.x >> 5; pair < rows * kGroups; pair += warps) {
      const int r = pair / kGroups, g = pair % kGroups, t = firstRow + r;
      double sum = 0.0;
      if (t < present) {
        const TX *row = x + static_cast<int64_t>(t) * K + g * G;
        for (int i = lane; i < G; i += 32) {
          const double v = toFloat(row[i]);
          sum += v * v;
        }
      }
      sum = warpSum(sum);
      if (lane == 0)
        invTable[pair] = inverseRmsFromSum(sum, G, eps);
    }
    __syncthreads();
    inv = invTable;
    row0 = firstRow;
  }
  __device__ float normed(float v, int t, int k) const {
    const float scaled = v * inv[(t - row0) * kGroups + k / G];
    return HAS_W ? toFloat(normW[k % G]) * scaled : scaled;
  }
  __device__ float at(int t, int k) const {
    return normed(toFloat(x[static_cast<int64_t>(t) * K + k]), t, k);
  }
  template <int V> __device__ void run(int t, int k, float (&out)[V]) const {
    loadFloats<V, kAligned>(x + static_cast<int64_t>(t) * K + k, out);
#pragma unroll
    for (int i = 0; i < V; ++i)
      out[i] = normed(out[i], t, k + i);
  }
};

// ---- B operands -----------------------------------------------------------

// w [N, K] row-major.
template <typename TW, int K> struct PlainWeights {
  static constexpr bool kAligned = rowsAligned16<TW>(K, 0);
  static constexpr int kVector = kAligned && K % kElemsPer16<TW> == 0 ? kElemsPer16<TW> : 1;
  static constexpr bool kMmaOk = std::is_same<TW, __nv_bfloat16>::value;
  static constexpr bool kCpAsyncOk = kMmaOk && kAligned;
  const TW *w;
  __device__ const TW *sourceRow(int n) const { return w + static_cast<int64_t>(n) * K; }
  __device__ float at(int n, int k) const { return toFloat(w[static_cast<int64_t>(n) * K + k]); }
  template <int V> __device__ void run(int n, int k, float (&out)[V]) const {
    loadFloats<V, kAligned>(w + static_cast<int64_t>(n) * K + k, out);
  }
};

// linear_swiglu: virtual row 2i = gate row i, 2i + 1 = up row i.
template <typename TW, int K> struct GateUpWeights {
  static constexpr bool kAligned = rowsAligned16<TW>(K, 0);
  static constexpr int kVector = kAligned && K % kElemsPer16<TW> == 0 ? kElemsPer16<TW> : 1;
  static constexpr bool kMmaOk = std::is_same<TW, __nv_bfloat16>::value;
  static constexpr bool kCpAsyncOk = kMmaOk && kAligned;
  const TW *gate;
  const TW *up;
  __device__ const TW *row(int n) const { return ((n & 1) ? up : gate) + static_cast<int64_t>(n >> 1) * K; }
  __device__ const TW *sourceRow(int n) const { return row(n); }
  __device__ float at(int n, int k) const { return toFloat(row(n)[k]); }
  template <int V> __device__ void run(int n, int k, float (&out)[V]) const { loadFloats<V, kAligned>(row(n) + k, out); }
};

// ---- epilogues ------------------------------------------------------------

// y[t * LDY + n] for n < N.
template <typename TY, int LDY, int N> struct StoreRows {
  TY *y; // already offset to this group's first column
  template <int W> __device__ void store(int t, int n0, const float (&vals)[W]) const {
    TY *row = y + static_cast<int64_t>(t) * LDY;
#pragma unroll
    for (int j = 0; j < W; ++j)
      if (n0 + j < N)
        row[n0 + j] = fromFloat<TY>(vals[j]);
  }
};

// linear_swiglu: virtual columns (2i, 2i + 1) = (gate, up) of output i < I.
template <typename TY, int I> struct SwigluStore {
  TY *y;
  float limit;
  template <int W> __device__ void store(int t, int n0, const float (&vals)[W]) const {
    static_assert(W % 2 == 0, "gate/up pairs");
    TY *row = y + static_cast<int64_t>(t) * I;
#pragma unroll
    for (int p = 0; p < W / 2; ++p) {
      const int i = n0 / 2 + p;
      if (i < I)
        row[i] = fromFloat<TY>(swigluRef(vals[2 * p], vals[2 * p + 1], limit));
    }
  }
};

// ---- GEMV: T_MAX <= 8 token rows -------------------------------------------

constexpr int kGemvWarps = 8; // blockDim.x = 256
constexpr int kGemvRowsPerWarp = 2;

// Virtual rows per block when KSPLIT warps share each row pair (each takes
// one K-th of K): fewer rows per block, so a narrow weight (N = 512, 1024)
// still spreads over hundreds of blocks at decode.
template <int KSPLIT> __host__ __device__ constexpr int gemvRowsPerBlock() {
  return kGemvWarps / KSPLIT * kGemvRowsPerWarp;
}
// Shared bytes of the K-split partial sums, which start at the A table's
// bytes rounded up to 16.
template <int T_MAX, int KSPLIT> __host__ __device__ constexpr int gemvSplitBytes() {
  return KSPLIT > 1 ? kGemvWarps * kGemvRowsPerWarp * T_MAX * 4 : 0;
}
__host__ __device__ constexpr int gemvSplitOffset(int tableBytes) { return (tableBytes + 15) / 16 * 16; }

// Block `rowBlock` covers gemvRowsPerBlock<KSPLIT>() virtual rows; warp w
// takes rows (w / KSPLIT) * RPW.. of them over the K range w % KSPLIT.
// `table` is the A prologue's shared memory (T_MAX * A::kTableBytesPerRow
// bytes), followed by gemvSplitBytes of partial sums.
template <int T_MAX, int K, int NV, int RPW, int KSPLIT, class A, class B, class E>
__device__ __forceinline__ void gemvRows(A a, const B &b, const E &e, int rowBlock, int present,
                                         unsigned char *table) {
  static_assert(kGemvWarps % KSPLIT == 0, "K splits divide the block's warps");
  a.prologue(0, T_MAX, table, present);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int n0 = rowBlock * gemvRowsPerBlock<KSPLIT>() + (warp / KSPLIT) * RPW, part = warp % KSPLIT;
  constexpr int V = B::kVector;
  // K range of this warp: whole 32 * V steps, so every split starts aligned.
  constexpr int kStep = 32 * V, kSteps = (K + kStep - 1) / kStep;
  const int k0 = (kSteps * part / KSPLIT) * kStep, k1 = min(K, (kSteps * (part + 1) / KSPLIT) * kStep);
  float acc[RPW][T_MAX];
#pragma unroll
  for (int r = 0; r < RPW; ++r)
#pragma unroll
    for (int t = 0; t < T_MAX; ++t)
      acc[r][t] = 0.0f;
  if (n0 < NV) {
#pragma unroll 4
    for (int k = k0 + lane * V; k < k1; k += 32 * V) {
      float w[RPW][V];
#pragma unroll
      for (int r = 0; r < RPW; ++r) {
        if (n0 + r < NV) {
          b.template run<V>(n0 + r, k, w[r]);
        } else {
#pragma unroll
          for (int i = 0; i < V; ++i)
            w[r][i] = 0.0f;
        }
      }
#pragma unroll
      for (int t = 0; t < T_MAX; ++t) {
        if (t < present) {
          float xv[V];
          a.template run<V>(t, k, xv);
#pragma unroll
          for (int r = 0; r < RPW; ++r)
#pragma unroll
            for (int i = 0; i < V; ++i)
              acc[r][t] = fmaf(w[r][i], xv[i], acc[r][t]);
        }
      }
    }
  }
  if constexpr (KSPLIT == 1) {
#pragma unroll
    for (int t = 0; t < T_MAX; ++t) {
      float vals[RPW];
#pragma unroll
      for (int r = 0; r < RPW; ++r)
        vals[r] = warpSum(acc[r][t]);
      if (lane == 0 && t < present && n0 < NV)
        e.store(t, n0, vals);
    }
  } else {
    // Partial sums of the K splits through shared memory, added in split order.
    float *partial = reinterpret_cast<float *>(table + gemvSplitOffset(T_MAX * A::kTableBytesPerRow)); // [warp][RPW][T_MAX]
#pragma unroll
    for (int r = 0; r < RPW; ++r)
#pragma unroll
      for (int t = 0; t < T_MAX; ++t) {
        const float sum = warpSum(acc[r][t]);
        if (lane == 0)
          partial[(warp * RPW + r) * T_MAX + t] = sum;
      }
    __syncthreads();
    if (part == 0 && lane == 0 && n0 < NV)
#pragma unroll
      for (int t = 0; t < T_MAX; ++t)
        if (t < present) {
          float vals[RPW];
#pragma unroll
          for (int r = 0; r < RPW; ++r) {
            vals[r] = 0.0f;
            for (int s = 0; s < KSPLIT; ++s)
              vals[r] += partial[((warp + s) * RPW + r) * T_MAX + t];
          }
          e.store(t, n0, vals);
        }
  }
}

// ---- tiled GEMM -------------------------------------------------------------

constexpr int kGemmThreads = 256;
constexpr int kGemmBK = 16;
constexpr int kGemmPad = 4;

// Dynamic shared memory of gemmTile: both operand tiles, then the A table.
template <int BM, int BN> __host__ __device__ constexpr int gemmTileBytes() {
  return kGemmBK * (BM + kGemmPad + BN + kGemmPad) * 4;
}

// The block's tile: rows [rowTile * BM, +BM) of the present tokens, virtual
// columns [colTile * BN, +BN). Threads form a (BM/TM) x (BN/TN) grid.
template <int BM, int BN, int TM, int TN, int K, int NV, class A, class B, class E>
__device__ __forceinline__ void gemmTile(A a, const B &b, const E &e, int rowTile, int colTile, int present,
                                         unsigned char *shared) {
  static_assert((BM / TM) * (BN / TN) == kGemmThreads, "one output block per thread");
  static_assert(TM % 4 == 0 && TN % 4 == 0, "float4 fragment reads");
  constexpr int BK = kGemmBK, LDA = BM + kGemmPad, LDB = BN + kGemmPad;
  const int row0 = rowTile * BM, col0 = colTile * BN;
  if (row0 >= present)
    return; // uniform over the block: nothing of it is present
  float *As = reinterpret_cast<float *>(shared);           // [BK][LDA]
  float *Bs = As + BK * LDA;                               // [BK][LDB]
  unsigned char *table = reinterpret_cast<unsigned char *>(Bs + BK * LDB);
  a.prologue(row0, BM, table, present);

  const int tid = threadIdx.x;
  const int tx = tid % (BN / TN), ty = tid / (BN / TN);
  float acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j)
      acc[i][j] = 0.0f;

  for (int k0 = 0; k0 < K; k0 += BK) {
    // Consecutive threads take consecutive k of one row: coalesced reads.
#pragma unroll
    for (int idx = tid; idx < BM * BK; idx += kGemmThreads) {
      const int r = idx / BK, kk = idx % BK, t = row0 + r, k = k0 + kk;
      As[kk * LDA + r] = (t < present && k < K) ? a.at(t, k) : 0.0f;
    }
#pragma unroll
    for (int idx = tid; idx < BN * BK; idx += kGemmThreads) {
      const int c = idx / BK, kk = idx % BK, n = col0 + c, k = k0 + kk;
      Bs[kk * LDB + c] = (n < NV && k < K) ? b.at(n, k) : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      float af[TM], bf[TN];
#pragma unroll
      for (int i = 0; i < TM; i += 4) {
        const float4 v = *reinterpret_cast<const float4 *>(&As[kk * LDA + ty * TM + i]);
        af[i] = v.x, af[i + 1] = v.y, af[i + 2] = v.z, af[i + 3] = v.w;
      }
#pragma unroll
      for (int j = 0; j < TN; j += 4) {
        const float4 v = *reinterpret_cast<const float4 *>(&Bs[kk * LDB + tx * TN + j]);
        bf[j] = v.x, bf[j + 1] = v.y, bf[j + 2] = v.z, bf[j + 3] = v.w;
      }
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j)
          acc[i][j] = fmaf(af[i], bf[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int t = row0 + ty * TM + i;
    if (t < present)
      e.store(t, col0 + tx * TN, acc[i]);
  }
}

// ---- ops ------------------------------------------------------------------
// Launch geometry (the emitters compute the same):
//   GEMV: block 256, grid.x = ceil(NV / gemvRowsPerBlock<KSPLIT>()), grid.y = groups,
//         sharedBytes = T_MAX * A::kTableBytesPerRow, with KSPLIT > 1
//         gemvSplitOffset(that) + gemvSplitBytes<T_MAX, KSPLIT>().
//   GEMM: block 256, grid.x = ceil(NV / BN), grid.y = ceil(T / BM), grid.z = groups,
//         sharedBytes = (MMA == 2 ? gemmWgmmaTileBytes : MMA == 1 ? gemmMmaTileBytes : gemmTileBytes)<BM, BN>()
//         + BM * A::kTableBytesPerRow.
// MMA (the drivers' last template argument): 0 = FFMA tile (gemmTile),
// 1 = wmma tile (gemmTileMma), 2 = wgmma tile (gemmTileWgmma, sm_90a only;
// e4m3 operands in 128-wide groups: gemmTileWgmmaFp8 and its
// gemmWgmmaFp8TileBytes, DenseWgmmaFp8.cuh); `false` / `true` read as 0 / 1.
// `tile` is the block's column-block index (blockIdx.x, or blockIdx.x minus
// the start of a norm_linear weight's range).

// Generic drivers over the policies.
template <int T_MAX, int K, int NV, int KSPLIT, class A, class B, class E>
__device__ __forceinline__ void matmulGemv(const A &a, const B &b, const E &e, int tile, const int32_t *dyn) {
  gemvRows<T_MAX, K, NV, kGemvRowsPerWarp, KSPLIT>(a, b, e, tile, presentTokens(dyn), denseSharedMemory());
}
// MMA: 2 the wgmma tile (DenseWgmma.cuh), 1 the wmma tile (DenseMma.cuh), 0 the FFMA tile.
template <int K, int NV, int BM, int BN, int MMA, class A, class B, class E>
__device__ __forceinline__ void matmulGemm(const A &a, const B &b, const E &e, int tile, const int32_t *dyn) {
  static_assert(MMA >= 0 && MMA <= 2, "MMA: 0 FFMA, 1 wmma, 2 wgmma");
  if constexpr (MMA == 2 && kWgmmaFp8Native<A, B>)
    gemmTileWgmmaFp8<BM, BN, K, NV>(a, b, e, blockIdx.y, tile, presentTokens(dyn), denseSharedMemory());
  else if constexpr (MMA == 2)
    gemmTileWgmma<BM, BN, K, NV>(a, b, e, blockIdx.y, tile, presentTokens(dyn), denseSharedMemory());
  else if constexpr (MMA == 1)
    gemmTileMma<BM, BN, K, NV>(a, b, e, blockIdx.y, tile, presentTokens(dyn), denseSharedMemory());
  else
    gemmTile<BM, BN, BM / 16, BN / 16, K, NV>(a, b, e, blockIdx.y, tile, presentTokens(dyn), denseSharedMemory());
}

// v4.linear x [T, K], w [N, K] -> y [T, N].
template <typename TX, typename TW, typename TY, int T_MAX, int K, int N, int KSPLIT>
__device__ __forceinline__ void linearGemv(const TX *x, const TW *w, TY *y, const int32_t *dyn) {
  matmulGemv<T_MAX, K, N, KSPLIT>(PlainRows<TX, K, 0>{x}, PlainWeights<TW, K>{w}, StoreRows<TY, N, N>{y}, blockIdx.x, dyn);
}
template <typename TX, typename TW, typename TY, int K, int N, int BM, int BN, int MMA>
__device__ __forceinline__ void linearGemm(const TX *x, const TW *w, TY *y, const int32_t *dyn) {
  matmulGemm<K, N, BM, BN, MMA>(PlainRows<TX, K, 0>{x}, PlainWeights<TW, K>{w}, StoreRows<TY, N, N>{y}, blockIdx.x, dyn);
}

// v4.grouped_linear x [T, G*KG], w [G*R, KG] -> y [T, G*R]; the group is
// blockIdx.y (GEMV) or blockIdx.z (GEMM).
template <typename TX, typename TW, typename TY, int T_MAX, int G, int KG, int R, int KSPLIT>
__device__ __forceinline__ void groupedLinearGemv(const TX *x, const TW *w, TY *y, const int32_t *dyn) {
  const int g = blockIdx.y;
  matmulGemv<T_MAX, KG, R, KSPLIT>(PlainRows<TX, G * KG, KG>{x + g * KG},
                           PlainWeights<TW, KG>{w + static_cast<int64_t>(g) * R * KG},
                           StoreRows<TY, G * R, R>{y + g * R}, blockIdx.x, dyn);
}
template <typename TX, typename TW, typename TY, int G, int KG, int R, int BM, int BN, int MMA>
__device__ __forceinline__ void groupedLinearGemm(const TX *x, const TW *w, TY *y, const int32_t *dyn) {
  const int g = blockIdx.z;
  matmulGemm<KG, R, BM, BN, MMA>(PlainRows<TX, G * KG, KG>{x + g * KG},
                            PlainWeights<TW, KG>{w + static_cast<int64_t>(g) * R * KG},
                            StoreRows<TY, G * R, R>{y + g * R}, blockIdx.x, dyn);
}

// v4.norm_linear, one of its weights (w [N, K] -> y [T, N]); the entry
// dispatches ranges of blockIdx.x to the weights.
template <typename TX, typename TN, typename TW, typename TY, int T_MAX, int K, int G, bool HAS_W, int N, int KSPLIT>
__device__ __forceinline__ void normLinearGemv(const TX *x, const TN *normW, const TW *w, TY *y, double eps, int tile,
                                               const int32_t *dyn) {
  matmulGemv<T_MAX, K, N, KSPLIT>(NormedRows<TX, TN, K, G, HAS_W>{x, normW, eps}, PlainWeights<TW, K>{w},
                          StoreRows<TY, N, N>{y}, tile, dyn);
}
template <typename TX, typename TN, typename TW, typename TY, int K, int G, bool HAS_W, int N, int BM, int BN, int MMA>
__device__ __forceinline__ void normLinearGemm(const TX *x, const TN *normW, const TW *w, TY *y, double eps, int tile,
                                               const int32_t *dyn) {
  matmulGemm<K, N, BM, BN, MMA>(NormedRows<TX, TN, K, G, HAS_W>{x, normW, eps}, PlainWeights<TW, K>{w},
                           StoreRows<TY, N, N>{y}, tile, dyn);
}

// v4.linear_swiglu h [T, K], gate_w / up_w [I, K] -> [T, I]: 2I virtual rows.
template <typename TX, typename TW, typename TY, int T_MAX, int K, int I, int KSPLIT>
__device__ __forceinline__ void linearSwigluGemv(const TX *h, const TW *gate, const TW *up, TY *y, float limit,
                                                 const int32_t *dyn) {
  matmulGemv<T_MAX, K, 2 * I, KSPLIT>(PlainRows<TX, K, 0>{h}, GateUpWeights<TW, K>{gate, up}, SwigluStore<TY, I>{y, limit},
                              blockIdx.x, dyn);
}
template <typename TX, typename TW, typename TY, int K, int I, int BM, int BN, int MMA>
__device__ __forceinline__ void linearSwigluGemm(const TX *h, const TW *gate, const TW *up, TY *y, float limit,
                                                 const int32_t *dyn) {
  matmulGemm<K, 2 * I, BM, BN, MMA>(PlainRows<TX, K, 0>{h}, GateUpWeights<TW, K>{gate, up}, SwigluStore<TY, I>{y, limit},
                               blockIdx.x, dyn);
}

} // namespace v4cuda
