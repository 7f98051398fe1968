// Runs the REAL state kernel templates (include/v4cuda/{Cache,Attention,
// Compressor,Indexer,Moe}.cuh) on the CPU and compares them with the CPU
// reference kernels (runtime/cpu/ReferenceKernels.h), so their index math,
// chunk / window boundaries and block hand-offs are checked without a GPU.
//
// The emulation (testing/HostEmulation.h): one fiber per CUDA thread,
// the blocks of a launch one after another (so a "last block finishes"
// hand-off sees every other block done, as on the GPU), shared memory
// NaN-filled before each block, so a read of an element no thread wrote shows
// up as a mismatch. Each launch passes the dynamic shared bytes its emitter
// (StateEmitters.cpp) requests, so a kernel that needs more fails here.
#include "codegen/cuda/testing/HostEmulation.h"

#include <climits>
#include <cmath>
#include <random>
#include <vector>

#include <v4cuda/Attention.cuh>
#include <v4cuda/Cache.cuh>
#include <v4cuda/Compressor.cuh>
#include <v4cuda/Indexer.cuh>
#include <v4cuda/Moe.cuh>

#include <gtest/gtest.h>

#include "codegen/cuda/StateKernelTestSupport.h"
#include "codegen/cuda/testing/KernelTestSupport.h"

#include "runtime/cpu/QuantKernels.h"
#include "runtime/cpu/Quantization.h"
#include "runtime/cpu/ReferenceKernels.h"

