// v4.moe / v4.moe_fp4 at prefill on Hopper's warpgroup MMA (sm_90a only,
// `v4c compile --tensor-cores wgmma`): MoeMma.cuh's launch (tickets, routing,
// scratch, work items, SwiGLU and down epilogues: moeGroupedRun) with the two
// GEMM main loops on wgmma.mma_async m64nNk16 bf16 -> f32 (Wgmma.cuh).
//
// Work items as MoeMma.cuh: a tile is 64 (token, slot) pairs of one expert,
// i.e. exactly one wgmma M. The block's two warpgroups split N:
//   gate/up item: [64, 2 * 128] over K = D; warpgroup 0 the 128 gate rows,
//                 warpgroup 1 the 128 up rows of the slice (m64n128k16).
//   down item:    [64, 128] over K = I; warpgroup g the output columns
//                 [64g, 64g + 64) (m64n64k16), once per bf16 term of the
//                 SwiGLU output (3 terms with bf16 experts, 1 with fp4).
// Operands: stored bf16 rows (the gathered h rows of a bf16 program, bf16
// expert weights) are copied global -> shared by cp.async (CpAsync.cuh)
// straight into 128-byte-swizzled K-major tiles of 64 K columns, zero-filled
// past the tile's rows and past K; the rest (fp4 experts, fake-quantized or
// f32 h, the down GEMM's bf16 terms of the f32 SwiGLU output) through
// registers with MoeMma.cuh's chunk loaders (the same exactly-bf16 values:
// the products are exact in fp32, and the result differs from ref::moe /
// ref::moeFp4 and from moeGroupedMma only in the order of the fp32
// additions). A ring of moeWgmmaStages stages of one 64-wide step each
// (bf16 experts 4: two steps copied ahead, one step of wgmma in flight
// across the barrier; fp4 experts 2: the register operands of the next
// step stored while this one's wgmmas run, drained each step), one barrier
// per step (moeWgmmaK, DenseWgmma.cuh's scheme). The f32 accumulators go
// through the staging tile (aliasing the stages once every wgmma has
// retired) into the same epilogues as the wmma variant.
//
// Resources (ptxas for V4-Flash, CUDA 13, MoeWgmmaEmitter.CompilesToWgmmaForSm90a
// prints them): bf16 experts 131 registers (~240 with every operand through
// registers), 167 KB of shared memory (1024 alignment slack + 4 stages x 40
// KB + row tables); fp4 experts 216 registers, 86 KB (2 stages); no spills.
// So ONE block (8 warps) per SM: every barrier stalls the SM's whole pipeline.
//
// Expected share of the bf16 tensor peak (H100 SXM: 989 dense TFLOP/s at
// boost; 798 is issue 6's figure), for V4-Flash prefill of 4096 tokens
// (D = 4096, I = 2048, E = 256, k = 6: 24576 pairs, ~96 per expert), in
// useful FLOPs (2 * pairs * 3 * D * I):
//   - tile fill: an expert's pairs are cut into tiles of 64, so ~96 pairs
//     make a full and a ~half tile: ~75% of the issued MMA rows are real.
//   - bf16 experts: the down GEMM runs 3 bf16 terms of the fp32 SwiGLU output
//     (exactness), so the issued MMA work is (2/3 + 3 * 1/3) / 0.75 = 2.2x the
//     useful FLOPs: <= ~45% of peak even with the tensor cores never idle.
//     fp4 experts (one e4m3 term): (2/3 + 1/3) / 0.75 = 1.33x: <= ~75%.
//   - latency: a bf16 gate/up step (64 K columns) is 1 M MACs, ~500 tensor
//     clocks per SM; its operands are copied two steps (~1000 clocks) ahead
//     by cp.async, 10 16-byte copies per thread and one barrier a step: the
//     tensor pipe should stay mostly busy; a bf16 down step (64 x 128
//     output, 3 terms) is 1.5 M MACs, its A terms still split in registers.
//   - fp4 decode: each weight element is decoded (e2m1 bits x ue8m0 scale,
//     ~8 instructions with its load, pack and store) by the 8 warps that
//     also feed the MMAs: per 64-wide step a gate/up item decodes 16K
//     elements (~1000 issue clocks of the SM's 4 schedulers) against 512
//     tensor clocks, a down item 8K (~640) against 256: fp4 is issue-bound,
//     the tensor pipe busy < ~45% of the time.
// So expect ~30-40% of peak (useful FLOP/s) for bf16 experts and ~20-30% for
// fp4 on the first run; if bf16 is much lower, look first at the stall
// reasons of the store phase (ncu: smsp__pcsamp_warps_issue_stalled_barrier,
// _long_scoreboard) and at sm__pipe_tensor_op_gmma_cycles_active. 60% needs
// TMA / cp.async.bulk operand loads into 3-4 stages with a producer
// warpgroup (fp4 decoded by it, e.g. through a 16-entry table into bf16
// pairs), 128-row tiles where experts have the pairs, and the bf16 down GEMM
// on fewer terms only if the numerics contract ever allows it.
//
// If it is wrong on the GPU: the dense wgmma GEMM's GPU checks test the same
// Wgmma.cuh facts (descriptor, swizzle, fragment layout) first; then
// `v4run compare` of a bf16 / fp4 wgmma artifact whose MoE takes this path
// (I % 128 == 0, D % 32 == 0, > 8 tokens per bucket) against its CPU twin
// names the first bad launch, and the wmma twin (moeGroupedMma, same
// loaders and epilogues) tells a main-loop bug from a shared one.
#pragma once

