// The Hopper tensor-core GEMM tile of the dense matmuls (sm_90a): bf16
// operands in 128-byte-swizzled shared memory, wgmma.mma_async m64nNk16 into
// fp32 accumulators (Wgmma.cuh). Same policies, contract and exactness rule
// as gemmTileMma (DenseMma.cuh): A::kMmaOk && B::kMmaOk, so it differs from
// the FFMA tile only in the order of the fp32 additions.
//
// Block = 256 threads = 2 warpgroups; BM, BN in {64, 128}; BK = 64 (one
// 128-byte swizzle row of bf16 per operand row). BM = 128: warpgroup g owns
// rows 64g.. and every column (m64n{BN}); BM = 64: all rows, columns
// g * BN / 2.. (m64n{BN / 2}).
//
// Operand pipeline: kWgmmaGemmStages (4) shared stages per operand, a ring.
// An operand whose policy is a plain bf16 row copy (kCpAsyncOk: activations
// and weights as stored, 16-byte aligned rows) is copied global -> shared
// by cp.async (CpAsync.cuh) straight into the swizzled stage, zero-filled
// past `present` / NV rows and past K (the src-size operand). The others
// (norm_linear's rms-scaled A, fp8 dequantization, fp32 -> bf16) go through
// registers (RegisterRows): loaded while the mmas run, stored one step later.
// Step s, with D = kStages - 2 steps in flight ahead of it:
//   cp.async.wait_group D - 1   this thread's copies of step s have landed
//   fence.proxy.async           its copies / stores, visible to the mmas...
//   __syncthreads               ...of every thread; and both warpgroups have
//                               retired step s - 2 (wait_group 1 below)
//   wgmma x 4 on stage s % kStages, commit
//   fill step s + D into stage (s + D) % kStages (== (s - 2) % kStages, free):
//     cp.async copies (one commit group per step, empty past the last), or
//     the registers loaded during the previous step
//   load step s + D + 1 into registers (register operands)
//   wgmma.wait_group 1          step s - 1 has retired (step s still runs)
// One barrier per 64-wide K step; the tensor pipe keeps one step in flight
// across it, the copies of D steps are in flight behind it.
//
// Expected performance (unmeasured; docs/cuda-compile.md "Tensor cores"):
// per 128 x 128 step the tensor pipe runs 2 x 4 m64n128k16 (~1024 tensor
// clocks of the SM's 4 sub-cores); each thread issues 8 16-byte cp.async and
// one barrier, so the loads no longer pass through the registers, and D = 2
// steps (~2 x 280 ns at peak) cover an L2 hit; a DRAM miss (~600+ ns) can
// still stall a step. 60% of peak likely also needs TMA and a producer
// warpgroup (setmaxnreg), the next step once this is proven on the GPU.
#pragma once

#include <type_traits>

#include <v4cuda/CpAsync.cuh>
#include <v4cuda/DenseMath.cuh>
#include <v4cuda/DenseMma.cuh>
#include <v4cuda/Wgmma.cuh>

