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
// Operands go through registers with MoeMma.cuh's chunk loaders (the same
// exactly-bf16 values: the products are exact in fp32, and the result
// differs from ref::moe / ref::moeFp4 and from moeGroupedMma only in the
// order of the fp32 additions) into 128-byte-swizzled K-major tiles of 64 K
// columns ("atoms"), moeWgmmaAtoms per pipeline step (bf16 experts 2, fp4
// 1), in 2 stages: the global loads of step k + 1 are issued before step k's
// wgmmas and stored into the other stage once every warpgroup has retired
// step k - 1 (wait_group 1 + barrier), then fence.proxy.async + barrier
// before the async proxy reads them. The f32 accumulators go through the
// staging tile (aliasing the stages once every wgmma has retired) into the
// same epilogues as the wmma variant.
//
// Resources (ptxas for V4-Flash, MoeWgmmaEmitter.CompilesToWgmmaForSm90a
// prints them): bf16 experts ~240 registers, 167 KB of shared memory (1024
// alignment slack + 2 stages x 2 atoms x 40 KB + row tables); fp4 experts
// ~220 registers, 86 KB; no spills. So ONE block (8 warps) per SM: every
// barrier stalls the SM's whole pipeline.
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
//   - latency: a bf16 gate/up step (128 K columns) is 2 M MACs, ~1000 tensor
//     clocks per SM, against one global load round trip (~600-900 clocks
//     from L2/HBM) + ~20 16-byte chunks stored per thread + 2 barriers: the
//     tensor pipe should stay mostly busy; a bf16 down step (64 x 128
//     output, 3 terms) is 3 M MACs.
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

#include <v4cuda/MoeMma.cuh>
#include <v4cuda/Wgmma.cuh>

