// v4.moe / v4.moe_fp4 at prefill on tensor cores (sm_80+): the routed
// experts as two grouped GEMMs with bf16 wmma fragments and fp32
// accumulators, in ONE launch (the entry ABI has one kernel per op).
//
// Exactness (the rule of DenseMma.cuh): an operand goes through bf16 only
// where it is exactly a bf16 value, so each product is exact in fp32 and the
// result differs from ref::moe / ref::moeFp4 only in the order of the fp32
// additions:
//   - gate_up GEMM: h is bf16 (bf16 program) or the e4m3 fake-quantized h
//     (fp4: 4 significant bits); weights are bf16 or e2m1 x ue8m0 (exact).
//   - down GEMM: the SwiGLU output is fp32 in ref::moe, so it is split into
//     three bf16 terms hi + mid + lo == act exactly (8 + 8 + 8 significant
//     bits) and multiplied three times; with fp4 it is e4m3 fake-quantized
//     (exact in bf16), one term.
// The emitter uses this kernel only then (f32 programs keep moeGrouped).
//
// Work items, taken in ticket order (an atomic counter, not blockIdx, so a
// block only ever waits for work that a running or finished block owns):
//   ticket 0          routing: counting sort of the present (token, slot)
//                     pairs by expert into `order`, and the tile table (each
//                     expert's pairs cut into tiles of kMoeMmaRows).
//   next P1 tickets   (tile, slice of kMoeMmaSlice rows of I): the gate / up
//                     rows of the slice for the tile's rows, SwiGLU, the
//                     activation rows into the `act` scratch ([pairs, I] f32).
//   next P2 tickets   (tile, kMoeMmaCols columns of D): once every slice of
//                     the tile is done, act x down^T, times the route weight,
//                     added into the f32 accumulator; the block that makes a
//                     token's last addition rounds its row into `out` and
//                     clears it (as moeGrouped).
// The last block to finish resets the counters (graph replays start clean).
//
// The work-item driver (moeGroupedRun: tickets, routing, the SwiGLU and down
// epilogues) is shared with the wgmma variant (MoeWgmma.cuh); the two differ
// only in the GEMM main loops, a Tiles policy (MoeWmmaTiles here) that leaves
// a work item's f32 products in a shared staging tile.
#pragma once

#include <mma.h>

#include <type_traits>

#include <v4cuda/DenseMma.cuh>
#include <v4cuda/Moe.cuh>

