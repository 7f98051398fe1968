// The Hopper tensor-core GEMM tile of the dense matmuls (sm_90a): bf16
// operands in 128-byte-swizzled shared memory, wgmma.mma_async m64nNk16 into
// fp32 accumulators (Wgmma.cuh). Same policies, contract and exactness rule
// as gemmTileMma (DenseMma.cuh): A::kMmaOk && B::kMmaOk, so it differs from
// the FFMA tile only in the order of the fp32 additions.
//
// Block = 256 threads = 2 warpgroups; BM, BN in {64, 128}; BK = 64 (one
// 128-byte swizzle row of bf16 per operand row). BM = 128: warpgroup g owns
// rows 64g.. and every column (m64n{BN}); BM = 64: all rows, columns
// g * BN / 2.. (m64n{BN / 2}). Two shared stages: while the mmas of step s
// run on one, the threads load step s + 1 from global memory through the
// policies into registers and, once step s - 1's mmas have retired (wait_group
// 1 + barrier), store it swizzled into the other; the tensor pipe keeps one
// step's group in flight across the barriers.
//
// Expected performance (untested on a GPU): register-staged operands cost
// ~8 16-byte chunks per thread per 64-wide step (load, convert, swizzled
// store) against 1024 tensor clocks of mmas per 128 x 128 step; two barriers
// per step. Reaching 60% of peak likely needs TMA / cp.async.bulk loads into
// 3-4 stages and a producer warpgroup (the next step once this is proven).
#pragma once

#include <v4cuda/DenseMath.cuh>
#include <v4cuda/DenseMma.cuh>
#include <v4cuda/Wgmma.cuh>

namespace v4cuda {

constexpr int kWgmmaGemmThreads = 256;
constexpr int kWgmmaGemmStages = 2;

// Dynamic shared bytes of the tile before the A policy's per-row table: the
// stages of both bf16 operands, plus the slack that rounding the tile base
// up to 1024 bytes takes. The epilogue's fp32 staging reuses the stages.
template <int BM, int BN> __host__ __device__ constexpr int gemmWgmmaTileBytes() {
  return kWgmmaGemmStages * (BM + BN) * kWgmmaRowBytes + kWgmmaTileAlign;
}

// Chunk `chunk` of tile row `row` in a 1024-aligned 128-byte-swizzled tile.
struct SwizzledRows {
  __device__ __forceinline__ int operator()(int row, int chunk) const { return wgmmaSwizzledOffset(row, chunk); }
};

// blockDim.x == kWgmmaGemmThreads (the emitters' kMatmulThreads).
template <int BM, int BN, int K, int NV, class A, class B, class E>
__device__ __forceinline__ void gemmTileWgmma(A a, const B &b, const E &e, int rowTile, int colTile, int present,
                                              unsigned char *shared) {
  static_assert(A::kMmaOk && B::kMmaOk, "operands not exact in bf16: use the FFMA tile");
  static_assert((BM == 64 || BM == 128) && (BN == 64 || BN == 128), "wgmma tiles: BM, BN in {64, 128}");
  static_assert(kWgmmaGemmThreads == 2 * kWgmmaThreads, "two warpgroups");
  constexpr int kSteps = (K + kWgmmaTileK - 1) / kWgmmaTileK;
  constexpr int kStageA = BM * kWgmmaRowBytes, kStageB = BN * kWgmmaRowBytes;
  constexpr int WN = BM == 128 ? BN : BN / 2; // the N of each warpgroup's mma
  const int row0 = rowTile * BM, col0 = colTile * BN;
  if (row0 >= present)
    return; // uniform over the block
  a.prologue(row0, BM, shared + gemmWgmmaTileBytes<BM, BN>(), present);
  unsigned char *As = wgmmaAlignTile(shared); // [stage][BM][128 B]
  unsigned char *Bs = As + kWgmmaGemmStages * kStageA; // [stage][BN][128 B], row n = weight row
  const int warpgroup = threadIdx.x / kWgmmaThreads;
  const int aRow = BM == 128 ? 64 * warpgroup : 0, bRow = BM == 128 ? 0 : WN * warpgroup;

  float acc[WN / 2];
#pragma unroll
  for (int i = 0; i < WN / 2; ++i)
    acc[i] = 0.0f;
  OperandStage<BM, BN, K, NV, kWgmmaTileK, kWgmmaGemmThreads> stage;
  stage.load(a, b, row0, col0, present, 0);
  stage.store(As, Bs, SwizzledRows{});
  fenceProxyAsync(); // the generic-proxy stores, visible to the mmas after the barrier
  __syncthreads();
  for (int s = 0; s < kSteps; ++s) {
    const unsigned char *as = As + (s & 1) * kStageA + aRow * kWgmmaRowBytes;
    const unsigned char *bs = Bs + (s & 1) * kStageB + bRow * kWgmmaRowBytes;
    wgmmaFence();
#pragma unroll
    for (int kk = 0; kk < kWgmmaTileK / 16; ++kk) // k16 slices: 32 bytes along the swizzled rows
      wgmmaM64<WN>(acc, wgmmaDescriptor(as + 32 * kk), wgmmaDescriptor(bs + 32 * kk), s > 0 || kk > 0);
    wgmmaCommitGroup();
    if (s + 1 < kSteps) {
      stage.load(a, b, row0, col0, present, (s + 1) * kWgmmaTileK); // in flight during the mmas
      wgmmaWaitGroup<1>(acc); // this warpgroup's step s - 1 has retired (step s still runs)...
      __syncthreads();        // ...and the other's: stage (s + 1) & 1 is free
      stage.store(As + ((s + 1) & 1) * kStageA, Bs + ((s + 1) & 1) * kStageB, SwizzledRows{});
      fenceProxyAsync();
      __syncthreads(); // stage (s + 1) & 1 is written
    }
  }
  wgmmaWaitGroup<0>(acc);
  __syncthreads(); // no mma reads the stages any more: the staging below reuses them

  // Epilogue: the accumulators through fp32 staging [BM][BN] over the free
  // stages; 8-column blocks XORed with (row % 4) * 8 so that a warp's float2
  // writes (8 rows x 4 column pairs) spread over the banks.
  float *staging = reinterpret_cast<float *>(As);
  const int t = threadIdx.x % kWgmmaThreads;
#pragma unroll
  for (int i = 0; i < WN / 2; i += 2) {
    const WgmmaPosition p = wgmmaAccumulatorPosition(t, i);
    const int r = aRow + p.row, c = bRow + p.col;
    *reinterpret_cast<float2 *>(staging + r * BN + (c ^ ((r & 3) << 3))) = make_float2(acc[i], acc[i + 1]);
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < BM * BN / 8; idx += kWgmmaGemmThreads) {
    const int r = idx / (BN / 8), c = (idx % (BN / 8)) * 8;
    if (row0 + r < present) {
      const float *src = staging + r * BN + (c ^ ((r & 3) << 3));
      float vals[8];
#pragma unroll
      for (int q = 0; q < 8; ++q)
        vals[q] = src[q];
      e.store(row0 + r, col0 + c, vals);
    }
  }
}

} // namespace v4cuda