namespace {

using v4rt::CacheBuffer;
namespace ref = v4rt::ref;

// Runs `kernel` for every block of `grid` with `threads` threads per block and
// `sharedBytes` of dynamic shared memory (the emitter's LaunchDims).
template <typename Kernel> void launch(dim3 grid, unsigned threads, size_t sharedBytes, Kernel kernel) {
  v4emu::launch(grid, dim3(threads), sharedBytes, kernel);
}

// Stored inputs: device storage of `values` and the floats it holds (what the
// reference is given, so both sides see the same inputs).
using v4emu::testing::asStored;
using v4emu::testing::randoms;
using v4emu::testing::stored;

template <typename T> std::vector<float> toFloats(const std::vector<T> &values) {
  std::vector<float> out;
  for (const T &v : values)
    out.push_back(v4cuda::toFloat(v));
  return out;
}

std::vector<int32_t> consecutive(int64_t start, int64_t count, int64_t capacity) {
  std::vector<int32_t> positions(capacity, 0);
  for (int64_t t = 0; t < count; ++t)
    positions[t] = static_cast<int32_t>(start + t);
  return positions;
}

void expectNear(const float *actual, const float *expected, int64_t count, float tolerance, const std::string &what) {
  int64_t bad = 0;
  for (int64_t i = 0; i < count && bad < 5; ++i)
    if (!(std::fabs(actual[i] - expected[i]) <= tolerance * std::max(1.0f, std::fabs(expected[i])))) {
      ADD_FAILURE() << what << "[" << i << "] = " << actual[i] << ", reference " << expected[i];
      ++bad;
    }
}

constexpr unsigned kThreads = 256; // the block size the emitters launch
constexpr int64_t kRope = 4;
const std::vector<float> kInvFreq = {1.0f, 0.01f};
const float kNaN = std::nanf("");

ref::RopeParams ropeOf(int64_t headDim) { return {headDim, kRope, kInvFreq.data(), 1.0}; }

// ---- compressor ---------------------------------------------------------------

struct CompressCase {
  int64_t m, C;
  bool overlap;
};

template <bool OV, int TT>
void deviceCompress(const CompressCase &c, bool fused, int64_t D, int64_t bucketTokens, const std::vector<float> &a,
                    const std::vector<float> &b, const std::vector<float> &h, const std::vector<float> &pb,
                    const std::vector<float> &nw, const std::vector<int32_t> &positions, std::vector<float> &state,
                    std::vector<float> &entries, unsigned &done, int32_t present, int32_t frozen) {
  const int32_t dyn[2] = {present, frozen}; // dyn[1]: tokens whose entries were restored (kept)
  const int64_t maxWindows = (bucketTokens + c.m - 1) / c.m + 1;
  std::vector<float> pooled(maxWindows * c.C, kNaN);
  const v4cuda::CompressShape shape{static_cast<int>(c.m), static_cast<int>(c.C), static_cast<int>(D),
                                    static_cast<int>(kRope), 1.0, 1e-6};
  if (fused) {
    const v4cuda::state::ProjectedColumns<OV, 1, TT, float, float, float> source{h.data(), a.data(), b.data()};
    // StateEmitters.cpp: TT * rows + (TT + rows) * (kCompressKTile + 1) floats, rows = 1 * components.
    const int64_t rows = OV ? 4 : 2, sharedFloats = TT * rows + (TT == 1 ? 0 : (TT + rows) * (128 + 1));
    launch(dim3(static_cast<unsigned>(c.C)), kThreads, sharedFloats * 4, [&] {
      v4cuda::compressChunk<OV, 1, TT>(source, pb.data(), nw.data(), positions.data(), state.data(), entries.data(),
                                       kInvFreq.data(), shape, pooled.data(), &done, dyn);
    });
  } else {
    const v4cuda::state::LoadedColumns<OV, float, float> source{a.data(), b.data()};
    launch(dim3(static_cast<unsigned>(c.C)), kThreads, 4, [&] {
      v4cuda::compressChunk<OV, 1, 32>(source, pb.data(), nw.data(), positions.data(), state.data(), entries.data(),
                                       kInvFreq.data(), shape, pooled.data(), &done, dyn);
    });
  }
}

// Feeds one session's tokens in `chunks` through the reference and the
// device template; state and entries must agree after every chunk, and no
// entry row past the completed windows may be written. Chunks of one token
// run as a decode bucket (TT = 1 for the fused GEMV path), others as a
// prefill bucket of 16 tokens (fused: GEMM tiles of 8). With `frozenTokens`,
// the entries of the windows below it are restored ones (a prefix-cache
// restore rebuilding the state): both sides must keep them as they are.
void runCompressSequence(const CompressCase &c, const std::vector<int64_t> &chunks, bool fused,
                         int64_t frozenTokens = 0) {
  const int64_t m = c.m, C = c.C, Cin = c.overlap ? 2 * C : C, D = 48;
  ref::CompressParams p;
  p.rate = m;
  p.headDim = C;
  p.overlap = c.overlap;
  p.rope = ropeOf(C);
  p.eps = 1e-6;
  const std::vector<float> pb = randoms(m * Cin, 11), nw = randoms(C, 12);
  const std::vector<float> kvW = randoms(Cin * D, 13, 0.2f), gateW = randoms(Cin * D, 14, 0.2f);
  CacheBuffer refState{2 * Cin, 2 * m, std::vector<float>(2 * m * 2 * Cin, 0.0f)};
  CacheBuffer refEntries{C, 0, {}};
  const int64_t capacity = 64;
  std::vector<float> state(2 * m * 2 * Cin, 0.0f), entries(capacity * C, kNaN);
  const int64_t frozenRows = frozenTokens / m;
  refEntries.resizeRows(frozenRows);
  refEntries.frozenRows = frozenRows;
  for (int64_t i = 0; i < frozenRows * C; ++i)
    refEntries.data[i] = entries[i] = 7.0f + static_cast<float>(i); // not what the compressor would write
  unsigned done = 0;
  int64_t start = 0;
  for (int64_t T : chunks) {
    const int64_t bucket = T == 1 ? 1 : 16;
    ASSERT_LE(T, bucket);
    const std::vector<int32_t> positions = consecutive(start, T, bucket);
    std::vector<float> a, b, h;
    std::vector<float> kv(bucket * Cin, 0.0f), gate(bucket * Cin, 0.0f);
    if (fused) {
      h = randoms(bucket * D, 100 + static_cast<uint32_t>(start));
      a = kvW;
      b = gateW;
      ref::linear(h.data(), T, D, kvW.data(), Cin, kv.data(), nullptr);
      ref::linear(h.data(), T, D, gateW.data(), Cin, gate.data(), nullptr);
    } else {
      kv = randoms(bucket * Cin, 200 + static_cast<uint32_t>(start));
      gate = randoms(bucket * Cin, 300 + static_cast<uint32_t>(start), 3.0f);
      a = kv;
      b = gate;
    }
    ref::compress(kv.data(), gate.data(), T, pb.data(), nw.data(), positions.data(), p, refState, refEntries);
    const int32_t present = static_cast<int32_t>(T);
    if (c.overlap) {
      if (fused && bucket == 1)
        deviceCompress<true, 1>(c, true, D, bucket, a, b, h, pb, nw, positions, state, entries, done, present,
                                       static_cast<int32_t>(frozenTokens));
      else
        deviceCompress<true, 8>(c, fused, D, bucket, a, b, h, pb, nw, positions, state, entries, done, present,
                                       static_cast<int32_t>(frozenTokens));
    } else {
      if (fused && bucket == 1)
        deviceCompress<false, 1>(c, true, D, bucket, a, b, h, pb, nw, positions, state, entries, done, present,
                                       static_cast<int32_t>(frozenTokens));
      else
        deviceCompress<false, 8>(c, fused, D, bucket, a, b, h, pb, nw, positions, state, entries, done, present,
                                       static_cast<int32_t>(frozenTokens));
    }
    start += T;
    const std::string at = "after tokens [" + std::to_string(start - T) + ", " + std::to_string(start) + ")";
    EXPECT_EQ(done, 0u) << "the arrival counter must be reset by the last block";
    // The fused path projects in another summation order: equal to ~1e-6.
    expectNear(state.data(), refState.data.data(), static_cast<int64_t>(state.size()), fused ? 2e-5f : 0.0f,
               "state " + at);
    expectNear(entries.data(), refEntries.data.data(), refEntries.rows * C, fused ? 2e-5f : 2e-6f, "entries " + at);
    for (int64_t i = refEntries.rows * C; i < capacity * C; ++i)
      if (!std::isnan(entries[i])) {
        ADD_FAILURE() << "entries row " << i / C << " written " << at << " (only " << refEntries.rows << " complete)";
        break;
      }
  }
  EXPECT_GE(refEntries.rows, 3) << "the sequence must complete several windows";
}

// Chunks that start and end mid-window, single tokens, several windows per chunk.
const std::vector<int64_t> kChunks = {6, 1, 1, 7, 3, 13, 1, 1, 1, 1, 5, 16, 2};

TEST(StateKernelsOnHost, CompressCsaMatchesReference) { runCompressSequence({4, 16, true}, kChunks, false); }
TEST(StateKernelsOnHost, CompressHcaMatchesReference) { runCompressSequence({8, 16, false}, kChunks, false); }
TEST(StateKernelsOnHost, LinearCompressCsaMatchesReference) { runCompressSequence({4, 16, true}, kChunks, true); }
TEST(StateKernelsOnHost, LinearCompressHcaMatchesReference) { runCompressSequence({8, 16, false}, kChunks, true); }
// A restore rebuilding the window state over tokens whose entries came from
// the prefix cache (dyn[1] = 24: CSA windows 0..5, HCA windows 0..2 kept).
TEST(StateKernelsOnHost, CompressKeepsFrozenEntries) {
  runCompressSequence({4, 16, true}, kChunks, false, 24);
  runCompressSequence({8, 16, false}, kChunks, true, 24);
}

// ---- window ring -------------------------------------------------------------

TEST(StateKernelsOnHost, CacheAppendAndRopeCacheAppendMatchReference) {
  const int64_t W = 8, width = 32, bucket = 16;
  for (int64_t T : {1, 5, 12}) {
    const std::vector<int32_t> positions = consecutive(21, T, bucket);
    const std::vector<float> kv = randoms(bucket * width, static_cast<uint32_t>(T));
    const int32_t dyn[1] = {static_cast<int32_t>(T)};
    // cache_append
    CacheBuffer ring{width, W, randoms(W * width, 7)};
    std::vector<float> device = ring.data;
    ref::cacheAppend(ring, kv.data(), positions.data(), T);
    launch(dim3(static_cast<unsigned>(std::min(bucket, W))), 32, 0,
           [&] { v4cuda::cacheAppendRows(device.data(), kv.data(), positions.data(), W, width, dyn); });
    expectNear(device.data(), ring.data.data(), W * width, 0.0f, "cache_append T=" + std::to_string(T));
    // rope_cache_append
    CacheBuffer ring2{width, W, randoms(W * width, 8)};
    std::vector<float> device2 = ring2.data, roped(bucket * width, kNaN), refRoped(T * width);
    ref::rope(kv.data(), positions.data(), T, width, ropeOf(width), false, refRoped.data());
    ref::cacheAppend(ring2, refRoped.data(), positions.data(), T);
    launch(dim3(static_cast<unsigned>(bucket)), 32, 0, [&] {
      v4cuda::ropeCacheAppendRows(kv.data(), positions.data(), roped.data(), device2.data(), kInvFreq.data(), W,
                                  width, width, kRope, 1.0, false, dyn);
    });
    expectNear(roped.data(), refRoped.data(), T * width, 0.0f, "roped T=" + std::to_string(T));
    expectNear(device2.data(), ring2.data.data(), W * width, 0.0f, "rope ring T=" + std::to_string(T));
    EXPECT_TRUE(std::isnan(roped[T * width])) << "a row past the present tokens was written";
  }
}

// ---- attention -----------------------------------------------------------------

template <int HD, int HG, typename S>
void runAttention(int64_t rate, bool useEntries, bool useTopk, int64_t chunkStart, int64_t T) {
  const int64_t H = 4, W = 8, K = 5, bucket = 16;
  const std::vector<int32_t> positions = consecutive(chunkStart, T, bucket);
  const std::vector<float> q = asStored<S>(randoms(bucket * H * HD, 1)), kv = asStored<S>(randoms(bucket * HD, 2)),
                           sinks = randoms(H, 3);
  const CacheBuffer ring{HD, W, asStored<S>(randoms(W * HD, 4))};
  const int64_t entryRows = rate > 0 ? (chunkStart + T) / rate : 0;
  const CacheBuffer entries{HD, entryRows, asStored<S>(randoms(std::max<int64_t>(1, entryRows) * HD, 5))};
  std::vector<int32_t> topk(bucket * K, -1);
  std::mt19937 rng(9);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < K; ++i) // some -1, some not yet visible to this token
      topk[t * K + i] = static_cast<int32_t>(rng() % (entryRows + 2)) - 1;
  const ref::AttentionParams p =
      v4cuda::testing::attentionParams(H, HD, W, rate, 1.0 / std::sqrt(static_cast<double>(HD)), useTopk ? K : 0);
  std::vector<float> expected(T * H * HD);
  std::vector<S> out(bucket * H * HD + 1, v4cuda::fromFloat<S>(kNaN));
  ref::attention(q.data(), kv.data(), sinks.data(), positions.data(), T, ring, useEntries ? &entries : nullptr,
                 useTopk ? topk.data() : nullptr, p, expected.data(), nullptr);
  const std::vector<S> qs = stored<S>(q), kvs = stored<S>(kv), rings = stored<S>(ring.data),
                       entriesStored = stored<S>(entries.data);
  const v4cuda::AttentionShape shape{static_cast<int>(H), static_cast<int>(W), static_cast<int>(rate),
                                     static_cast<int>(p.topKWidth), static_cast<float>(p.scale)};
  const int32_t dyn[1] = {static_cast<int32_t>(T)};
  launch(dim3(static_cast<unsigned>(bucket * (H / HG))), kThreads, (kThreads / 32 * HD + 2 * kThreads / 32) * 4, [&] {
    v4cuda::attentionHeads<HD, HG>(qs.data(), kvs.data(), sinks.data(), positions.data(), rings.data(),
                                   useEntries ? entriesStored.data() : nullptr, useTopk ? topk.data() : nullptr,
                                   out.data(), shape, dyn);
  });
  const std::vector<float> actual = toFloats(out);
  expectNear(actual.data(), expected.data(), T * H * HD, sizeof(S) == 4 ? 2e-6f : 8e-3f,
             "attention hd " + std::to_string(HD) + " rate " + std::to_string(rate) + " start " +
                 std::to_string(chunkStart) + " T " + std::to_string(T));
  EXPECT_TRUE(std::isnan(actual[T * H * HD])) << "a row past the present tokens was written";
}