namespace v4cuda {

constexpr int kMoeMmaRows = 64;   // (token, slot) pairs per tile
constexpr int kMoeMmaSlice = 128; // rows of I per gate/up block (one e4m3 group of the SwiGLU output)
constexpr int kMoeMmaCols = 128;  // columns of D per down block
constexpr int kMoeMmaBK = 32;
constexpr int kMoeMmaLD = kMoeMmaBK + 8; // bf16 tile row stride (16-byte aligned rows)
constexpr int kMoeMmaThreads = 256;      // 8 warps, 2 x 4 over the output tile (blockDim.x must be this)
constexpr int kMoeMmaStageLD = 2 * kMoeMmaSlice + 4;

// Device scratch of one entry (static __device__ arrays, sizes from the emitter).
struct MoeMmaScratch {
  int *order;              // [pairs]: pair ids t * k + slot grouped by expert
  int *tileExpert;         // [maxTiles]
  int *tileBegin;          // [maxTiles]: first row of `order`
  int *tileCount;          // [maxTiles]
  float *act;              // [pairs][I]: SwiGLU rows, row = position in `order` (16-byte aligned)
  float *accumulator;      // [T][D], zero between launches
  unsigned int *tokenDone; // [T]
  unsigned int *tileDone;  // [maxTiles]: gate/up slices finished
  unsigned int *control;   // [4]: ticket, tiles (+1 once routed), finished blocks, spare
};

// Pair capacity and tile capacity of a bucket of T tokens.
__host__ __device__ constexpr int moeMmaMaxTiles(int T, int k, int E) {
  return (T * k + kMoeMmaRows - 1) / kMoeMmaRows + E < T * k ? (T * k + kMoeMmaRows - 1) / kMoeMmaRows + E : T * k;
}
// Dynamic shared memory after a variant's tile bytes: the fp4 row scales and
// the per-row pair ids / tokens / flags.
__host__ __device__ constexpr int moeRowTableBytes(int D) {
  return kMoeMmaRows * ((D + kMoeActivationGroup - 1) / kMoeActivationGroup) + 3 * kMoeMmaRows * 4;
}
// The wmma variant's tile bytes: three bf16 A tiles, the B tile, the f32 staging.
constexpr int kMoeWmmaTileBytes =
    (3 * kMoeMmaRows + 2 * kMoeMmaSlice) * kMoeMmaLD * 2 + kMoeMmaRows * kMoeMmaStageLD * 4;
__host__ __device__ constexpr int moeMmaSharedBytes(int D) { return kMoeWmmaTileBytes + moeRowTableBytes(D); }
// Grid: routing + gate/up blocks + down blocks.
__host__ __device__ constexpr int moeMmaBlocks(int T, int k, int E, int D, int I) {
  return 1 + moeMmaMaxTiles(T, k, E) * (I / kMoeMmaSlice + (D + kMoeMmaCols - 1) / kMoeMmaCols);
}

namespace state {

// Waits until *counter >= target (thread 0 polls, the block follows).
__device__ __forceinline__ void waitForCount(unsigned int *counter, unsigned int target) {
  if (threadIdx.x == 0)
    while (atomicAdd(counter, 0u) < target) {
#ifdef __CUDA_ARCH__
      __nanosleep(128);
#endif
    }
  __syncthreads();
  __threadfence(); // the producers' writes before ours reads
}

// fp4 path: the e4m3 fake-quantization exponent of each (row, group of 128)
// of the tile's h rows (fakeQuantizeShared's rule), one warp per pair.
template <typename HT>
__device__ __forceinline__ void moeRowScales(const HT *h, int D, const int *rowToken, int rows, signed char *table) {
  const int groups = (D + kMoeActivationGroup - 1) / kMoeActivationGroup;
  const int lane = threadIdx.x & 31, warps = blockDim.x >> 5;
  for (int pair = threadIdx.x >> 5; pair < rows * groups; pair += warps) {
    const int m = pair / groups, g = pair % groups;
    float amax = 0.0f;
    const HT *row = h + static_cast<long long>(rowToken[m]) * D;
    const int end = min(D, (g + 1) * kMoeActivationGroup);
    for (int d = g * kMoeActivationGroup + lane; d < end; d += 32)
      amax = fmaxf(amax, fabsf(toFloat(row[d])));
    amax = warpMax(amax);
    if (lane == 0)
      table[pair] = static_cast<signed char>(ue8m0Exponent(amax, 448.0f));
  }
  __syncthreads();
}

__device__ __forceinline__ float fakeQuantize(float x, int exponent) {
  return static_cast<float>(__nv_fp8_e4m3(x * ldexpf(1.0f, -exponent))) * ldexpf(1.0f, exponent);
}

// The routing work item: counting sort of the present pairs by expert, then
// the tile table; publishes the tile count + 1 in control[1].
__device__ __forceinline__ void moeMmaRoute(const int32_t *experts, int pairs, int E, int maxTiles,
                                            const MoeMmaScratch &s, int *counts) {
  for (int e = threadIdx.x; e < 2 * E; e += blockDim.x)
    counts[e] = 0; // [0, E): counts, then offsets; [E, 2E): cursors
  __syncthreads();
  for (int p = threadIdx.x; p < pairs; p += blockDim.x)
    atomicAdd(counts + clampExpert(experts[p], E), 1);
  __syncthreads();
  if (threadIdx.x == 0) {
    int offset = 0, tiles = 0;
    for (int e = 0; e < E; ++e) {
      const int count = counts[e];
      for (int begin = 0; begin < count && tiles < maxTiles; begin += kMoeMmaRows, ++tiles) {
        s.tileExpert[tiles] = e;
        s.tileBegin[tiles] = offset + begin;
        s.tileCount[tiles] = min(kMoeMmaRows, count - begin);
      }
      counts[e] = offset;
      offset += count;
    }
    s.control[3] = static_cast<unsigned int>(tiles);
  }
  __syncthreads();
  // Position within an expert's rows is arbitrary: a row's result does not
  // depend on where it sits in the tile.
  for (int p = threadIdx.x; p < pairs; p += blockDim.x) {
    const int e = clampExpert(experts[p], E);
    s.order[counts[e] + atomicAdd(counts + E + e, 1)] = p;
  }
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0)
    atomicExch(s.control + 1, s.control[3] + 1u);
}

} // namespace state

