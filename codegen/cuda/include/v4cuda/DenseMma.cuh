// The tensor-core GEMM tile of the dense matmuls (sm_80 and later): bf16
// operands, fp32 accumulators, through nvcuda::wmma 16x16x16 fragments.
//
// Used only where rounding the operands to bf16 loses nothing the unfused
// program would keep: bf16 activations with bf16 weights, and fp8 (e4m3 code
// times a power-of-two scale has 4 significant bits, exact in bf16). bf16 x
// bf16 products are exact in fp32, so this differs from the FFMA tile only in
// the order of the fp32 additions. f32 programs never take this path.
//
// Same policies as gemmTile (DenseLinear.cuh): A / B give float operands
// through run<8>(row, k, out) and at(row, k), E stores 8 virtual columns of a
// row at a time.
#pragma once

#include <mma.h>

#include <v4cuda/DenseMath.cuh>

namespace v4cuda {

constexpr int kMmaBK = 32;
constexpr int kMmaPad = 8; // bf16 elements: rows stay 16-byte aligned, fewer bank conflicts
constexpr int kMmaWarpsM = 2, kMmaWarpsN = 4;

// Shared bytes before the A table: both bf16 tiles (the epilogue's per-warp
// 16x16 fp32 staging reuses them).
template <int BM, int BN> __host__ __device__ constexpr int gemmMmaTileBytes() {
  return (BM + BN) * (kMmaBK + kMmaPad) * 2 > 8 * 256 * 4 ? (BM + BN) * (kMmaBK + kMmaPad) * 2 : 8 * 256 * 4;
}

// 8 floats rounded to bf16, packed in one 16-byte register value.
__device__ __forceinline__ uint4 packBf16x8(const float (&v)[8]) {
  __align__(16) __nv_bfloat16 packed[8];
#pragma unroll
  for (int i = 0; i < 8; ++i)
    packed[i] = __float2bfloat16_rn(v[i]);
  return *reinterpret_cast<const uint4 *>(packed);
}

// One 8-wide k chunk of operand row `row` (zeros past the rows / K), packed.
template <int K, class P> __device__ __forceinline__ uint4 loadChunk(const P &p, int row, bool rowValid, int k) {
  float v[8];
  if (rowValid && k + 8 <= K) {
    p.template run<8>(row, k, v);
  } else {
#pragma unroll
    for (int i = 0; i < 8; ++i)
      v[i] = rowValid && k + i < K ? p.at(row, k + i) : 0.0f;
  }
  return packBf16x8(v);
}

// The BK-deep chunks of ROWS rows of one operand, staged in registers:
// THREADS threads hold the 8-wide chunks (zeros past `limit` rows and past
// K), so the global loads of step k + 1 are in flight while the MMAs of step
// k run. Consecutive threads take consecutive chunks of a row (coalesced
// reads). store(tile, offset) puts chunk c of row r at byte offset(r, c):
// padded rows for wmma (below), the 128-byte swizzle for wgmma
// (DenseWgmma.cuh, for the operands it cannot copy with cp.async).
template <int ROWS, int K, int BK, int THREADS> struct RegisterRows {
  static constexpr int kRowChunks = BK / 8;
  static constexpr int kChunks = (ROWS * kRowChunks + THREADS - 1) / THREADS;
  uint4 chunks[kChunks];

  template <class P> __device__ __forceinline__ void load(const P &p, int row0, int limit, int k0) {
#pragma unroll
    for (int i = 0; i < kChunks; ++i) {
      const int chunk = threadIdx.x + i * THREADS, r = chunk / kRowChunks;
      if (chunk < ROWS * kRowChunks)
        chunks[i] = loadChunk<K>(p, row0 + r, row0 + r < limit, k0 + (chunk % kRowChunks) * 8);
    }
  }
  template <class Offset> __device__ __forceinline__ void store(unsigned char *tile, const Offset &offset) const {
#pragma unroll
    for (int i = 0; i < kChunks; ++i) {
      const int chunk = threadIdx.x + i * THREADS;
      if (chunk < ROWS * kRowChunks)
        *reinterpret_cast<uint4 *>(tile + offset(chunk / kRowChunks, chunk % kRowChunks)) = chunks[i];
    }
  }
};

// Both operands of one step in registers: A's BM rows (present of them
// real), B's BN virtual rows (NV real).
template <int BM, int BN, int K, int NV, int BK, int THREADS> struct OperandStage {
  RegisterRows<BM, K, BK, THREADS> a;
  RegisterRows<BN, K, BK, THREADS> b;

  template <class A, class B>
  __device__ __forceinline__ void load(const A &pa, const B &pb, int row0, int col0, int present, int k0) {
    a.load(pa, row0, present, k0);
    b.load(pb, col0, NV, k0);
  }
  template <class Offset>
  __device__ __forceinline__ void store(unsigned char *As, unsigned char *Bs, const Offset &offset) const {
    a.store(As, offset);
    b.store(Bs, offset);
  }
};

constexpr int kMmaThreads = 256;

// wmma's tile rows: LD bf16 elements apart (the pad spreads the banks).
struct PaddedRows {
  int LD;
  __device__ __forceinline__ int operator()(int row, int chunk) const { return (row * LD + chunk * 8) * 2; }
};

// blockDim.x == kMmaThreads (the emitters' kMatmulThreads).
template <int BM, int BN, int K, int NV, class A, class B, class E>
__device__ __forceinline__ void gemmTileMma(A a, const B &b, const E &e, int rowTile, int colTile, int present,
                                            unsigned char *shared) {
  using namespace nvcuda;
  static_assert(A::kMmaOk && B::kMmaOk, "operands not exact in bf16: use the FFMA tile");
  static_assert(BM % (16 * kMmaWarpsM) == 0 && BN % (16 * kMmaWarpsN) == 0, "warp tiles of whole fragments");
  static_assert(kMmaWarpsM * kMmaWarpsN * 32 == kMmaThreads, "one warp per warp tile");
  constexpr int BK = kMmaBK, LD = BK + kMmaPad;
  constexpr int WM = BM / kMmaWarpsM, WN = BN / kMmaWarpsN, FM = WM / 16, FN = WN / 16;
  const int row0 = rowTile * BM, col0 = colTile * BN;
  if (row0 >= present)
    return; // uniform over the block
  __nv_bfloat16 *As = reinterpret_cast<__nv_bfloat16 *>(shared); // [BM][LD]
  __nv_bfloat16 *Bs = As + BM * LD;                              // [BN][LD], row n = weight row
  a.prologue(row0, BM, shared + gemmMmaTileBytes<BM, BN>(), present);

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int warpRow = warp / kMmaWarpsN, warpCol = warp % kMmaWarpsN;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[FM][FN];
#pragma unroll
  for (int i = 0; i < FM; ++i)
#pragma unroll
    for (int j = 0; j < FN; ++j)
      wmma::fill_fragment(acc[i][j], 0.0f);

  OperandStage<BM, BN, K, NV, BK, kMmaThreads> stage;
  const PaddedRows padded{LD};
  stage.load(a, b, row0, col0, present, 0);
  stage.store(reinterpret_cast<unsigned char *>(As), reinterpret_cast<unsigned char *>(Bs), padded);
  __syncthreads();
  for (int k0 = 0; k0 < K; k0 += BK) {
    const bool more = k0 + BK < K;
    if (more) // step k0 + BK's global loads, in flight during this step's MMAs
      stage.load(a, b, row0, col0, present, k0 + BK);
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> af[FM];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> bf[FN];
#pragma unroll
      for (int i = 0; i < FM; ++i)
        wmma::load_matrix_sync(af[i], As + (warpRow * WM + i * 16) * LD + kk, LD);
#pragma unroll
      for (int j = 0; j < FN; ++j)
        wmma::load_matrix_sync(bf[j], Bs + (warpCol * WN + j * 16) * LD + kk, LD);
#pragma unroll
      for (int i = 0; i < FM; ++i)
#pragma unroll
        for (int j = 0; j < FN; ++j)
          wmma::mma_sync(acc[i][j], af[i], bf[j], acc[i][j]);
    }
    __syncthreads(); // every warp is done with this step's tiles
    if (more) {
      stage.store(reinterpret_cast<unsigned char *>(As), reinterpret_cast<unsigned char *>(Bs), padded);
      __syncthreads();
    }
  }

  // Epilogue: each fragment through the warp's 16x16 staging; lane = (row, half).
  float *staging = reinterpret_cast<float *>(shared) + warp * 256;
  const int r = lane >> 1, c = (lane & 1) * 8;
#pragma unroll
  for (int i = 0; i < FM; ++i)
#pragma unroll
    for (int j = 0; j < FN; ++j) {
      wmma::store_matrix_sync(staging, acc[i][j], 16, wmma::mem_row_major);
      __syncwarp();
      float vals[8];
#pragma unroll
      for (int q = 0; q < 8; ++q)
        vals[q] = staging[r * 16 + c + q];
      const int t = row0 + warpRow * WM + i * 16 + r;
      if (t < present)
        e.store(t, col0 + warpCol * WN + j * 16 + c, vals);
      __syncwarp();
    }
}

} // namespace v4cuda