TEST(StateKernelsOnHost, AttentionMatchesReference) {
  for (auto [start, T] : {std::pair<int64_t, int64_t>{0, 1}, {0, 13}, {3, 1}, {21, 1}, {21, 6}, {37, 16}}) {
    runAttention<32, 4, float>(0, false, false, start, T); // sliding
    runAttention<32, 2, float>(4, true, false, start, T);  // HCA-like: every visible entry
    runAttention<32, 1, float>(4, true, true, start, T);   // CSA: the top-k entries
  }
}

// head_dim a multiple of 128: 4 channels per lane (16-byte f32, 8-byte bf16 loads).
TEST(StateKernelsOnHost, AttentionVectorLanesMatchReference) {
  for (auto [start, T] : {std::pair<int64_t, int64_t>{0, 3}, {21, 1}, {37, 5}}) {
    runAttention<128, 2, float>(4, true, true, start, T);
    runAttention<128, 4, __nv_bfloat16>(4, true, true, start, T);
    runAttention<128, 1, __nv_bfloat16>(4, true, false, start, T);
  }
}

// ---- indexer ---------------------------------------------------------------------

template <int BUF, typename S = float>
void runIndexer(int64_t K, int64_t chunkStart, int64_t T, unsigned splits, bool ties) {
  constexpr int DI = 16;
  const int64_t H = 16, m = 4, bucket = 8;
  const std::vector<int32_t> positions = consecutive(chunkStart, T, bucket);
  const int64_t rows = (chunkStart + T) / m;
  CacheBuffer keys{DI, rows, asStored<S>(randoms(rows * DI, 21))};
  if (ties) // the lower index must come first
    v4cuda::testing::repeatEverySeventhRow(keys.data, DI, rows);
  const std::vector<float> q = asStored<S>(randoms(bucket * H * DI, 22)), weights = asStored<S>(randoms(bucket * H, 23));
  const std::vector<S> qs = stored<S>(q), ws = stored<S>(weights);
  const ref::IndexerParams p = v4cuda::testing::indexerParams(H, DI, K, m, 0.25);
  std::vector<int32_t> expected(T * K), out(bucket * K, INT_MIN);
  ref::indexerTopK(q.data(), weights.data(), positions.data(), T, keys, p, expected.data(), nullptr);
  std::vector<float> scratchScore(bucket * splits * K, kNaN);
  std::vector<int> scratchIndex(bucket * splits * K, -7);
  std::vector<unsigned> done(bucket, 0);
  const int32_t dyn[1] = {static_cast<int32_t>(T)};
  const v4cuda::IndexerShape shape{static_cast<int>(H), static_cast<int>(K), static_cast<int>(m), 0.25f, 0.25f};
  const std::vector<S> keyRows = stored<S>(keys.data);
  launch(dim3(static_cast<unsigned>(bucket), splits), kThreads, (H * DI + H) * 4 + BUF * 8 + 16, [&] {
    v4cuda::indexerTopK<DI, BUF>(qs.data(), ws.data(), positions.data(), keyRows.data(), out.data(), shape,
                                 scratchScore.data(), scratchIndex.data(), done.data(), dyn);
  });
  for (int64_t i = 0; i < T * K; ++i)
    if (out[i] != expected[i]) {
      ADD_FAILURE() << "top-k token " << i / K << " slot " << i % K << ": " << out[i] << ", reference " << expected[i]
                    << " (K " << K << ", start " << chunkStart << ", splits " << splits << ")";
      break;
    }
  EXPECT_EQ(out[T * K], INT_MIN) << "a row past the present tokens was written";
  for (int64_t t = 0; t < bucket; ++t)
    EXPECT_EQ(done[t], 0u);
}