// The rows of one tile work item: positions [begin, begin + count) of
// `order`, all routed to `expert`.
struct MoeTile {
  int expert, begin, count;
  const int *rowToken;         // [kMoeMmaRows] (shared): token of each row
  const signed char *rowScale; // fp4: [kMoeMmaRows][groups of D] e4m3 exponents of the h rows
};
template <bool FP4> constexpr int kMoeDownTerms = FP4 ? 1 : 3; // bf16 terms of the SwiGLU output

// One bf16 x 8 chunk of an operand tile, packed in a register value (zeros
// when !valid). The tiles of step k + 1 are loaded into registers while the
// MMAs of step k run, then stored (register double buffering, as DenseMma.cuh).
template <typename F> __device__ __forceinline__ uint4 moeLoadChunk(bool valid, F load) {
  float v[8];
  if (valid)
    load(v);
  else
#pragma unroll
    for (int i = 0; i < 8; ++i)
      v[i] = 0.0f;
  return packBf16x8(v);
}
__device__ __forceinline__ void storeChunk(__nv_bfloat16 *dst, uint4 value) { *reinterpret_cast<uint4 *>(dst) = value; }

// act = hi + mid + lo, each a bf16 value (exact: 8 significant bits each).
__device__ __forceinline__ void splitBf16x3(const float (&a)[8], float (&hi)[8], float (&mid)[8], float (&lo)[8]) {
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    hi[i] = __bfloat162float(__float2bfloat16_rn(a[i]));
    const float r = a[i] - hi[i];
    mid[i] = __bfloat162float(__float2bfloat16_rn(r));
    lo[i] = r - mid[i];
  }
}

// e2m1 code (low nibble) -> the float decodeE2M1 gives, from its bits:
// exponent field e > 0: 2^(e - 1) * (1 + m / 2); e = 0: m / 2.
__device__ __forceinline__ float decodeE2M1ByBits(uint32_t code) {
  const uint32_t e = (code >> 1) & 3u, m = code & 1u;
  const uint32_t magnitude = e != 0u ? ((e + 126u) << 23) | (m << 22) : m * (126u << 23);
  return __uint_as_float(magnitude | ((code & 8u) << 28));
}

// Columns [col, col + 8) of an expert row as floats: Rows::load<8>. fp4
// rows whose chunk lies in one scale block (blockCols % 8 == 0) decode the
// scale once and the codes by bits: the same fp32 products as
// Fp4ExpertRows::load (exact e2m1 values times 2^k), a few instructions per
// element instead of two ldexpf (the fp4 GEMMs are bound by this decode).
template <typename Rows>
__device__ __forceinline__ void moeExpertChunk(const Rows &rows, long long row, int col, float (&v)[8]) {
  rows.template load<8>(row, col, v);
}
__device__ __forceinline__ void moeExpertChunk(const state::Fp4ExpertRows &rows, long long row, int col,
                                               float (&v)[8]) {
  if (rows.blockCols % 8 != 0) {
    rows.load<8>(row, col, v);
    return;
  }
  uint8_t bytes[8];
  loadElements<8>(rows.codes + row * rows.cols + col, bytes);
  const int scaleCols = (rows.cols + rows.blockCols - 1) / rows.blockCols;
  const float scale = state::decodeUe8m0(rows.scales[row * scaleCols + col / rows.blockCols]);
#pragma unroll
  for (int i = 0; i < 8; ++i)
    v[i] = decodeE2M1ByBits(bytes[i]) * scale;
}

// ---- operand chunks (both variants): columns [c, c + 8) of one tile row ----
// Zeros past the tile's rows and past K (the wgmma variant's K steps of 64
// may overrun D = 32 (mod 64)).

