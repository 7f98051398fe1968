// v4.compress and v4.linear_compress: the CSA/HCA compressor
// (ref::compress, runtime/cpu/AttentionKernels.cpp; the fused op also does
// the kv/gate projections, ref::linear, FusedKernels.cpp).
//
// State (CompressState slot, [2m, 2*Cin]): row r = [kv | gate + bias]; rows
// [m, 2m) the pending window (slot s = pos % m in row m+s), rows [0, m) the
// last complete window (CSA reads its first halves for the next entry).
//
// Why this shape: the reference walks tokens in order, and the state rows
// are overwritten as windows complete, so the walk is sequential in tokens;
// but it is independent per entry channel c: channel c reads and writes only
// the state columns {c, C+c} (kv) and {Cin+c, Cin+C+c} (gate) (HCA: {c},
// {Cin+c}). So one launch does:
//   1. block b owns entry channels [b*CPB, (b+1)*CPB): for each tile of TT
//      tokens it gets its channels' kv/gate values (fused: projects h
//      against its weight rows, a small GEMM per tile), then one thread per
//      channel replays the reference's walk over the tile: store the token in
//      row m+slot; when a window completes, pool it (softmax over its m or
//      2m slots) into a per-entry f32 scratch row and copy rows [m,2m) to
//      [0,m). No other block touches these columns, so no race.
//   2. the last block to finish (state::arriveLast) rms-normalizes and ropes
//      every entry completed in this chunk (that needs all C channels) and
//      writes it to entries row w (= window index).
// One kernel for decode (T = 1: the projections are a GEMV spread over C/CPB
// blocks) and for prefill chunks (every block streams the chunk's h once:
// a GEMM tiled by TT tokens; not tensor-core fast, but one launch and no
// scratch in the arena).
#pragma once

#include <cstdint>

#include <v4cuda/Cache.cuh>
#include <v4cuda/Common.cuh>
#include <v4cuda/DenseMath.cuh>