namespace v4cuda {

constexpr int kMoeWgmmaRowBytes = kWgmmaRowBytes; // one 128-byte swizzle row: 64 bf16 of K
constexpr int kMoeWgmmaStages = 2;
// K columns per pipeline step: kAtoms swizzle atoms of 64 (bf16 experts: 2,
// so each step's mmas outlast the global load latency of the next step;
// fp4 experts: 1, their decode needs the registers).
__host__ __device__ constexpr int moeWgmmaAtoms(bool fp4) { return fp4 ? 1 : 2; }
// One atom of a stage: the gate/up tiles (A: 64 rows, B: 2 * slice rows) or
// the down tiles (3 A terms of 64 rows, B: kMoeMmaCols rows), 128 bytes a row.
constexpr int kMoeWgmmaAtomBytes =
    ((kMoeMmaRows + 2 * kMoeMmaSlice) > (3 * kMoeMmaRows + kMoeMmaCols) ? (kMoeMmaRows + 2 * kMoeMmaSlice)
                                                                        : (3 * kMoeMmaRows + kMoeMmaCols)) *
    kMoeWgmmaRowBytes;
// kWgmmaTileAlign bytes of alignment slack, then the stages (the f32
// staging tile of the epilogues reuses them).
__host__ __device__ constexpr int moeWgmmaTileBytes(bool fp4) {
  return kWgmmaTileAlign + kMoeWgmmaStages * moeWgmmaAtoms(fp4) * kMoeWgmmaAtomBytes;
}
static_assert(kMoeMmaRows * kMoeMmaStageLD * 4 <= kMoeWgmmaStages * kMoeWgmmaAtomBytes,
              "the f32 staging tile must fit in the operand stages");
static_assert(kMoeMmaThreads == 256 && kMoeMmaRows == 64, "two warpgroups over one m64 tile");
__host__ __device__ constexpr int moeWgmmaSharedBytes(int D, bool fp4) {
  return moeWgmmaTileBytes(fp4) + moeRowTableBytes(D);
}

// The K loop of one work item, in steps of 64 * kAtoms over [0, K): stage
// step % 2 holds per atom the A tiles (kTermsA of 64 rows) and the B tile
// (NB rows); warpgroup g multiplies every A term by B rows
// [g * NB / 2, (g + 1) * NB / 2) into acc. load(k0) fills the thread's
// registers with the step at k0, store(stage) writes them into a stage's
// swizzled tiles.
template <int kAtoms, int kTermsA, int NB, typename Load, typename Store>
__device__ __forceinline__ void moeWgmmaK(int K, unsigned char *tiles, float (&acc)[NB / 4], Load &&load,
                                          Store &&store) {
  constexpr int N = NB / 2, kBOffset = kTermsA * kMoeMmaRows * kMoeWgmmaRowBytes;
  constexpr int kStageBytes = kAtoms * kMoeWgmmaAtomBytes, kStepK = kAtoms * kWgmmaTileK;
  static_assert((kTermsA * kMoeMmaRows + NB) * kMoeWgmmaRowBytes <= kMoeWgmmaAtomBytes, "atom overflow");
  const int group = threadIdx.x / 128;
#pragma unroll
  for (int i = 0; i < N / 2; ++i)
    acc[i] = 0.0f;
  wgmmaFenceAccumulators(acc);
  const int steps = (K + kStepK - 1) / kStepK;
  load(0);
  store(tiles);
  fenceProxyAsync(); // generic-proxy stores -> the async proxy's reads
  __syncthreads();
  for (int step = 0; step < steps; ++step) {
    const unsigned char *current = tiles + (step % kMoeWgmmaStages) * kStageBytes;
    const bool more = step + 1 < steps;
    if (more) // the next step's global loads, in flight during this step's MMAs
      load((step + 1) * kStepK);
    wgmmaFence();
#pragma unroll
    for (int atom = 0; atom < kAtoms; ++atom)
#pragma unroll
      for (int kk = 0; kk < kWgmmaTileK / 16; ++kk) { // k16 slices: 32 bytes along the swizzled rows
        const unsigned char *at = current + atom * kMoeWgmmaAtomBytes + kk * 32;
        const uint64_t descB = wgmmaDescriptor(at + kBOffset + group * N * kMoeWgmmaRowBytes);
#pragma unroll
        for (int term = 0; term < kTermsA; ++term)
          wgmmaM64<N>(acc, wgmmaDescriptor(at + term * kMoeMmaRows * kMoeWgmmaRowBytes), descB, true);
      }
    wgmmaCommitGroup();
    if (more) {
      wgmmaWaitGroup<1>(acc); // this warpgroup's step - 1 has retired...
      __syncthreads();        // ...and the other's: the other stage is free
      store(tiles + ((step + 1) % kMoeWgmmaStages) * kStageBytes);
      fenceProxyAsync();
      __syncthreads();
    }
  }
  wgmmaWaitGroup<0>(acc);
  __syncthreads(); // no wgmma reads the stages any more (the staging tile aliases them)
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

// 16-byte chunk i of this thread in one pipeline step of a tile: kAtoms * 8
// chunks per tile row (consecutive threads read consecutive chunks of a row:
// coalesced), chunk c = threadIdx.x + i * kMoeMmaThreads is row c / (8 kAtoms),
// K columns k .. k + 7 of the step, k = (c % (8 kAtoms)) * 8.
template <int kAtoms> struct MoeWgmmaChunk {
  static constexpr int kPerRow = 8 * kAtoms;
  int row, k;
  __device__ __forceinline__ explicit MoeWgmmaChunk(int i)
      : row((threadIdx.x + i * kMoeMmaThreads) / kPerRow), k((threadIdx.x + i * kMoeMmaThreads) % kPerRow * 8) {}
  // Into a stage whose atoms hold the tile from row `firstRow` (a multiple of 8) on.
  __device__ __forceinline__ void store(unsigned char *stage, int firstRow, uint4 value) const {
    *reinterpret_cast<uint4 *>(stage + (k / kWgmmaTileK) * kMoeWgmmaAtomBytes +
                               wgmmaSwizzledOffset(firstRow + row, k % kWgmmaTileK / 8)) = value;
  }
};

// The GEMMs of a work item on wgmma (the MoeWmmaTiles contract: f32 products
// in stage(shared), row-major with kMoeMmaStageLD, visible to the block on
// return), kAtoms swizzle atoms of K per pipeline step.
template <int kAtoms> struct MoeWgmmaTiles {
  static constexpr int kTileBytes = kWgmmaTileAlign + kMoeWgmmaStages * kAtoms * kMoeWgmmaAtomBytes;
  using Chunk = MoeWgmmaChunk<kAtoms>;
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
    constexpr int kChunksA = kMoeMmaRows * Chunk::kPerRow / kMoeMmaThreads;
    constexpr int kChunksB = NB * Chunk::kPerRow / kMoeMmaThreads;
    uint4 stagedA[kChunksA], stagedB[kChunksB];
    float acc[NB / 4];
    moeWgmmaK<kAtoms, 1, NB>(
        shape.D, tiles(shared), acc,
        [&](int k0) {
#pragma unroll
          for (int i = 0; i < kChunksA; ++i) {
            const Chunk c(i);
            stagedA[i] = moeGateUpChunkA<FP4>(h, shape.D, tile, c.row, k0 + c.k);
          }
#pragma unroll
          for (int i = 0; i < kChunksB; ++i) {
            const Chunk c(i);
            stagedB[i] = moeGateUpChunkB(gateUp, tile, shape, i0, c.row, k0 + c.k);
          }
        },
        [&](unsigned char *stageTiles) { // A rows [0, 64), then B
#pragma unroll
          for (int i = 0; i < kChunksA; ++i)
            Chunk(i).store(stageTiles, 0, stagedA[i]);
#pragma unroll
          for (int i = 0; i < kChunksB; ++i)
            Chunk(i).store(stageTiles, kMoeMmaRows, stagedB[i]);
        });
    moeStageAccumulators<NB / 2>(acc, stage(shared), (threadIdx.x / 128) * (NB / 2));
    __syncthreads();
  }

  // [ROWS, kMoeMmaCols] = act rows x down rows [d0, d0 + cols)^T over K = I.
  template <bool FP4, typename Rows>
  static __device__ __forceinline__ void down(const float *act, const Rows &down, const MoeShape &shape, int d0,
                                              const MoeTile &tile, unsigned char *shared) {
    constexpr int kTerms = kMoeDownTerms<FP4>, NB = kMoeMmaCols;
    constexpr int kChunksA = kMoeMmaRows * Chunk::kPerRow / kMoeMmaThreads;
    constexpr int kChunksB = NB * Chunk::kPerRow / kMoeMmaThreads;
    uint4 stagedA[kChunksA][kTerms], stagedB[kChunksB];
    float acc[NB / 4];
    moeWgmmaK<kAtoms, kTerms, NB>(
        shape.I, tiles(shared), acc,
        [&](int k0) {
#pragma unroll
          for (int i = 0; i < kChunksA; ++i) {
            const Chunk c(i);
            moeDownChunksA<FP4>(act, shape.I, tile, c.row, k0 + c.k, stagedA[i]);
          }
#pragma unroll
          for (int i = 0; i < kChunksB; ++i) {
            const Chunk c(i);
            stagedB[i] = moeDownChunkB(down, tile, shape, d0 + c.row, k0 + c.k);
          }
        },
        [&](unsigned char *stageTiles) { // A term t in rows [64t, 64t + 64), then B
#pragma unroll
          for (int i = 0; i < kChunksA; ++i)
#pragma unroll
            for (int term = 0; term < kTerms; ++term)
              Chunk(i).store(stageTiles, term * kMoeMmaRows, stagedA[i][term]);
#pragma unroll
          for (int i = 0; i < kChunksB; ++i)
            Chunk(i).store(stageTiles, kTerms * kMoeMmaRows, stagedB[i]);
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
  moeGroupedRun<FP4, MoeWgmmaTiles<moeWgmmaAtoms(FP4)>>(h, weights, experts, gateUp, down, out, shape, maxTiles, s,
                                                        dyn);
}

} // namespace v4cuda