// 8 bf16 elements as stored: the bits packBf16x8 of their floats gives.
__device__ __forceinline__ uint4 moeBf16Chunk(bool valid, const __nv_bfloat16 *p) {
  return valid ? *reinterpret_cast<const uint4 *>(p) : make_uint4(0u, 0u, 0u, 0u);
}

// Gate/up A: row m of the tile's h rows (fp4: e4m3 fake-quantized).
template <bool FP4, typename HT>
__device__ __forceinline__ uint4 moeGateUpChunkA(const HT *h, int D, const MoeTile &tile, int m, int c) {
  const HT *row = h + static_cast<long long>(tile.rowToken[m]) * D + c;
  if constexpr (!FP4 && std::is_same_v<HT, __nv_bfloat16>) // no conversions
    return moeBf16Chunk(m < tile.count && c < D, row);
  else
    return moeLoadChunk(m < tile.count && c < D, [&](float(&v)[8]) {
      state::loadVec<8>(row, v);
      if constexpr (FP4) {
        const int groups = (D + kMoeActivationGroup - 1) / kMoeActivationGroup;
        const int exponent = tile.rowScale[m * groups + c / kMoeActivationGroup];
#pragma unroll
        for (int i = 0; i < 8; ++i)
          v[i] = state::fakeQuantize(v[i], exponent);
      }
    });
}
// Gate/up B: row n of the slice's [gate rows; up rows] (n < kMoeMmaSlice: gate).
template <typename Rows>
__device__ __forceinline__ uint4 moeGateUpChunkB(const Rows &gateUp, const MoeTile &tile, const MoeShape &shape, int i0,
                                                 int n, int c) {
  const long long gateRow = static_cast<long long>(tile.expert) * 2 * shape.I + i0;
  const long long row = n < kMoeMmaSlice ? gateRow + n : gateRow + shape.I + (n - kMoeMmaSlice);
  if constexpr (std::is_same_v<Rows, state::DenseExpertRows<__nv_bfloat16>>)
    return moeBf16Chunk(c < shape.D, gateUp.w + row * gateUp.cols + c);
  else
    return moeLoadChunk(c < shape.D, [&](float(&v)[8]) { moeExpertChunk(gateUp, row, c, v); });
}
// Down A: the SwiGLU output row m as its bf16 terms (fp4: one, e4m3 values);
// `act` 16-byte aligned (the emitter's scratch is __align__(16)).
template <bool FP4>
__device__ __forceinline__ void moeDownChunksA(const float *act, int I, const MoeTile &tile, int m, int c,
                                               uint4 (&terms)[kMoeDownTerms<FP4>]) {
  // Two 16-byte loads (the scratch is 16-byte aligned, I % 128 == 0).
  float4 low = make_float4(0.0f, 0.0f, 0.0f, 0.0f), high = low;
  if (m < tile.count && c < I) {
    const float4 *row = reinterpret_cast<const float4 *>(act + static_cast<long long>(tile.begin + m) * I + c);
    low = __ldcg(row);
    high = __ldcg(row + 1);
  }
  const float a[8] = {low.x, low.y, low.z, low.w, high.x, high.y, high.z, high.w};
  if constexpr (FP4) {
    terms[0] = packBf16x8(a);
  } else {
    float hi[8], mid[8], lo[8];
    splitBf16x3(a, hi, mid, lo);
    terms[0] = packBf16x8(hi);
    terms[1] = packBf16x8(mid);
    terms[2] = packBf16x8(lo);
  }
}
// Down B: the expert's down row of output column d.
template <typename Rows>
__device__ __forceinline__ uint4 moeDownChunkB(const Rows &down, const MoeTile &tile, const MoeShape &shape, int d,
                                               int c) {
  const long long row = static_cast<long long>(tile.expert) * shape.D + d;
  if constexpr (std::is_same_v<Rows, state::DenseExpertRows<__nv_bfloat16>>)
    return moeBf16Chunk(d < shape.D && c < shape.I, down.w + row * down.cols + c);
  else
    return moeLoadChunk(d < shape.D && c < shape.I, [&](float(&v)[8]) { moeExpertChunk(down, row, c, v); });
}

// ---- the wmma main loops ----------------------------------------------------------