namespace v4cuda {

constexpr int kWgmmaGemmThreads = 256;
// 4 x (128 + 128) x 128 B = 128 KB at 128 x 128, which leaves ~98 KB of the
// H100's 227 KB for the A table; 5-6 would also fit (a tuning knob for the
// first GPU run: every step is written for any kStages >= 3).
constexpr int kWgmmaGemmStages = 4;

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

// An operand policy the tile may copy straight from memory: P::kCpAsyncOk
// (stored bf16 values read as they are, rows 16-byte aligned), with
// P::sourceRow(row) its row's first element. Transforming policies lack it.
// -DV4CUDA_WGMMA_NO_CP_ASYNC (e.g. through a $V4C_NVCC wrapper) sends every
// operand through registers, to tell a cp.async fault from a wgmma one on a GPU.
template <class P, class = void> struct CpAsyncRowsOk : std::false_type {};
#if !defined(V4CUDA_WGMMA_NO_CP_ASYNC)
template <class P>
struct CpAsyncRowsOk<P, std::void_t<decltype(P::kCpAsyncOk)>> : std::integral_constant<bool, P::kCpAsyncOk> {};
#endif

// How the tile fills one operand's stage with ROWS rows of step k0 (rows
// past `limit` and k past K are zeros). ASYNC: fill() issues cp.async copies
// and prefetch() does nothing; else prefetch() loads the step into
// registers (in flight during the mmas) and fill() stores them swizzled.
template <int ROWS, int K, bool ASYNC> struct WgmmaOperandFill;

template <int ROWS, int K> struct WgmmaOperandFill<ROWS, K, true> {
  static constexpr int kRowChunks = kWgmmaRowBytes / kCpAsyncBytes;
  static constexpr int kChunks = ROWS * kRowChunks / kWgmmaGemmThreads;
  static_assert(kChunks * kWgmmaGemmThreads == ROWS * kRowChunks, "whole chunks per thread");
  template <class P> __device__ __forceinline__ void prefetch(const P &, int, int, int) {}
  template <class P> __device__ __forceinline__ void fill(const P &p, unsigned char *tile, int row0, int limit, int k0) {
    static_assert(std::is_same<decltype(p.sourceRow(0)), const __nv_bfloat16 *>::value, "cp.async rows are bf16");
#pragma unroll
    for (int i = 0; i < kChunks; ++i) {
      const int chunk = threadIdx.x + i * kWgmmaGemmThreads, r = chunk / kRowChunks, c = chunk % kRowChunks;
      const int k = k0 + 8 * c;
      const bool rowValid = row0 + r < limit;
      const int bytes = rowValid ? max(0, min(kCpAsyncBytes, (K - k) * 2)) : 0;
      // row0 < limit always (the block has work): a valid address to read nothing from.
      const __nv_bfloat16 *src = p.sourceRow(rowValid ? row0 + r : row0) + (bytes > 0 ? k : 0);
      cpAsync16(tile + wgmmaSwizzledOffset(r, c), src, bytes);
    }
  }
};

template <int ROWS, int K> struct WgmmaOperandFill<ROWS, K, false> {
  RegisterRows<ROWS, K, kWgmmaTileK, kWgmmaGemmThreads> staged;
  template <class P> __device__ __forceinline__ void prefetch(const P &p, int row0, int limit, int k0) {
    staged.load(p, row0, limit, k0);
  }
  template <class P> __device__ __forceinline__ void fill(const P &, unsigned char *tile, int, int, int) {
    staged.store(tile, SwizzledRows{});
  }
};

// The epilogue of the wgmma tiles (this one and gemmTileWgmmaFp8,
// DenseWgmmaFp8.cuh): each warpgroup's 64 x WN accumulators (rows aRow..,
// columns bRow.. of the BM x BN tile) through fp32 staging [BM][BN] at
// `staging` (BM * BN * 4 free bytes of shared memory: the retired stages),
// stored 8 columns at a time; 8-column blocks XORed with (row % 4) * 8 so
// that a warp's float2 writes (8 rows x 4 column pairs) spread over the
// banks. Starts with a barrier-free write (the caller's barrier made the
// staging free), ends the block's use of it.
template <int BM, int BN, int WN, class E>
__device__ __forceinline__ void storeWgmmaTile(const float (&acc)[WN / 2], float *staging, int aRow, int bRow,
                                               int row0, int col0, int present, const E &e) {
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

// A wgmma tile's K loop prologue (gemmTileWgmma, gemmTileWgmmaFp8): steps
// 0..AHEAD-1 prefetched and filled into their stages, one cp.async group per
// step, then step AHEAD's register operands prefetched.
template <int AHEAD, int STEPS, class Prefetch, class Fill>
__device__ __forceinline__ void wgmmaFillAhead(const Prefetch &prefetch, const Fill &fill) {
#pragma unroll
  for (int step = 0; step < AHEAD; ++step) {
    if (step < STEPS) {
      prefetch(step);
      fill(step);
    }
    cpAsyncCommitGroup(); // one group per step, empty or not: wait_group counts steps
  }
  if (AHEAD < STEPS)
    prefetch(AHEAD);
}

// blockDim.x == kWgmmaGemmThreads (the emitters' kMatmulThreads).
template <int BM, int BN, int K, int NV, class A, class B, class E>
__device__ __forceinline__ void gemmTileWgmma(A a, const B &b, const E &e, int rowTile, int colTile, int present,
                                              unsigned char *shared) {
  static_assert(A::kMmaOk && B::kMmaOk, "operands not exact in bf16: use the FFMA tile");
  static_assert((BM == 64 || BM == 128) && (BN == 64 || BN == 128), "wgmma tiles: BM, BN in {64, 128}");
  static_assert(kWgmmaGemmThreads == 2 * kWgmmaThreads, "two warpgroups");
  constexpr int kStages = kWgmmaGemmStages, kAhead = kStages - 2; // steps filled ahead of the one in the mmas
  static_assert(kStages >= 3 && kAhead - 1 <= 7, "a stage in the mmas, one retiring, >= 1 filling");
  static_assert(BM * BN * 4 <= kStages * (BM + BN) * kWgmmaRowBytes, "the epilogue's staging fits the stages");
  constexpr int kSteps = (K + kWgmmaTileK - 1) / kWgmmaTileK;
  constexpr int kStageA = BM * kWgmmaRowBytes, kStageB = BN * kWgmmaRowBytes;
  constexpr int WN = BM == 128 ? BN : BN / 2; // the N of each warpgroup's mma
  const int row0 = rowTile * BM, col0 = colTile * BN;
  if (row0 >= present)
    return; // uniform over the block
  a.prologue(row0, BM, shared + gemmWgmmaTileBytes<BM, BN>(), present);
  unsigned char *As = wgmmaAlignTile(shared);     // [stage][BM][128 B]
  unsigned char *Bs = As + kStages * kStageA;     // [stage][BN][128 B], row n = weight row
  const int warpgroup = threadIdx.x / kWgmmaThreads;
  const int aRow = BM == 128 ? 64 * warpgroup : 0, bRow = BM == 128 ? 0 : WN * warpgroup;

  WgmmaOperandFill<BM, K, CpAsyncRowsOk<A>::value> fillA;
  WgmmaOperandFill<BN, K, CpAsyncRowsOk<B>::value> fillB;
  const auto prefetch = [&](int step) {
    fillA.prefetch(a, row0, present, step * kWgmmaTileK);
    fillB.prefetch(b, col0, NV, step * kWgmmaTileK);
  };
  const auto fill = [&](int step) {
    fillA.fill(a, As + (step % kStages) * kStageA, row0, present, step * kWgmmaTileK);
    fillB.fill(b, Bs + (step % kStages) * kStageB, col0, NV, step * kWgmmaTileK);
  };
  wgmmaFillAhead<kAhead, kSteps>(prefetch, fill);

  float acc[WN / 2];
#pragma unroll
  for (int i = 0; i < WN / 2; ++i)
    acc[i] = 0.0f;
  for (int s = 0; s < kSteps; ++s) {
    cpAsyncWaitGroup<kAhead - 1>(); // this thread's copies of step s have landed
    fenceProxyAsync();              // its copies and stores of step s, visible to the mmas after the barrier
    __syncthreads();                // every thread's; and step s - 2 retired in both warpgroups
    const unsigned char *as = As + (s % kStages) * kStageA + aRow * kWgmmaRowBytes;
    const unsigned char *bs = Bs + (s % kStages) * kStageB + bRow * kWgmmaRowBytes;
    wgmmaFence();
#pragma unroll
    for (int kk = 0; kk < kWgmmaTileK / 16; ++kk) // k16 slices: 32 bytes along the swizzled rows
      wgmmaM64<WN>(acc, wgmmaDescriptor(as + 32 * kk), wgmmaDescriptor(bs + 32 * kk), s > 0 || kk > 0);
    wgmmaCommitGroup();
    if (s + kAhead < kSteps)
      fill(s + kAhead); // stage (s - 2) % kStages: free since the barrier
    cpAsyncCommitGroup();
    if (s + kAhead + 1 < kSteps)
      prefetch(s + kAhead + 1); // register operands: in flight during the mmas
    wgmmaWaitGroup<1>(acc); // this warpgroup's step s - 1 has retired (step s still runs)
  }
  wgmmaWaitGroup<0>(acc);
  cpAsyncWaitGroup<0>(); // only empty groups are left; nothing may be pending at exit
  __syncthreads();       // no mma reads the stages any more: the staging reuses them
  storeWgmmaTile<BM, BN, WN>(acc, reinterpret_cast<float *>(As), aRow, bRow, row0, col0, present, e);
}

} // namespace v4cuda