TEST(StateKernelsOnHost, IndexerTopKMatchesReference) {
  runIndexer<512>(4, 0, 5, 1, false);      // fewer visible entries than K at first: -1 padding
  runIndexer<512>(4, 37, 5, 1, true);      // ties
  runIndexer<512>(16, 2990, 5, 1, false);  // ~750 keys: several passes, compaction, threshold
  runIndexer<512>(16, 2990, 1, 3, true);   // decode split over 3 blocks + merge
  runIndexer<512>(4, 9, 1, 5, false);      // splits with empty ranges
  runIndexer<1024>(300, 2990, 2, 2, true); // K above one pass
  runIndexer<512, __nv_bfloat16>(16, 2990, 3, 1, true); // bf16 rows: 16-byte loads of 8 channels
  runIndexer<512, __nv_bfloat16>(16, 2990, 1, 4, false);
}

// ---- experts -----------------------------------------------------------------------

template <typename S = float, int V = 4, int TOK = 8>
void runMoe(bool fp4, int64_t T, int64_t D, int64_t I, bool split, bool sameExperts = false) {
  const int64_t E = 8, k = 2, bucket = split ? 1 : std::max<int64_t>(8, T);
  const std::vector<float> h = asStored<S>(randoms(bucket * D, 31)),
                           gateUp = asStored<S>(randoms(E * 2 * I * D, 32, 0.3f)),
                           down = asStored<S>(randoms(E * D * I, 33, 0.3f)), weights = randoms(bucket * k, 34);
  const std::vector<S> hs = stored<S>(h), gateUpStored = stored<S>(gateUp), downStored = stored<S>(down);
  std::vector<int32_t> experts(bucket * k);
  for (int64_t i = 0; i < bucket * k; ++i)
    experts[i] = static_cast<int32_t>(sameExperts ? (i / k) % E : (i * 5 + 3) % E); // sameExperts: both slots
  ref::MoeParams p{E, k, D, I, 7.0};
  std::vector<float> expected(T * D);
  std::vector<S> out(bucket * D + 1, v4cuda::fromFloat<S>(kNaN));
  std::vector<uint8_t> guCodes(gateUp.size()), dnCodes(down.size());
  std::vector<uint8_t> guScales(E * 2 * I * ((D + 31) / 32)), dnScales(E * D * ((I + 31) / 32));
  if (fp4) {
    using namespace v4rt::quant;
    quantizeBlocks(gateUp.data(), E * 2 * I, D, {1, 32}, Format::E2M1, guCodes.data(), guScales.data());
    quantizeBlocks(down.data(), E * D, I, {1, 32}, Format::E2M1, dnCodes.data(), dnScales.data());
    ref::moeFp4(h.data(), T, weights.data(), experts.data(), guCodes.data(), guScales.data(), dnCodes.data(),
                dnScales.data(), 32, p, expected.data(), nullptr);
  } else {
    ref::moe(h.data(), T, weights.data(), experts.data(), gateUp.data(), down.data(), p, expected.data(), nullptr);
  }
  const v4cuda::MoeShape shape{static_cast<int>(E), static_cast<int>(k), static_cast<int>(D), static_cast<int>(I), 7.0f};
  const int32_t dyn[1] = {static_cast<int32_t>(T)};
  const int slice = I % 128 == 0 ? 128 : static_cast<int>(I);
  std::vector<float> accumulator(bucket * D, 0.0f);
  std::vector<unsigned> done(bucket, 0);
  auto run = [&](const auto &gu, const auto &dn) {
    if (split)
      launch(dim3(static_cast<unsigned>(bucket * k * (I / slice))), kThreads, (D + slice) * 4, [&] {
        if (fp4)
          v4cuda::moeSplit<V, true>(hs.data(), weights.data(), experts.data(), gu, dn, out.data(), shape, slice,
                                    accumulator.data(), done.data(), dyn);
        else
          v4cuda::moeSplit<V, false>(hs.data(), weights.data(), experts.data(), gu, dn, out.data(), shape, slice,
                                     accumulator.data(), done.data(), dyn);
      });
    else
      launch(dim3(static_cast<unsigned>(E * (I / slice))), kThreads, (TOK * (D + slice) + kThreads + 1 + TOK) * 4, [&] {
        if (fp4)
          v4cuda::moeGrouped<V, true, TOK>(hs.data(), weights.data(), experts.data(), gu, dn, out.data(), shape,
                                           slice, accumulator.data(), done.data(), dyn);
        else
          v4cuda::moeGrouped<V, false, TOK>(hs.data(), weights.data(), experts.data(), gu, dn, out.data(), shape,
                                            slice, accumulator.data(), done.data(), dyn);
      });
  };
  if (fp4)
    run(v4cuda::state::Fp4ExpertRows{guCodes.data(), guScales.data(), static_cast<int>(D), 32},
        v4cuda::state::Fp4ExpertRows{dnCodes.data(), dnScales.data(), static_cast<int>(I), 32});
  else
    run(v4cuda::state::DenseExpertRows<S>{gateUpStored.data(), static_cast<int>(D)},
        v4cuda::state::DenseExpertRows<S>{downStored.data(), static_cast<int>(I)});
  const std::vector<float> actual = toFloats(out);
  expectNear(actual.data(), expected.data(), T * D, sizeof(S) == 4 ? 1e-5f : 8e-3f,
             std::string(fp4 ? "moe_fp4" : "moe") + (split ? " split" : " tokens") + " D " + std::to_string(D));
  EXPECT_TRUE(std::isnan(actual[T * D])) << "a row past the present tokens was written";
  for (float a : accumulator)
    ASSERT_EQ(a, 0.0f) << "the accumulator must be cleared for the next launch";
  for (unsigned c : done)
    ASSERT_EQ(c, 0u) << "the per-token counters must be reset for the next launch";
}