// Stores the B chunks of one K step: chunk c is row c / (BK / 8), columns
// (c % (BK / 8)) * 8 of the [n][LD] tile.
template <int kChunksB>
__device__ __forceinline__ void storeChunksB(__nv_bfloat16 *Bs, const uint4 (&stagedB)[kChunksB]) {
#pragma unroll
  for (int i = 0; i < kChunksB; ++i) {
    const int chunk = threadIdx.x + i * kMoeMmaThreads;
    storeChunk(Bs + (chunk / (kMoeMmaBK / 8)) * kMoeMmaLD + (chunk % (kMoeMmaBK / 8)) * 8, stagedB[i]);
  }
}

// The K loop over [0, K) in steps of kMoeMmaBK: step k0 + BK is loaded into
// registers (load) while step k0's tiles in shared memory are multiplied
// (multiply), then stored (store) once every warp is done with them.
template <typename Load, typename Store, typename Multiply>
__device__ __forceinline__ void moeDoubleBufferedK(int K, Load &&load, Store &&store, Multiply &&multiply) {
  load(0);
  store();
  __syncthreads();
  for (int k0 = 0; k0 < K; k0 += kMoeMmaBK) {
    const bool more = k0 + kMoeMmaBK < K;
    if (more)
      load(k0 + kMoeMmaBK);
    multiply();
    __syncthreads(); // every warp is done with this step's tiles
    if (more) {
      store();
      __syncthreads();
    }
  }
}

// A warp's R x C accumulator tiles: zeroed, and stored into the staging tile
// at rows warpRow * 16R, columns col0 (row-major, kMoeMmaStageLD).
template <typename Frag, int R, int C> __device__ __forceinline__ void zeroFragments(Frag (&acc)[R][C]) {
#pragma unroll
  for (int i = 0; i < R; ++i)
#pragma unroll
    for (int j = 0; j < C; ++j)
      nvcuda::wmma::fill_fragment(acc[i][j], 0.0f);
}
template <typename Frag, int R, int C>
__device__ __forceinline__ void storeFragments(Frag (&acc)[R][C], float *stage, int warpRow, int col0) {
#pragma unroll
  for (int i = 0; i < R; ++i)
#pragma unroll
    for (int j = 0; j < C; ++j)
      nvcuda::wmma::store_matrix_sync(stage + (warpRow * 16 * R + i * 16) * kMoeMmaStageLD + col0 + j * 16, acc[i][j],
                                      kMoeMmaStageLD, nvcuda::wmma::mem_row_major);
}

// The GEMMs of a work item on wmma fragments (8 warps, 2 x 4 over the
// output tile); each leaves its f32 products in stage(shared), row-major
// with kMoeMmaStageLD, visible to the whole block on return.
struct MoeWmmaTiles {
  static constexpr int kTileBytes = kMoeWmmaTileBytes;
  static constexpr int kBOffset = 3 * kMoeMmaRows * kMoeMmaLD * 2;
  static __device__ __forceinline__ float *stage(unsigned char *shared) {
    return reinterpret_cast<float *>(shared + (3 * kMoeMmaRows + 2 * kMoeMmaSlice) * kMoeMmaLD * 2);
  }