#include <type_traits>

#include <v4cuda/CpAsync.cuh>
#include <v4cuda/MoeMma.cuh>
#include <v4cuda/Wgmma.cuh>

namespace v4cuda {

constexpr int kMoeWgmmaRowBytes = kWgmmaRowBytes; // one 128-byte swizzle row: 64 bf16 of K
// Stages of the operand ring, one atom (64 K columns) each: bf16 experts 4
// (cp.async copies two steps ahead while one step of wgmma stays in flight
// across the barrier), fp4 experts 2 (every operand through registers: the
// decode needs them; one step loaded ahead, the wgmmas drained each step).
__host__ __device__ constexpr int moeWgmmaStages(bool fp4) { return fp4 ? 2 : 4; }
// One stage (an atom): the gate/up tiles (A: 64 rows, B: 2 * slice rows) or
// the down tiles (3 A terms of 64 rows, B: kMoeMmaCols rows), 128 bytes a row.
constexpr int kMoeWgmmaAtomBytes =
    ((kMoeMmaRows + 2 * kMoeMmaSlice) > (3 * kMoeMmaRows + kMoeMmaCols) ? (kMoeMmaRows + 2 * kMoeMmaSlice)
                                                                        : (3 * kMoeMmaRows + kMoeMmaCols)) *
    kMoeWgmmaRowBytes;
// kWgmmaTileAlign bytes of alignment slack, then the stages (the f32
// staging tile of the epilogues reuses them).
__host__ __device__ constexpr int moeWgmmaTileBytes(bool fp4) {
  return kWgmmaTileAlign + moeWgmmaStages(fp4) * kMoeWgmmaAtomBytes;
}
static_assert(kMoeMmaRows * kMoeMmaStageLD * 4 <= moeWgmmaStages(true) * kMoeWgmmaAtomBytes,
              "the f32 staging tile must fit in the operand stages");
static_assert(kMoeMmaThreads == 256 && kMoeMmaRows == 64, "two warpgroups over one m64 tile");
__host__ __device__ constexpr int moeWgmmaSharedBytes(int D, bool fp4) {
  return moeWgmmaTileBytes(fp4) + moeRowTableBytes(D);
}

// The K loop of one work item, in steps of 64 over [0, K), on a ring of
// kStages stages: stage step % kStages holds the A tiles (kTermsA of 64 rows)
// and the B tile (NB rows); warpgroup g multiplies every A term by B rows
// [g * NB / 2, (g + 1) * NB / 2) into acc. prefetch(k0) loads the register
// operands of the step at k0; fill(stage, k0) stores them into the stage's
// swizzled tiles and issues the cp.async copies of the others. Step s
// (DenseWgmma.cuh's scheme, with kInFlight wgmma steps left running):
//   cp.async.wait_group kAhead - 1, fence.proxy.async, __syncthreads
//   wgmma on stage s, commit; fill step s + kAhead (its stage's wgmmas have
//   retired in both warpgroups before the barrier); prefetch step
//   s + kAhead + 1; wgmma.wait_group kInFlight.
template <int kStages, int kTermsA, int NB, typename Prefetch, typename Fill>
__device__ __forceinline__ void moeWgmmaK(int K, unsigned char *tiles, float (&acc)[NB / 4], Prefetch &&prefetch,
                                          Fill &&fill) {
  constexpr int N = NB / 2, kBOffset = kTermsA * kMoeMmaRows * kMoeWgmmaRowBytes;
  constexpr int kInFlight = kStages >= 3 ? 1 : 0, kAhead = kStages - 1 - kInFlight;
  static_assert(kStages >= 2 && kAhead >= 1 && kAhead <= 8, "a ring of 2..9 stages");
  static_assert((kTermsA * kMoeMmaRows + NB) * kMoeWgmmaRowBytes <= kMoeWgmmaAtomBytes, "atom overflow");
  const int group = threadIdx.x / 128;
#pragma unroll
  for (int i = 0; i < N / 2; ++i)
    acc[i] = 0.0f;
  wgmmaFenceAccumulators(acc);
  const int steps = (K + kWgmmaTileK - 1) / kWgmmaTileK;
  const auto stage = [&](int step) { return tiles + (step % kStages) * kMoeWgmmaAtomBytes; };
#pragma unroll
  for (int step = 0; step < kAhead; ++step) {
    if (step < steps) {
      prefetch(step * kWgmmaTileK);
      fill(stage(step), step * kWgmmaTileK);
    }
    cpAsyncCommitGroup(); // one group per step, empty or not: wait_group counts steps
  }
  if (kAhead < steps)
    prefetch(kAhead * kWgmmaTileK);
  for (int step = 0; step < steps; ++step) {
    cpAsyncWaitGroup<kAhead - 1>(); // this thread's copies of the step have landed
    fenceProxyAsync();              // its copies and stores, visible to the async proxy after the barrier
    __syncthreads();
    const unsigned char *current = stage(step);
    wgmmaFence();
#pragma unroll
    for (int kk = 0; kk < kWgmmaTileK / 16; ++kk) { // k16 slices: 32 bytes along the swizzled rows
      const uint64_t descB = wgmmaDescriptor(current + kk * 32 + kBOffset + group * N * kMoeWgmmaRowBytes);
#pragma unroll
      for (int term = 0; term < kTermsA; ++term)
        wgmmaM64<N>(acc, wgmmaDescriptor(current + kk * 32 + term * kMoeMmaRows * kMoeWgmmaRowBytes), descB, true);
    }
    wgmmaCommitGroup();
    if (step + kAhead < steps)
      fill(stage(step + kAhead), (step + kAhead) * kWgmmaTileK);
    cpAsyncCommitGroup();
    if (step + kAhead + 1 < steps)
      prefetch((step + kAhead + 1) * kWgmmaTileK); // in flight during the wgmmas
    wgmmaWaitGroup<kInFlight>(acc);
  }
  wgmmaWaitGroup<0>(acc);
  cpAsyncWaitGroup<0>(); // only empty groups are left
  __syncthreads();       // no wgmma reads the stages any more (the staging tile aliases them)
}

// A warpgroup's m64nN accumulators into the staging tile at columns col0.
template <int N>
__device__ __forceinline__ void moeStageAccumulators(const float (&acc)[N / 2], float *stage, int col0) {
  const int thread = threadIdx.x % 128;
#pragma unroll
  for (int i = 0; i < N / 2; ++i) {
    const WgmmaPosition at = wgmmaAccumulatorPosition(thread, i);
    stage[at.row * kMoeMmaStageLD + col0 + at.col] = acc[i];
  }
}

// 16-byte chunk i of this thread in one 64-wide step of a tile: chunk
// c = threadIdx.x + i * kMoeMmaThreads is row c / 8, K columns k .. k + 7,
// k = (c % 8) * 8 (consecutive threads read consecutive chunks of a row:
// coalesced).
struct MoeWgmmaChunk {
  int row, k;
  __device__ __forceinline__ explicit MoeWgmmaChunk(int i)
      : row((threadIdx.x + i * kMoeMmaThreads) / 8), k((threadIdx.x + i * kMoeMmaThreads) % 8 * 8) {}
  // Byte offset in a stage whose tiles hold the rows from `firstRow` (a multiple of 8) on.
  __device__ __forceinline__ int offset(int firstRow) const { return wgmmaSwizzledOffset(firstRow + row, k / 8); }
  __device__ __forceinline__ void store(unsigned char *stage, int firstRow, uint4 value) const {
    *reinterpret_cast<uint4 *>(stage + offset(firstRow)) = value;
  }
  // cp.async of `valid ? 16 : 0` bytes (zeros past the tile's rows / K); `src`
  // must be a readable 16-byte aligned address either way.
  __device__ __forceinline__ void copy(unsigned char *stage, int firstRow, const __nv_bfloat16 *src, bool valid) const {
    cpAsync16(stage + offset(firstRow), src, valid ? kCpAsyncBytes : 0);
  }
};

// The operands the ring copies with cp.async: h rows and expert rows stored
// as bf16 (the register path's moeBf16Chunk reads them as they are, 16-byte
// aligned: D % 32 == 0, I % 128 == 0). fp4 experts, fake-quantized or f32 h
// and the down GEMM's SwiGLU terms go through registers (so does everything
// under -DV4CUDA_WGMMA_NO_CP_ASYNC, DenseWgmma.cuh's diagnostic switch).
#if defined(V4CUDA_WGMMA_NO_CP_ASYNC)
template <bool FP4, typename HT> constexpr bool kMoeCpAsyncH = false;
template <typename Rows> constexpr bool kMoeCpAsyncRows = false;
#else
template <bool FP4, typename HT> constexpr bool kMoeCpAsyncH = !FP4 && std::is_same_v<HT, __nv_bfloat16>;
template <typename Rows> constexpr bool kMoeCpAsyncRows = std::is_same_v<Rows, state::DenseExpertRows<__nv_bfloat16>>;
#endif

// The GEMMs of a work item on wgmma (the MoeWmmaTiles contract: f32 products
// in stage(shared), row-major with kMoeMmaStageLD, visible to the block on
// return), on a ring of kStages stages of 64 K columns.
template <int kStages> struct MoeWgmmaTiles {
  static constexpr int kTileBytes = kWgmmaTileAlign + kStages * kMoeWgmmaAtomBytes;
  using Chunk = MoeWgmmaChunk;
  // The stages start at the first 1024-byte boundary of the shared window.
  static __device__ __forceinline__ unsigned char *tiles(unsigned char *shared) { return wgmmaAlignTile(shared); }
  static __device__ __forceinline__ float *stage(unsigned char *shared) {
    return reinterpret_cast<float *>(tiles(shared));
  }

  // [ROWS, 2 * slice] = h rows x [gate; up rows of slice i0]^T over K = D.
  template <bool FP4, typename HT, typename Rows>
  static __device__ __forceinline__ void gateUp(const HT *h, const Rows &gateUp, const MoeShape &shape, int i0,
                                                const MoeTile &tile, unsigned char *shared) {
    constexpr int NB = 2 * kMoeMmaSlice;
    constexpr int kChunksA = kMoeMmaRows * 8 / kMoeMmaThreads, kChunksB = NB * 8 / kMoeMmaThreads;
    constexpr bool kAsyncA = kMoeCpAsyncH<FP4, HT>, kAsyncB = kMoeCpAsyncRows<Rows>;
    uint4 stagedA[kAsyncA ? 1 : kChunksA], stagedB[kAsyncB ? 1 : kChunksB];
    float acc[NB / 4];
    moeWgmmaK<kStages, 1, NB>(
        shape.D, tiles(shared), acc,
        [&](int k0) {
          if constexpr (!kAsyncA) {
#pragma unroll
            for (int i = 0; i < kChunksA; ++i) {
              const Chunk c(i);
              stagedA[i] = moeGateUpChunkA<FP4>(h, shape.D, tile, c.row, k0 + c.k);
            }
          }
          if constexpr (!kAsyncB) {
#pragma unroll
            for (int i = 0; i < kChunksB; ++i) {
              const Chunk c(i);
              stagedB[i] = moeGateUpChunkB(gateUp, tile, shape, i0, c.row, k0 + c.k);
            }
          }
        },
        [&](unsigned char *stageTiles, int k0) { // A rows [0, 64), then B
#pragma unroll
          for (int i = 0; i < kChunksA; ++i) {
            const Chunk c(i);
            if constexpr (kAsyncA) {
              const bool valid = c.row < tile.count && k0 + c.k < shape.D;
              c.copy(stageTiles, 0,
                     h + static_cast<long long>(tile.rowToken[valid ? c.row : 0]) * shape.D + (valid ? k0 + c.k : 0),
                     valid);
            } else {
              c.store(stageTiles, 0, stagedA[i]);
            }
          }
#pragma unroll
          for (int i = 0; i < kChunksB; ++i) {
            const Chunk c(i);
            if constexpr (kAsyncB) {
              const long long gateRow = static_cast<long long>(tile.expert) * 2 * shape.I + i0;
              const long long row = c.row < kMoeMmaSlice ? gateRow + c.row : gateRow + shape.I + (c.row - kMoeMmaSlice);
              const bool valid = k0 + c.k < shape.D;
              c.copy(stageTiles, kMoeMmaRows, gateUp.w + row * gateUp.cols + (valid ? k0 + c.k : 0), valid);
            } else {
              c.store(stageTiles, kMoeMmaRows, stagedB[i]);
            }
          }
        });
    moeStageAccumulators<NB / 2>(acc, stage(shared), (threadIdx.x / 128) * (NB / 2));
    __syncthreads();
  }

  // [ROWS, kMoeMmaCols] = act rows x down rows [d0, d0 + cols)^T over K = I.
  template <bool FP4, typename Rows>
  static __device__ __forceinline__ void down(const float *act, const Rows &down, const MoeShape &shape, int d0,
                                              const MoeTile &tile, unsigned char *shared) {
    constexpr int kTerms = kMoeDownTerms<FP4>, NB = kMoeMmaCols;
    constexpr int kChunksA = kMoeMmaRows * 8 / kMoeMmaThreads, kChunksB = NB * 8 / kMoeMmaThreads;
    constexpr bool kAsyncB = kMoeCpAsyncRows<Rows>;
    uint4 stagedA[kChunksA][kTerms], stagedB[kAsyncB ? 1 : kChunksB];
    float acc[NB / 4];
    moeWgmmaK<kStages, kTerms, NB>(
        shape.I, tiles(shared), acc,
        [&](int k0) {
#pragma unroll
          for (int i = 0; i < kChunksA; ++i) {
            const Chunk c(i);
            moeDownChunksA<FP4>(act, shape.I, tile, c.row, k0 + c.k, stagedA[i]);
          }
          if constexpr (!kAsyncB) {
#pragma unroll
            for (int i = 0; i < kChunksB; ++i) {
              const Chunk c(i);
              stagedB[i] = moeDownChunkB(down, tile, shape, d0 + c.row, k0 + c.k);
            }
          }
        },
        [&](unsigned char *stageTiles, int k0) { // A term t in rows [64t, 64t + 64), then B
#pragma unroll
          for (int i = 0; i < kChunksA; ++i)
#pragma unroll
            for (int term = 0; term < kTerms; ++term)
              Chunk(i).store(stageTiles, term * kMoeMmaRows, stagedA[i][term]);
#pragma unroll
          for (int i = 0; i < kChunksB; ++i) {
            const Chunk c(i);
            if constexpr (kAsyncB) {
              const int d = d0 + c.row;
              const bool valid = d < shape.D && k0 + c.k < shape.I;
              const long long row = static_cast<long long>(tile.expert) * shape.D + (d < shape.D ? d : 0);
              c.copy(stageTiles, kTerms * kMoeMmaRows, down.w + row * down.cols + (valid ? k0 + c.k : 0), valid);
            } else {
              c.store(stageTiles, kTerms * kMoeMmaRows, stagedB[i]);
            }
          }
        });
    moeStageAccumulators<NB / 2>(acc, stage(shared), (threadIdx.x / 128) * (NB / 2));
    __syncthreads();
  }
};

// The wgmma variant (sm_90a); blockDim.x == kMoeMmaThreads, dynamic shared
// memory moeWgmmaSharedBytes(D, FP4); the rest of the contract is moeGroupedMma's.
template <bool FP4, typename HT, typename WeightT, typename GateUpRows, typename DownRows, typename OutT>
__device__ void moeGroupedWgmma(const HT *h, const WeightT *weights, const int32_t *experts, const GateUpRows &gateUp,
                                const DownRows &down, OutT *out, MoeShape shape, int maxTiles, MoeMmaScratch s,
                                const int32_t *dyn) {
  moeGroupedRun<FP4, MoeWgmmaTiles<moeWgmmaStages(FP4)>>(h, weights, experts, gateUp, down, out, shape, maxTiles, s,
                                                         dyn);
}

} // namespace v4cuda