TEST(StateKernelsOnHost, MoeMatchesReference) {
  runMoe(false, 5, 64, 48, false);
  runMoe(false, 1, 64, 48, true);
  runMoe(false, 1, 128, 256, true); // two slices of 128
  runMoe<__nv_bfloat16>(false, 5, 64, 48, false);
  runMoe<__nv_bfloat16, 8>(false, 1, 128, 256, true); // 16-byte loads of 8 bf16
  runMoe<float, 1>(false, 5, 64, 48, false);          // scalar loads
  runMoe<float, 4, 4>(false, 130, 64, 48, false);      // 260 (token, slot) pairs: two id scans, groups of 4
  runMoe<float, 4, 8>(false, 19, 64, 48, false, true); // both slots of a token on one expert
}

TEST(StateKernelsOnHost, MoeFp4MatchesReference) {
  runMoe(true, 5, 64, 48, false);
  runMoe(true, 1, 64, 48, true);
  runMoe(true, 1, 256, 256, true); // two slices, two e4m3 groups of h
  runMoe<float, 16>(true, 5, 64, 48, false); // 16 codes per load (what the emitter picks)
  runMoe<float, 16>(true, 1, 256, 256, true);
  runMoe<float, 8>(true, 1, 64, 48, true);
  runMoe<float, 16, 4>(true, 12, 128, 256, false); // prefill: two slices, groups of 4
}

} // namespace