  // [ROWS, 2 * slice] = h rows x [gate; up rows of slice i0]^T over K = D.
  template <bool FP4, typename HT, typename Rows>
  static __device__ __forceinline__ void gateUp(const HT *h, const Rows &gateUp, const MoeShape &shape, int i0,
                                                const MoeTile &tile, unsigned char *shared) {
    using namespace nvcuda;
    constexpr int LD = kMoeMmaLD, BK = kMoeMmaBK;
    __nv_bfloat16 *As = reinterpret_cast<__nv_bfloat16 *>(shared), *Bs = As + kBOffset / 2;
    const int warp = threadIdx.x >> 5, warpRow = warp / 4, warpCol = warp % 4;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][4];
    zeroFragments(acc);
    // Per thread: 1 chunk of A (ROWS x BK / 8 = 256), 4 of B (2 * slice x BK / 8).
    constexpr int kChunksB = 2 * kMoeMmaSlice * (BK / 8) / kMoeMmaThreads;
    uint4 stagedA, stagedB[kChunksB];
    auto loadStep = [&](int k0) {
      stagedA = moeGateUpChunkA<FP4>(h, shape.D, tile, threadIdx.x / (BK / 8), k0 + (threadIdx.x % (BK / 8)) * 8);
#pragma unroll
      for (int i = 0; i < kChunksB; ++i) {
        const int chunk = threadIdx.x + i * kMoeMmaThreads;
        stagedB[i] = moeGateUpChunkB(gateUp, tile, shape, i0, chunk / (BK / 8), k0 + (chunk % (BK / 8)) * 8);
      }
    };
    auto storeStep = [&]() {
      storeChunk(As + (threadIdx.x / (BK / 8)) * LD + (threadIdx.x % (BK / 8)) * 8, stagedA);
      storeChunksB(Bs, stagedB);
    };
    moeDoubleBufferedK(shape.D, loadStep, storeStep, [&]() {
#pragma unroll
      for (int kk = 0; kk < BK; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> af[2];
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> bf[4];
#pragma unroll
        for (int i = 0; i < 2; ++i)
          wmma::load_matrix_sync(af[i], As + (warpRow * 32 + i * 16) * LD + kk, LD);
#pragma unroll
        for (int j = 0; j < 4; ++j)
          wmma::load_matrix_sync(bf[j], Bs + (warpCol * 64 + j * 16) * LD + kk, LD);
#pragma unroll
        for (int i = 0; i < 2; ++i)
#pragma unroll
          for (int j = 0; j < 4; ++j)
            wmma::mma_sync(acc[i][j], af[i], bf[j], acc[i][j]);
      }
    });
    storeFragments(acc, stage(shared), warpRow, warpCol * 64);
    __syncthreads();
  }

  // [ROWS, kMoeMmaCols] = act rows x down rows [d0, d0 + cols)^T over K = I.
  template <bool FP4, typename Rows>
  static __device__ __forceinline__ void down(const float *act, const Rows &down, const MoeShape &shape, int d0,
                                              const MoeTile &tile, unsigned char *shared) {
    using namespace nvcuda;
    constexpr int LD = kMoeMmaLD, BK = kMoeMmaBK, ROWS = kMoeMmaRows, kTerms = kMoeDownTerms<FP4>;
    __nv_bfloat16 *As = reinterpret_cast<__nv_bfloat16 *>(shared), *Bs = As + kBOffset / 2;
    const int warp = threadIdx.x >> 5, warpRow = warp / 4, warpCol = warp % 4;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
    zeroFragments(acc);
    // Per thread: 1 chunk of each A term (ROWS x BK / 8 = 256), 2 of B (cols x BK / 8).
    constexpr int kChunksB = kMoeMmaCols * (BK / 8) / kMoeMmaThreads;
    uint4 stagedA[kTerms], stagedB[kChunksB];
    const int m = threadIdx.x / (BK / 8), kc = (threadIdx.x % (BK / 8)) * 8;
    auto loadStep = [&](int k0) {
      moeDownChunksA<FP4>(act, shape.I, tile, m, k0 + kc, stagedA);
#pragma unroll
      for (int i = 0; i < kChunksB; ++i) {
        const int chunk = threadIdx.x + i * kMoeMmaThreads;
        stagedB[i] = moeDownChunkB(down, tile, shape, d0 + chunk / (BK / 8), k0 + (chunk % (BK / 8)) * 8);
      }
    };
    auto storeStep = [&]() {
#pragma unroll
      for (int term = 0; term < kTerms; ++term)
        storeChunk(As + (term * ROWS + m) * LD + kc, stagedA[term]);
      storeChunksB(Bs, stagedB);
    };
    moeDoubleBufferedK(shape.I, loadStep, storeStep, [&]() {
#pragma unroll
      for (int kk = 0; kk < BK; kk += 16) {
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> bf[2];
#pragma unroll
        for (int j = 0; j < 2; ++j)
          wmma::load_matrix_sync(bf[j], Bs + (warpCol * 32 + j * 16) * LD + kk, LD);
#pragma unroll
        for (int term = 0; term < kTerms; ++term)
#pragma unroll
          for (int i = 0; i < 2; ++i) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> af;
            wmma::load_matrix_sync(af, As + (term * ROWS + warpRow * 32 + i * 16) * LD + kk, LD);
#pragma unroll
            for (int j = 0; j < 2; ++j)
              wmma::mma_sync(acc[i][j], af, bf[j], acc[i][j]);
          }
      }
    });
    storeFragments(acc, stage(shared), warpRow, warpCol * 32);
    __syncthreads();
  }
};

