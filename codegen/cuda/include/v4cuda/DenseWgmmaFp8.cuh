// The Hopper tensor-core GEMM tile of v4.linear_fp8 on native e4m3 operands
// (sm_90a): wgmma.mma_async m64nNk32.f32.e4m3.e4m3 (Wgmma.cuh) on the codes,
// so the GEMM can reach the FP8 peak (twice bf16's), where gemmTileWgmma
// (DenseWgmma.cuh) dequantizes them to bf16 tiles.
//
// Numerics (ref::linearFp8, docs/quantization.md): with power-of-two scales,
//   out[t, n] = sum over 128-wide K groups g of
//               (sum_k qa[t, k] * qw[n, k]) * sa[t, g] * sw[n / BR, g]
// where qa, qw are e4m3 values (their products are exact in fp32). One stage
// is one group (BK = 128 = one 128-byte swizzle row of codes per operand
// row): 4 k32 mmas into a fresh fp32 fragment `part`, which is then promoted
// into the accumulators times sa[row, g] * sw[colblock, g] (exact: powers of
// two). So this differs from the reference only in the order of the fp32
// additions, and in the H100's accumulation inside one group's mma chain
// (narrower than fp32; promoting every 128 k bounds it, as DeepGEMM does:
// the GPU checks measure it, the host emulation adds in fp32).
//
// Operands (policies A = QuantRows, B = Fp8Weights of Quant.cuh, which give
// codes and scales apart: codeAt / codes16 / groupScale / blockScale):
//   A: activations quantized to codes in registers (the same activationCode
//      the dequantizing path rounds with), per-(row, group) ue8m0 bytes in
//      the prologue's table;
//   B: the weight codes as stored: cp.async from sourceCodes(n) when the
//      rows are 16-byte aligned (kCpAsyncCodesOk), else 16-byte loads.
// kWgmmaFp8Native<A, B>: both in 128-wide groups, and a weight scale block
// spans whole 128-row column blocks (BR % 128 == 0), so each tile column
// block has one weight scale per group. Other blocks keep the bf16 tile.
//
// Block = 256 threads = 2 warpgroups; BM, BN in {64, 128}; warpgroup split
// as gemmTileWgmma (BM = 128: rows 64g.., m64n{BN}, 128 x 128 as two
// m64n64 halves; BM = 64: columns g * BN / 2.., m64n{BN / 2}).
//
// Pipeline: kWgmmaFp8Stages (4) shared stages per operand, a ring, as
// gemmTileWgmma's (the same bytes: 128-byte rows of 128 codes instead of 64
// bf16). B's codes are copied global -> swizzled shared by cp.async
// (CpAsync.cuh), zero-filled past NV rows and past K; A's codes must be
// quantized, so they go through a register stage: loaded + quantized one
// step ahead, during the mmas, and stored one step later (so do B's when
// its rows are not 16-byte aligned). Two fp32 partial fragments ping-pong:
// unit u of mma work (a group's 4 k32 mmas, or at 128 x 128 one n64 half
// of them: kWgmmaFp8Splits) runs into one fragment while unit u - 1's,
// retired by wgmma.wait_group 1, is promoted. Step s (group s), with
// D = kStages - 2 steps filled ahead of it:
//   cp.async.wait_group D - 1   this thread's copies of step s have landed
//   fence.proxy.async           its copies / stores, visible to the mmas...
//   __syncthreads               ...of every thread; and both warpgroups have
//                               retired step s - 2 (wait_group 1 below)
//   per unit (s, h):
//     wgmma k32 x 4 on stage s % kStages (columns h * N / splits..) into
//     the unit's fragment (fresh), commit
//     after the last unit: fill step s + D into stage (s + D) % kStages
//     (== (s - 2) % kStages, free): B by cp.async (one commit group per
//     step, empty past the last), A (and unaligned B) from the registers
//     loaded during the previous step; load + quantize step s + D + 1
//     wgmma.wait_group 1        the unit before has retired (this one runs)
//     acc[its columns] += its fragment * sa * sw   (its promotion)
// One barrier per 128-wide K group. The steps go in runs of kWgmmaFp8Run
// groups that end with wait_group 0 and the run's last promotion: ptxas
// serializes all wgmma of a kernel in which a fragment in flight across a
// loop's back edge is read in the loop (C7514), so the pipe drains once
// per run (4 groups), not once per group.
//
// Registers (ptxas -v, CUDA 13, sm_90a; the nvcc test checks no spills and
// no C7514): 64 x 64 / 64 x 128 / 128 x 64 in 115 / 90 / 166 (K 4096 / 200
// / 1024); 128 x 128 in 234 (K = 7168), whole-group partials there (acc +
// 2 x 64 fp32) spilled 64-120 bytes wherever A's stage sat, hence the n64
// halves (acc + 2 x 32).
//
// Expected performance (unmeasured): per 128 x 128 group the tensor pipe
// runs 2 x 8 m64n64k32 (2 M FMA: ~512 clocks at the SM's e4m3 rate); each
// thread issues 4 16-byte cp.async of B and quantizes 64 codes of A (8
// 16-byte bf16 loads), one barrier. The promotions (32 FMA per thread per
// unit) overlap the next unit's mmas; D = 2 groups of B's copies cover an
// L2 hit; the pipe drains once per 4 groups. Open for the GPU: whether
// n64 halves (A read from shared twice per group) lose to the drains they
// remove, A's register stage (a DRAM miss hidden by one step only), and
// L2 bandwidth (docs/cuda-compile.md "Tensor cores"); next: TMA and a
// producer warpgroup (setmaxnreg), A quantized once per row tile.
#pragma once