namespace v4cuda {

struct CompressShape {
  int rate;     // m: tokens per entry
  int C;        // entry channels (head_dim)
  int D;        // fused: channels of h (0 for v4.compress)
  int ropeDim;  // rotated trailing channels of an entry
  double scaling;
  double eps;
};

constexpr int kCompressThreads = 256;

namespace state {

// Component `comp` of channel c: OVERLAP: kv c, kv C+c, gate c, gate C+c;
// else kv c, gate c. The column in kv/gate [.., Cin] and in the state row.
template <bool OVERLAP> struct CompressColumns {
  static constexpr int kComponents = OVERLAP ? 4 : 2;
  __device__ static bool isGate(int comp) { return comp >= kComponents / 2; }
  __device__ static int column(int c, int comp, int C) { return c + (comp % (kComponents / 2)) * C; }
  __device__ static int stateColumn(int c, int comp, int C, int Cin) {
    return (isGate(comp) ? Cin : 0) + column(c, comp, C);
  }
};

// v4.compress: the kv / gate rows are operands.
template <bool OVERLAP, typename KvT, typename GateT> struct LoadedColumns {
  const KvT *kv;
  const GateT *gate;
  static constexpr int kSharedFloats = 1;
  __device__ void prepareTile(int, int, int, int, const CompressShape &, float *) const {}
  __device__ float value(int, int t, int c, int comp, const CompressShape &shape, const float *, int) const {
    using Cols = CompressColumns<OVERLAP>;
    const int Cin = OVERLAP ? 2 * shape.C : shape.C;
    const long long at = static_cast<long long>(t) * Cin + Cols::column(c, comp, shape.C);
    return Cols::isGate(comp) ? toFloat(gate[at]) : toFloat(kv[at]);
  }
};

// v4.linear_compress: kv = h kv_w^T, gate = h gate_w^T for this block's
// channels, one tile of TT tokens at a time, into shared P[TT][R]
// (R = CPB * components; r = local channel * components + comp).
template <bool OVERLAP, int CPB, int TT, typename HT, typename KwT, typename GwT> struct ProjectedColumns {
  const HT *h;
  const KwT *kvWeight;   // [Cin, D]
  const GwT *gateWeight; // [Cin, D]
  using Cols = CompressColumns<OVERLAP>;
  static constexpr int R = CPB * Cols::kComponents;
  static constexpr int KT = TT == 1 ? 1 : 128; // K tile of the GEMM path
  static constexpr int kPairs = TT * R;
  // Threads per (token, row) dot product: the largest power of two <= 32
  // that keeps every pair busy.
  static constexpr int kSplit = kPairs * 32 <= kCompressThreads ? 32
                                : kPairs * 16 <= kCompressThreads ? 16
                                : kPairs * 8 <= kCompressThreads  ? 8
                                : kPairs * 4 <= kCompressThreads  ? 4
                                : kPairs * 2 <= kCompressThreads  ? 2
                                                                  : 1;
  static constexpr int kPairsPerThread = (kPairs * kSplit + kCompressThreads - 1) / kCompressThreads;
  // P, then (GEMM path) the h tile [TT][KT+1] and the weight tile [R][KT+1].
  static constexpr int kSharedFloats = TT * R + (TT == 1 ? 0 : (TT + R) * (KT + 1));

  __device__ float rowElement(int c, int comp, int k, const CompressShape &shape) const {
    const long long at = static_cast<long long>(Cols::column(c, comp, shape.C)) * shape.D + k;
    return Cols::isGate(comp) ? toFloat(gateWeight[at]) : toFloat(kvWeight[at]);
  }

  __device__ void prepareTile(int t0, int tileTokens, int c0, int, const CompressShape &shape,
                              float *shared) const {
    float *P = shared;
    const int C = shape.C, D = shape.D;
    if constexpr (TT == 1) {
      // GEMV: warp per weight row, lanes stride D (coalesced).
      const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
      for (int r = warp; r < R; r += kCompressThreads / 32) {
        const int c = c0 + r / Cols::kComponents, comp = r % Cols::kComponents;
        float sum = 0.0f;
        if (c < C && tileTokens > 0) {
          const HT *hRow = h + static_cast<long long>(t0) * D;
          if ((D & 3) == 0) { // 4 channels per lane step: one 8- or 16-byte load per operand
            const long long row = static_cast<long long>(Cols::column(c, comp, C)) * D;
#pragma unroll 4
            for (int k = 4 * lane; k < D; k += 128) {
              float x[4], w[4];
              loadVec<4>(hRow + k, x);
              if (Cols::isGate(comp))
                loadVec<4>(gateWeight + row + k, w);
              else
                loadVec<4>(kvWeight + row + k, w);
#pragma unroll
              for (int v = 0; v < 4; ++v)
                sum += x[v] * w[v];
            }
          } else {
            for (int k = lane; k < D; k += 32)
              sum += toFloat(hRow[k]) * rowElement(c, comp, k, shape);
          }
        }
        sum = warpSum(sum);
        if (lane == 0)
          P[r] = sum;
      }
    } else {
      float *hTile = shared + TT * R;          // [TT][KT+1]
      float *wTile = hTile + TT * (KT + 1);    // [R][KT+1]
      float acc[kPairsPerThread];
#pragma unroll
      for (int p = 0; p < kPairsPerThread; ++p)
        acc[p] = 0.0f;
      const int part = threadIdx.x % kSplit;
      for (int k0 = 0; k0 < D; k0 += KT) {
        for (int i = threadIdx.x; i < TT * KT; i += kCompressThreads) {
          const int tt = i / KT, k = k0 + i % KT;
          hTile[tt * (KT + 1) + i % KT] =
              tt < tileTokens && k < D ? toFloat(h[static_cast<long long>(t0 + tt) * D + k]) : 0.0f;
        }
        for (int i = threadIdx.x; i < R * KT; i += kCompressThreads) {
          const int r = i / KT, k = k0 + i % KT;
          const int c = c0 + r / Cols::kComponents, comp = r % Cols::kComponents;
          wTile[r * (KT + 1) + i % KT] = c < C && k < D ? rowElement(c, comp, k, shape) : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int p = 0; p < kPairsPerThread; ++p) {
          const int pair = threadIdx.x / kSplit + p * (kCompressThreads / kSplit);
          if (pair < kPairs) {
            const float *hRow = hTile + (pair / R) * (KT + 1);
            const float *wRow = wTile + (pair % R) * (KT + 1);
            for (int k = part; k < KT; k += kSplit)
              acc[p] += hRow[k] * wRow[k];
          }
        }
        __syncthreads();
      }
#pragma unroll
      for (int p = 0; p < kPairsPerThread; ++p) {
        float sum = acc[p];
        for (int offset = kSplit / 2; offset > 0; offset >>= 1) // groups of kSplit lanes
          sum += __shfl_xor_sync(0xffffffffu, sum, offset);
        const int pair = threadIdx.x / kSplit + p * (kCompressThreads / kSplit);
        if (part == 0 && pair < kPairs)
          P[pair] = sum; // pair = tt * R + r
      }
    }
  }

  __device__ float value(int tt, int, int c, int comp, const CompressShape &, const float *shared,
                         int c0) const {
    return shared[tt * R + (c - c0) * Cols::kComponents + comp];
  }
};

} // namespace state

// The compressor's launch: grid.x = ceil(C / CPB), kCompressThreads threads,
// dynamic shared memory = Source::kSharedFloats floats. `scratch` holds
// maxWindows * C floats (maxWindows >= windows completed by one chunk of the
// bucket: (tokens + m - 1) / m + 1); `done` is the entry's arrival counter.
// Per-row slots (a batched decode bucket): row t is session t's one token,
// against its own state and entries; a row completes at most one window,
// pooled into scratch row t (maxWindows = bucket tokens).
template <bool OVERLAP, int CPB, int TT, typename Source, typename PbT, typename NwT,
          typename StateRef, typename EntRef>
__device__ void compressChunk(const Source &source, const PbT *positionBias, const NwT *normWeight,
                              const int32_t *positions, StateRef stateSlots, EntRef entrySlots,
                              const float *invFreq, CompressShape shape, float *scratch,
                              unsigned int *done, const int32_t *dyn) {
  using Cols = state::CompressColumns<OVERLAP>;
  using StateT = state::SlotElement<StateRef>;
  using EntT = state::SlotElement<EntRef>;
  constexpr bool kPerRow = state::kPerRow<StateRef>;
  extern __shared__ float compressShared[];
  const int T = presentTokens(dyn);
  const int m = shape.rate, C = shape.C, Cin = OVERLAP ? 2 * C : C;
  const long long stateWidth = 2LL * Cin;
  const int c0 = blockIdx.x * CPB;
  const long long firstWindow = T > 0 ? positions[0] / m : 0; // scratch row 0

  for (int t0 = 0; t0 < T; t0 += TT) {
    const int tileTokens = T - t0 < TT ? T - t0 : TT;
    source.prepareTile(t0, tileTokens, c0, CPB, shape, compressShared);
    __syncthreads();
    const int c = c0 + static_cast<int>(threadIdx.x);
    if (threadIdx.x < CPB && c < C) {
      for (int tt = 0; tt < tileTokens; ++tt) {
        const int t = t0 + tt;
        StateT *stateRows = state::rowSlot(stateSlots, t);
        const long long pos = positions[t];
        const int slot = static_cast<int>(pos % m);
        StateT *pending = stateRows + (m + slot) * stateWidth;
#pragma unroll
        for (int comp = 0; comp < Cols::kComponents; ++comp) {
          float v = source.value(tt, t, c, comp, shape, compressShared, c0);
          if (Cols::isGate(comp))
            v += toFloat(positionBias[static_cast<long long>(slot) * Cin + Cols::column(c, comp, C)]);
          pending[Cols::stateColumn(c, comp, C, Cin)] = fromFloat<StateT>(v);
        }
        if (slot != m - 1)
          continue;
        // Window w = pos / m is complete: pool channel c (poolWindow).
        const long long w = pos / m;
        const bool hasPrevious = w > 0;
        auto valueAt = [&](int s, bool previous) {
          const StateT *row = stateRows + (previous ? s : m + s) * stateWidth;
          return toFloat(row[OVERLAP && !previous ? C + c : c]);
        };
        auto gateAt = [&](int s, bool previous) {
          const StateT *row = stateRows + (previous ? s : m + s) * stateWidth;
          return toFloat(row[Cin + (OVERLAP && !previous ? C + c : c)]);
        };
        const bool withPrevious = OVERLAP && hasPrevious;
        float mx = -INFINITY;
        if (withPrevious)
          for (int s = 0; s < m; ++s)
            mx = fmaxf(mx, gateAt(s, true));
        for (int s = 0; s < m; ++s)
          mx = fmaxf(mx, gateAt(s, false));
        float denom = 0.0f;
        if (withPrevious)
          for (int s = 0; s < m; ++s)
            denom += expf(gateAt(s, true) - mx);
        for (int s = 0; s < m; ++s)
          denom += expf(gateAt(s, false) - mx);
        float sum = 0.0f;
        if (withPrevious)
          for (int s = 0; s < m; ++s)
            sum += valueAt(s, true) * (expf(gateAt(s, true) - mx) / denom);
        for (int s = 0; s < m; ++s)
          sum += valueAt(s, false) * (expf(gateAt(s, false) - mx) / denom);
        scratch[(kPerRow ? t : w - firstWindow) * C + c] = sum;
        // The completed window becomes the previous one for entry w+1.
        for (int s = 0; s < m; ++s)
#pragma unroll
          for (int comp = 0; comp < Cols::kComponents; ++comp) {
            const int column = Cols::stateColumn(c, comp, C, Cin);
            stateRows[s * stateWidth + column] = stateRows[(m + s) * stateWidth + column];
          }
      }
    }
    __syncthreads(); // the next tile overwrites the shared projections
  }

  if (!state::arriveLast(done, gridDim.x) || T == 0)
    return;
  // Norm + rope of the entries completed in this chunk, one warp per entry.
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  // dyn[1]: tokens whose entries were restored from the prefix cache
  // (CudaSession::restorePages); a window below it is pooled (its state
  // moves on) but its entry is kept, as ref::compress does with frozenRows.
  const long long frozenTokens = dyn[1];
  auto finishEntry = [&](const float *pooled, EntT *entries, long long w) {
    if ((w + 1) * m <= frozenTokens)
      return; // warp-uniform: one warp per entry
    double sumSquares = 0.0;
    for (int i = lane; i < C; i += 32) {
      const float x = state::loadCoherent(pooled + i);
      sumSquares += static_cast<double>(x) * x;
    }
    const float inv = inverseRmsFromSum(warpSum(sumSquares), C, shape.eps);
    EntT *entry = entries + w * C;
    for (int pair = lane; pair < C / 2; pair += 32) {
      const int d = 2 * pair;
      float x0 = toFloat(normWeight[d]) * (state::loadCoherent(pooled + d) * inv);
      float x1 = toFloat(normWeight[d + 1]) * (state::loadCoherent(pooled + d + 1) * inv);
      const int i = state::ropePairIndex(d, C, shape.ropeDim);
      if (i >= 0) {
        float cs, sn;
        state::ropeCosSin(w * m, invFreq[i], shape.scaling, /*inverse=*/false, cs, sn);
        state::ropeRotate(x0, x1, cs, sn);
      }
      entry[d] = fromFloat<EntT>(x0);
      entry[d + 1] = fromFloat<EntT>(x1);
    }
  };
  if constexpr (kPerRow) {
    for (int t = warp; t < T; t += kCompressThreads / 32)
      if (positions[t] % m == m - 1) // this row completed window positions[t] / m
        finishEntry(scratch + static_cast<long long>(t) * C, state::rowSlot(entrySlots, t), positions[t] / m);
  } else {
    const long long entryEnd = (positions[0] + T) / m; // windows [firstWindow, entryEnd) completed
    for (long long w = firstWindow + warp; w < entryEnd; w += kCompressThreads / 32)
      finishEntry(scratch + (w - firstWindow) * C, state::rowSlot(entrySlots, 0), w);
  }
}

} // namespace v4cuda