// ---- the work items (both variants) -------------------------------------------------

// Gate/up epilogue: SwiGLU of the staged [gate | up] products, one warp per
// row (the fp4 e4m3 group is the row's slice), into the act scratch.
template <bool FP4>
__device__ __forceinline__ void moeSwigluRows(const float *stage, const MoeShape &shape, int i0, const MoeTile &tile,
                                              float *act) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  for (int m = warp; m < tile.count; m += blockDim.x >> 5) {
    float a[kMoeMmaSlice / 32];
    float amax = 0.0f;
#pragma unroll
    for (int q = 0; q < kMoeMmaSlice / 32; ++q) {
      const int c = lane + 32 * q;
      a[q] = swigluRef(stage[m * kMoeMmaStageLD + c], stage[m * kMoeMmaStageLD + kMoeMmaSlice + c], shape.limit);
      amax = fmaxf(amax, fabsf(a[q]));
    }
    if constexpr (FP4) {
      const int exponent = state::ue8m0Exponent(warpMax(amax), 448.0f);
#pragma unroll
      for (int q = 0; q < kMoeMmaSlice / 32; ++q)
        a[q] = state::fakeQuantize(a[q], exponent);
    }
    float *actRow = act + static_cast<long long>(tile.begin + m) * shape.I + i0;
#pragma unroll
    for (int q = 0; q < kMoeMmaSlice / 32; ++q)
      actRow[lane + 32 * q] = a[q];
  }
}

// Down epilogue: the staged rows times their route weights added into the
// f32 accumulator; the block that makes a token's last addition rounds its
// row into `out` and clears it.
template <typename WT, typename OutT>
__device__ __forceinline__ void moeAccumulateRows(const float *stage, const WT *weights, const MoeShape &shape, int d0,
                                                  const MoeTile &tile, const int *rowPair, int *rowFinished, OutT *out,
                                                  const MoeMmaScratch &s) {
  const int D = shape.D, k = shape.topK, colBlocks = (D + kMoeMmaCols - 1) / kMoeMmaCols;
  for (int idx = threadIdx.x; idx < tile.count * kMoeMmaCols; idx += blockDim.x) {
    const int m = idx / kMoeMmaCols, c = idx % kMoeMmaCols;
    if (d0 + c < D)
      atomicAdd(s.accumulator + static_cast<long long>(tile.rowToken[m]) * D + d0 + c,
                stage[m * kMoeMmaStageLD + c] * toFloat(weights[rowPair[m]]));
  }
  // Which tokens received their last addition here?
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0)
    for (int m = 0; m < tile.count; ++m) {
      const int t = tile.rowToken[m];
      rowFinished[m] = atomicAdd(s.tokenDone + t, 1u) == static_cast<unsigned int>(k * colBlocks) - 1;
      if (rowFinished[m])
        atomicExch(s.tokenDone + t, 0u);
    }
  __syncthreads();
  for (int m = 0; m < tile.count; ++m)
    if (rowFinished[m]) { // uniform
      __threadfence();
      const long long t = tile.rowToken[m];
      for (int d = threadIdx.x; d < D; d += blockDim.x) {
        out[t * D + d] = fromFloat<OutT>(state::loadCoherent(s.accumulator + t * D + d));
        s.accumulator[t * D + d] = 0.0f;
      }
    }
}