#include <type_traits>

#include <v4cuda/CpAsync.cuh>
#include <v4cuda/DenseMath.cuh>
#include <v4cuda/DenseWgmma.cuh>
#include <v4cuda/Wgmma.cuh>

namespace v4cuda {

constexpr int kWgmmaFp8Threads = 256;
// 4 x (128 + 128) x 128 B = 128 KB at 128 x 128 (gemmTileWgmma's bytes),
// which leaves ~98 KB of the H100's 227 KB for the A scale table (1 byte
// per row and group: 7 KB at K = 7168). Any kStages >= 3 works.
constexpr int kWgmmaFp8Stages = 4;
constexpr int kWgmmaFp8Group = kWgmmaTileKE4m3; // K of one stage = one quantization group
// Groups per run of the promotion pipeline (gemmTileWgmmaFp8): the tensor
// pipe drains once per run. 4 divides the groups of every DeepSeek-V4 K
// (512 .. 7168); a longer run costs one more inlined step (code size) each.
constexpr int kWgmmaFp8Run = 4;

// The promotion pipeline's unit of mma work: one group's 4 k32 mmas over
// 1 / kWgmmaFp8Splits of the warpgroup's WN columns, into a fragment of
// WN / splits / 2 registers; two such fragments ping-pong. 128 x 128
// splits in two n64 halves: acc + two whole-group partials (3 x 64 fp32
// per thread) spill there, acc + two halves (2 x 64) fit.
template <int BM, int BN> constexpr int kWgmmaFp8Splits = BM == 128 && BN == 128 ? 2 : 1;

// Dynamic shared bytes before the A policy's per-row table: the stages of
// both e4m3 operands, plus the slack of rounding the tile base up to 1024.
// The epilogue's fp32 staging [BM][BN] reuses the stages.
template <int BM, int BN> __host__ __device__ constexpr int gemmWgmmaFp8TileBytes() {
  return kWgmmaFp8Stages * (BM + BN) * kWgmmaRowBytes + kWgmmaTileAlign;
}

// The e4m3 group / weight block rows a policy declares (0: not e4m3 codes).
template <class P, class = void> struct E4m3GroupOf {
  static constexpr int value = 0;
};
template <class P> struct E4m3GroupOf<P, std::void_t<decltype(P::kE4m3Group)>> {
  static constexpr int value = P::kE4m3Group;
};
template <class P, class = void> struct E4m3BlockRowsOf {
  static constexpr int value = 0;
};
template <class P> struct E4m3BlockRowsOf<P, std::void_t<decltype(P::kE4m3BlockRows)>> {
  static constexpr int value = P::kE4m3BlockRows;
};

// True when gemmTileWgmmaFp8 runs these operands (the emitters check the
// same rule: DenseEmitters.cpp, wgmmaFp8Native).
template <class A, class B>
constexpr bool kWgmmaFp8Native = E4m3GroupOf<A>::value == kWgmmaFp8Group && E4m3GroupOf<B>::value == kWgmmaFp8Group &&
                                 E4m3BlockRowsOf<B>::value > 0 && E4m3BlockRowsOf<B>::value % 128 == 0;

// An e4m3 operand the tile may copy straight from memory: P::kCpAsyncCodesOk
// (its codes as stored, rows 16-byte aligned), P::sourceCodes(row) its row's
// first code. Apart from CpAsyncRowsOk (DenseWgmma.cuh) because the bf16
// tile must dequantize the same weights. -DV4CUDA_WGMMA_NO_CP_ASYNC sends
// them through registers too (CpAsync.cuh: telling a cp.async fault apart).
template <class P, class = void> struct CpAsyncCodesOk : std::false_type {};
#if !defined(V4CUDA_WGMMA_NO_CP_ASYNC)
template <class P>
struct CpAsyncCodesOk<P, std::void_t<decltype(P::kCpAsyncCodesOk)>>
    : std::integral_constant<bool, P::kCpAsyncCodesOk> {};
#endif

// 16 codes k .. k + 15 of operand row `row` (zero codes past K or for an
// absent row), packed.
template <int K, class P> __device__ __forceinline__ uint4 loadCodes16(const P &p, int row, bool rowValid, int k) {
  if (rowValid && k + 16 <= K)
    return p.codes16(row, k);
  __align__(16) unsigned char codes[16];
#pragma unroll
  for (int i = 0; i < 16; ++i)
    codes[i] = rowValid && k + i < K ? p.codeAt(row, k + i) : 0;
  return *reinterpret_cast<const uint4 *>(codes);
}

// How the tile fills one operand's stage with the codes of ROWS rows of the
// group at k0 (rows past `limit` and k past K are zero codes): consecutive
// threads on consecutive 16-byte chunks of a row (coalesced), stored
// 128-byte swizzled. ASYNC: fill() issues cp.async copies, prefetch() does
// nothing; else prefetch() loads (and quantizes) the group into registers,
// in flight during the mmas, and fill() stores them.
template <int ROWS, int K, bool ASYNC> struct E4m3OperandFill {
  static constexpr int kRowChunks = kWgmmaRowBytes / 16;
  static constexpr int kChunks = ROWS * kRowChunks / kWgmmaFp8Threads;
  static_assert(kChunks * kWgmmaFp8Threads == ROWS * kRowChunks, "whole chunks per thread");
  uint4 chunks[kChunks];

  template <class P> __device__ __forceinline__ void prefetch(const P &p, int row0, int limit, int k0) {
#pragma unroll
    for (int i = 0; i < kChunks; ++i) {
      const int chunk = threadIdx.x + i * kWgmmaFp8Threads, r = chunk / kRowChunks;
      chunks[i] = loadCodes16<K>(p, row0 + r, row0 + r < limit, k0 + (chunk % kRowChunks) * 16);
    }
  }
  template <class P> __device__ __forceinline__ void fill(const P &, unsigned char *tile, int, int, int) {
#pragma unroll
    for (int i = 0; i < kChunks; ++i) {
      const int chunk = threadIdx.x + i * kWgmmaFp8Threads;
      *reinterpret_cast<uint4 *>(tile + wgmmaSwizzledOffset(chunk / kRowChunks, chunk % kRowChunks)) = chunks[i];
    }
  }
};

template <int ROWS, int K> struct E4m3OperandFill<ROWS, K, true> {
  static constexpr int kRowChunks = kWgmmaRowBytes / kCpAsyncBytes;
  static constexpr int kChunks = ROWS * kRowChunks / kWgmmaFp8Threads;
  static_assert(kChunks * kWgmmaFp8Threads == ROWS * kRowChunks, "whole chunks per thread");
  template <class P> __device__ __forceinline__ void prefetch(const P &, int, int, int) {}
  template <class P> __device__ __forceinline__ void fill(const P &p, unsigned char *tile, int row0, int limit, int k0) {
    static_assert(std::is_same<decltype(p.sourceCodes(0)), const __nv_fp8_e4m3 *>::value, "cp.async rows are codes");
#pragma unroll
    for (int i = 0; i < kChunks; ++i) {
      const int chunk = threadIdx.x + i * kWgmmaFp8Threads, r = chunk / kRowChunks, c = chunk % kRowChunks;
      const int k = k0 + kCpAsyncBytes * c;
      const bool rowValid = row0 + r < limit;
      const int bytes = rowValid ? max(0, min(kCpAsyncBytes, K - k)) : 0;
      // row0 < limit always (the block has work): a valid address to read nothing from.
      const __nv_fp8_e4m3 *src = p.sourceCodes(rowValid ? row0 + r : row0) + (bytes > 0 ? k : 0);
      cpAsync16(tile + wgmmaSwizzledOffset(r, c), src, bytes);
    }
  }
};

// A unit's fragment of group g promoted: acc += part * (sa[row, g] *
// sw[block, g]), elements 4j + 0/1 on the thread's first fragment row,
// 4j + 2/3 on the row 8 below (exact products: powers of two). `part`
// holds the accumulators' elements offset.. (offset % 4 == 0, so the same
// rows: a unit of columns offset * 2..).
template <int M, int P>
__device__ __forceinline__ void promoteWgmmaFp8(float (&acc)[M], int offset, const float (&part)[P], float scaleLow,
                                                float scaleHigh) {
#pragma unroll
  for (int i = 0; i < P; ++i)
    acc[offset + i] = fmaf(part[i], (i % 4) < 2 ? scaleLow : scaleHigh, acc[offset + i]);
}

// blockDim.x == kWgmmaFp8Threads (the emitters' kMatmulThreads); dynamic
// shared bytes gemmWgmmaFp8TileBytes<BM, BN>() + BM * A::kTableBytesPerRow.
template <int BM, int BN, int K, int NV, class A, class B, class E>
__device__ __forceinline__ void gemmTileWgmmaFp8(A a, const B &b, const E &e, int rowTile, int colTile, int present,
                                                 unsigned char *shared) {
  static_assert(kWgmmaFp8Native<A, B>, "operands not e4m3 codes in 128-wide groups: use gemmTileWgmma");
  static_assert((BM == 64 || BM == 128) && (BN == 64 || BN == 128), "wgmma tiles: BM, BN in {64, 128}");
  static_assert(kWgmmaFp8Threads == 2 * kWgmmaThreads && kWgmmaFp8Threads == kWgmmaGemmThreads,
                "two warpgroups (storeWgmmaTile's block)");
  constexpr int kStages = kWgmmaFp8Stages, kAhead = kStages - 2; // steps filled ahead of the one in the mmas
  static_assert(kStages >= 3 && kAhead - 1 <= 7, "a stage in the mmas, one retiring, >= 1 filling");
  static_assert(BM * BN * 4 <= kStages * (BM + BN) * kWgmmaRowBytes, "the epilogue's staging fits the stages");
  constexpr int kSteps = (K + kWgmmaFp8Group - 1) / kWgmmaFp8Group;
  constexpr int kStageA = BM * kWgmmaRowBytes, kStageB = BN * kWgmmaRowBytes;
  constexpr int WN = BM == 128 ? BN : BN / 2; // the N of each warpgroup's mma
  const int row0 = rowTile * BM, col0 = colTile * BN;
  if (row0 >= present)
    return; // uniform over the block
  a.prologue(row0, BM, shared + gemmWgmmaFp8TileBytes<BM, BN>(), present);
  unsigned char *As = wgmmaAlignTile(shared);  // [stage][BM][128 B] activation codes
  unsigned char *Bs = As + kStages * kStageA; // [stage][BN][128 B], row n = weight row
  const int warpgroup = threadIdx.x / kWgmmaThreads;
  const int aRow = BM == 128 ? 64 * warpgroup : 0, bRow = BM == 128 ? 0 : WN * warpgroup;
  // This thread's two fragment rows (elements 4j + 0/1 and 4j + 2/3).
  const int fragmentRow = row0 + aRow + wgmmaAccumulatorPosition(threadIdx.x % kWgmmaThreads, 0).row;

  E4m3OperandFill<BM, K, false> fillA; // quantized on the way: always through registers
  E4m3OperandFill<BN, K, CpAsyncCodesOk<B>::value> fillB;
  const auto prefetch = [&](int step) {
    fillA.prefetch(a, row0, present, step * kWgmmaFp8Group);
    fillB.prefetch(b, col0, NV, step * kWgmmaFp8Group);
  };
  const auto fill = [&](int step) {
    fillA.fill(a, As + (step % kStages) * kStageA, row0, present, step * kWgmmaFp8Group);
    fillB.fill(b, Bs + (step % kStages) * kStageB, col0, NV, step * kWgmmaFp8Group);
  };
  wgmmaFillAhead<kAhead, kSteps>(prefetch, fill);

  constexpr int kSplits = kWgmmaFp8Splits<BM, BN>, PN = WN / kSplits; // the N of one unit's mmas
  float acc[WN / 2], partEven[PN / 2], partOdd[PN / 2];
#pragma unroll
  for (int i = 0; i < WN / 2; ++i)
    acc[i] = 0.0f;
  // Unit (s, h)'s promotion (group s, columns h * PN..), its fragment retired.
  const auto promote = [&](const float(&part)[PN / 2], int s, int h) {
    const float sw = b.blockScale(col0, s);
    promoteWgmmaFp8(acc, h * (PN / 2), part, a.groupScale(fragmentRow, s) * sw,
                    a.groupScale(fragmentRow + 8, s) * sw);
  };
  // Unit (s, h) up to its promotion: the mmas of group s on columns
  // h * PN.. into `into` (fresh); after a group's last unit, the fills of
  // later steps while they run.
  const auto issue = [&](int s, int h, float(&into)[PN / 2]) {
    if (h == 0) {
      cpAsyncWaitGroup<kAhead - 1>(); // this thread's copies of step s have landed
      fenceProxyAsync();              // its copies and stores of step s, visible to the mmas after the barrier
      __syncthreads();                // every thread's; and step s - 2 retired in both warpgroups
    }
    const unsigned char *as = As + (s % kStages) * kStageA + aRow * kWgmmaRowBytes;
    const unsigned char *bs = Bs + (s % kStages) * kStageB + (bRow + h * PN) * kWgmmaRowBytes;
    wgmmaFence();
#pragma unroll
    for (int kk = 0; kk < kWgmmaFp8Group / 32; ++kk) // k32 slices: 32 bytes along the swizzled rows
      wgmmaM64E4m3<PN>(into, wgmmaDescriptor(as + 32 * kk), wgmmaDescriptor(bs + 32 * kk), kk > 0);
    wgmmaCommitGroup();
    if (h == kSplits - 1) {
      if (s + kAhead < kSteps)
        fill(s + kAhead); // stage (s - 2) % kStages: free since the barrier
      cpAsyncCommitGroup();
      if (s + kAhead + 1 < kSteps)
        prefetch(s + kAhead + 1); // register stage: in flight during the mmas
    }
  };
  // Unit (s, h) after the first: the unit before it promoted while it runs.
  const auto step = [&](int s, int h, float(&into)[PN / 2], float(&previous)[PN / 2]) {
    issue(s, h, into);
    wgmmaWaitGroup<1>(previous); // this warpgroup's unit before has retired (this one still runs)
    promote(previous, h > 0 ? s : s - 1, h > 0 ? h - 1 : kSplits - 1);
  };
  // Groups s0 .. s0 + count - 1 (count > 0, a constant once inlined), unit
  // j = (s0 + j / kSplits, j % kSplits): the fragments alternate statically
  // (registers cannot be indexed), and the run ends with nothing in flight
  // (wait_group 0, the last promotion), so no fragment is in flight across
  // the loop's back edge (ptxas's C7514).
  const auto run = [&](int s0, int count) {
    const int units = count * kSplits;
    issue(s0, 0, partEven);
#pragma unroll
    for (int j = 1; j + 1 < units; j += 2) {
      step(s0 + j / kSplits, j % kSplits, partOdd, partEven);
      step(s0 + (j + 1) / kSplits, (j + 1) % kSplits, partEven, partOdd);
    }
    const int last = s0 + (units - 1) / kSplits, lastH = (units - 1) % kSplits;
    if (units % 2 == 0) {
      step(last, lastH, partOdd, partEven);
      wgmmaWaitGroup<0>(partOdd);
      promote(partOdd, last, lastH);
    } else {
      wgmmaWaitGroup<0>(partEven);
      promote(partEven, last, lastH);
    }
  };
  constexpr int kRun = kWgmmaFp8Run, kFullRuns = kSteps / kRun;
  for (int s0 = 0; s0 < kFullRuns * kRun; s0 += kRun)
    run(s0, kRun);
  if constexpr (kSteps % kRun != 0)
    run(kFullRuns * kRun, kSteps % kRun);
  cpAsyncWaitGroup<0>(); // only empty groups are left; nothing may be pending at exit
  __syncthreads();       // no mma reads the stages any more: the staging reuses them
  storeWgmmaTile<BM, BN, WN>(acc, reinterpret_cast<float *>(As), aRow, bRow, row0, col0, present, e);
}

} // namespace v4cuda