// The launch's work items in ticket order (the header comment), with the
// GEMMs of Tiles. Dynamic shared memory: Tiles::kTileBytes, then
// moeRowTableBytes(D).
template <bool FP4, class Tiles, typename HT, typename WeightT, typename GateUpRows, typename DownRows, typename OutT>
__device__ __forceinline__ void moeGroupedRun(const HT *h, const WeightT *weights, const int32_t *experts,
                                              const GateUpRows &gateUp, const DownRows &down, OutT *out, MoeShape shape,
                                              int maxTiles, MoeMmaScratch s, const int32_t *dyn) {
  extern __shared__ float moeShared[];
  const int T = presentTokens(dyn);
  const int D = shape.D, I = shape.I, k = shape.topK;
  const int slices = I / kMoeMmaSlice, colBlocks = (D + kMoeMmaCols - 1) / kMoeMmaCols;
  constexpr int ROWS = kMoeMmaRows;
  unsigned char *shared = reinterpret_cast<unsigned char *>(moeShared);
  float *stage = Tiles::stage(shared);
  signed char *rowScale = reinterpret_cast<signed char *>(shared + Tiles::kTileBytes);
  int *rowPair = reinterpret_cast<int *>(rowScale + ROWS * ((D + kMoeActivationGroup - 1) / kMoeActivationGroup));
  int *rowToken = rowPair + ROWS, *rowFinished = rowToken + ROWS;
  __shared__ unsigned int ticketShared;

  if (threadIdx.x == 0)
    ticketShared = atomicAdd(s.control, 1u);
  __syncthreads();
  const int ticket = static_cast<int>(ticketShared);
  const int phase1 = maxTiles * slices;

  if (ticket == 0) {
    state::moeMmaRoute(experts, T * k, shape.experts, maxTiles, s, reinterpret_cast<int *>(stage));
  } else {
    state::waitForCount(s.control + 1, 1u);
    const int tiles = static_cast<int>(state::loadCoherent(reinterpret_cast<const int *>(s.control + 1))) - 1;
    const bool gateUpItem = ticket - 1 < phase1;
    const int item = gateUpItem ? ticket - 1 : ticket - 1 - phase1;
    const int tileIndex = gateUpItem ? item / slices : item / colBlocks;
    if (tileIndex < tiles) {
      const MoeTile tile{state::loadCoherent(s.tileExpert + tileIndex), state::loadCoherent(s.tileBegin + tileIndex),
                         state::loadCoherent(s.tileCount + tileIndex), rowToken, rowScale};
      for (int m = threadIdx.x; m < ROWS; m += blockDim.x) {
        const int pair = m < tile.count ? state::loadCoherent(s.order + tile.begin + m) : 0;
        rowPair[m] = pair;
        rowToken[m] = pair / k;
      }
      __syncthreads();
      if (gateUpItem) {
        const int i0 = (item % slices) * kMoeMmaSlice;
        if constexpr (FP4)
          state::moeRowScales(h, D, rowToken, tile.count, rowScale);
        Tiles::template gateUp<FP4>(h, gateUp, shape, i0, tile, shared);
        moeSwigluRows<FP4>(stage, shape, i0, tile, s.act);
        __threadfence();
        __syncthreads();
        if (threadIdx.x == 0)
          atomicAdd(s.tileDone + tileIndex, 1u);
      } else {
        const int d0 = (item % colBlocks) * kMoeMmaCols;
        state::waitForCount(s.tileDone + tileIndex, static_cast<unsigned int>(slices));
        Tiles::template down<FP4>(s.act, down, shape, d0, tile, shared);
        moeAccumulateRows(stage, weights, shape, d0, tile, rowPair, rowFinished, out, s);
      }
    }
  }
  // The last block of the launch resets the counters for the next one.
  if (!state::arriveLast(s.control + 2, gridDim.x))
    return;
  for (int tile = threadIdx.x; tile < maxTiles; tile += blockDim.x)
    s.tileDone[tile] = 0u;
  if (threadIdx.x == 0) {
    s.control[0] = 0u;
    s.control[1] = 0u;
  }
}

// The wmma variant (sm_80+); blockDim.x == kMoeMmaThreads, dynamic shared
// memory moeMmaSharedBytes(D).
template <bool FP4, typename HT, typename WeightT, typename GateUpRows, typename DownRows, typename OutT>
__device__ void moeGroupedMma(const HT *h, const WeightT *weights, const int32_t *experts, const GateUpRows &gateUp,
                              const DownRows &down, OutT *out, MoeShape shape, int maxTiles, MoeMmaScratch s,
                              const int32_t *dyn) {
  moeGroupedRun<FP4, MoeWmmaTiles>(h, weights, experts, gateUp, down, out, shape, maxTiles, s, dyn);
}

} // namespace v4cuda
