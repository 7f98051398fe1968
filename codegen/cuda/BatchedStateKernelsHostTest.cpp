// The state kernels in a batched decode bucket (continuous batching): B rows,
// row r = the next token of session r at its own position, every cache
// operand a table of the rows' slot bases (v4cuda::RowSlots; KernelEmitter.h,
// "Entry ABI"). Each kernel runs on the host emulation (testing/HostEmulation.h)
// with the launch geometry and template arguments its emitter picks for a
// decode bucket of 4 sessions with 3 present, and each row must equal the CPU
// reference kernel run on that session's own cache as a one-token chunk. The
// fourth row's slot is null and its outputs must stay untouched.
#include "codegen/cuda/testing/HostEmulation.h"

#include <climits>
#include <cmath>
#include <random>
#include <vector>

#include <v4cuda/Attention.cuh>
#include <v4cuda/Cache.cuh>
#include <v4cuda/Compressor.cuh>
#include <v4cuda/Indexer.cuh>

#include <gtest/gtest.h>

#include "codegen/cuda/StateKernelTestSupport.h"
#include "codegen/cuda/testing/KernelTestSupport.h"

#include "runtime/cpu/ReferenceKernels.h"

namespace {

using v4emu::testing::arg;
using v4emu::testing::asStored;
using v4emu::testing::EmittedKernel;
using v4emu::testing::emitInBucket;
using v4emu::testing::floatAttr;
using v4emu::testing::intAttr;
using v4emu::testing::kNaN;
using v4emu::testing::launchEntry;
using v4emu::testing::randoms;
using v4emu::testing::str;
using v4emu::testing::weight;
using v4rt::ArgKind;
using v4rt::ArgRef;
using v4rt::CacheBuffer;
using v4rt::CacheKind;
using v4rt::DType;
namespace ref = v4rt::ref;

constexpr int64_t kBucket = 4;  // decode_4
constexpr int64_t kPresent = 3; // sessions in this step (dyn[0])
// dyn[0]: rows present; dyn[1]: no restored (frozen) entries, as in any decode step.
const int32_t kDyn[2] = {static_cast<int32_t>(kPresent), 0};
constexpr int64_t kRope = 4;
const std::vector<double> kInvFreq = {1.0, 0.01};
const std::vector<float> kInvFreqF = {1.0f, 0.01f};

// One step of `op` in a decode bucket of kBucket sessions, emitted by its
// emitter; `caches` are the program's slots the cache ArgRefs index.
class BatchedStep {
public:
  std::vector<v4rt::CacheSlot> caches;

  ArgRef cache(CacheKind kind, int64_t rows, int64_t width, int64_t rate) {
    v4rt::CacheSlot slot;
    slot.name = "layers.0.slot" + str(static_cast<int64_t>(caches.size()));
    slot.kind = kind;
    slot.rows = rows;
    slot.width = width;
    slot.rate = rate;
    caches.push_back(slot);
    ArgRef ref = arg(DType::F32, {rows, width}, ArgKind::Cache);
    ref.index = static_cast<uint32_t>(caches.size() - 1);
    return ref;
  }
  static ArgRef positions() {
    ArgRef ref = arg(DType::I32, {kBucket}, ArgKind::Input);
    ref.index = 1;
    return ref;
  }
  static ArgRef rows(int64_t width, DType dtype = DType::F32) { return arg(dtype, {kBucket, width}); }

  EmittedKernel emit(const std::string &op, std::vector<ArgRef> ins, std::vector<ArgRef> outs,
                     std::vector<v4rt::Attr> attrs) const {
    v4rt::Bucket bucket;
    bucket.name = "decode_" + str(kBucket);
    bucket.kind = v4rt::BucketKind::Decode;
    bucket.tokens = kBucket;
    bucket.batch = kBucket;
    return emitInBucket(op, std::move(bucket), caches, std::move(ins), std::move(outs), std::move(attrs));
  }
};

std::vector<v4rt::Attr> ropeAttrs(int64_t headDim) {
  return {intAttr("head_dim", {headDim}), intAttr("rope_dim", {kRope}), floatAttr("inv_freq", kInvFreq),
          floatAttr("scaling", {1.0})};
}
ref::RopeParams ropeOf(int64_t headDim) { return {headDim, kRope, kInvFreqF.data(), 1.0}; }

// The slot table of the present sessions' device copies; row kBucket-1 is null.
template <typename T> std::vector<T *> slotTable(std::vector<std::vector<float>> &slots) {
  std::vector<T *> table(kBucket, nullptr);
  for (int64_t r = 0; r < kPresent; ++r)
    table[r] = slots[r].data();
  return table;
}

void expectEqualRows(const std::vector<float> &actual, const std::vector<float> &expected, int64_t count,
                     float tolerance, const std::string &what) {
  int bad = 0;
  for (int64_t i = 0; i < count && bad < 5; ++i)
    if (!(std::fabs(actual[i] - expected[i]) <= tolerance * std::max(1.0f, std::fabs(expected[i])))) {
      ADD_FAILURE() << what << "[" << i << "] = " << actual[i] << ", reference " << expected[i];
      ++bad;
    }
}

void expectUntouched(const std::vector<float> &values, int64_t from, const std::string &what) {
  for (size_t i = static_cast<size_t>(from); i < values.size(); ++i)
    if (!std::isnan(values[i])) {
      ADD_FAILURE() << what << ": element " << i << " past the present rows was written";
      return;
    }
}

// ---- window ring -------------------------------------------------------------

// Window rings smaller than the batch too: a chunk keeps only its last W
// tokens, a batch keeps every row (each in its own ring).
TEST(BatchedStateKernelsOnHost, CacheAppendWritesEachSessionsRing) {
  const int64_t width = 32;
  const std::vector<int32_t> positions = {5, 21, 0, 0};
  for (int64_t W : {8, 2}) {
    BatchedStep b;
    const ArgRef window = b.cache(CacheKind::Window, W, width, 0);
    const EmittedKernel kernel = b.emit("v4.cache_append", {window, b.rows(width), b.positions()}, {window}, {});
    const std::vector<float> kv = randoms(kBucket * width, 3);
    std::vector<CacheBuffer> rings;
    std::vector<std::vector<float>> device;
    for (int64_t r = 0; r < kPresent; ++r) {
      rings.push_back({width, W, randoms(W * width, 10 + static_cast<uint32_t>(r))});
      device.push_back(rings.back().data);
    }
    const std::vector<float *> table = slotTable<float>(device);
    launchEntry(kernel, "v4cuda::cacheAppendRows(v4cuda::RowSlots<float>{out0}, ", [&] {
      v4cuda::cacheAppendRows(v4cuda::RowSlots<float>{table.data()}, kv.data(), positions.data(), W, width, kDyn);
    });
    for (int64_t r = 0; r < kPresent; ++r) {
      ref::cacheAppend(rings[r], kv.data() + r * width, &positions[r], 1);
      expectEqualRows(device[r], rings[r].data, W * width, 0.0f, "ring of session " + str(r) + " W " + str(W));
    }
  }
}

TEST(BatchedStateKernelsOnHost, RopeCacheAppendWritesEachSessionsRing) {
  const int64_t width = 32, W = 2;
  const std::vector<int32_t> positions = {5, 21, 130, 0};
  BatchedStep b;
  const ArgRef window = b.cache(CacheKind::Window, W, width, 0);
  std::vector<v4rt::Attr> attrs = ropeAttrs(width);
  attrs.push_back(intAttr("inverse", {0}));
  const EmittedKernel kernel = b.emit("v4.rope_cache_append", {window, b.rows(width), b.positions()},
                                      {b.rows(width), window}, attrs);
  const std::vector<float> kv = randoms(kBucket * width, 4);
  std::vector<float> roped(kBucket * width, kNaN);
  std::vector<CacheBuffer> rings;
  std::vector<std::vector<float>> device;
  for (int64_t r = 0; r < kPresent; ++r) {
    rings.push_back({width, W, randoms(W * width, 20 + static_cast<uint32_t>(r))});
    device.push_back(rings.back().data);
  }
  const std::vector<float *> table = slotTable<float>(device);
  launchEntry(kernel, "v4cuda::ropeCacheAppendRows(in1, in2, out0, v4cuda::RowSlots<float>{out1}, ", [&] {
    v4cuda::ropeCacheAppendRows(kv.data(), positions.data(), roped.data(), v4cuda::RowSlots<float>{table.data()},
                                kInvFreqF.data(), W, width, width, kRope, 1.0, false, kDyn);
  });
  for (int64_t r = 0; r < kPresent; ++r) {
    std::vector<float> expected(width);
    ref::rope(kv.data() + r * width, &positions[r], 1, width, ropeOf(width), false, expected.data());
    ref::cacheAppend(rings[r], expected.data(), &positions[r], 1);
    expectEqualRows(std::vector<float>(roped.begin() + r * width, roped.end()), expected, width, 0.0f,
                    "roped row " + str(r));
    expectEqualRows(device[r], rings[r].data, W * width, 0.0f, "ring of session " + str(r));
  }
  expectUntouched(roped, kPresent * width, "roped");
}

// ---- attention -----------------------------------------------------------------

enum class Candidates { Window, AllEntries, TopK };

void runBatchedAttention(Candidates mode) {
  constexpr int HD = 32;
  const int64_t H = 4, W = 8, K = 5, rate = mode == Candidates::Window ? 0 : 4;
  const std::vector<int32_t> positions = {3, 21, 37, 0};
  BatchedStep b;
  std::vector<ArgRef> ins = {b.rows(H * HD), b.rows(HD), weight(DType::F32, {H}), b.positions(),
                             b.cache(CacheKind::Window, W, HD, 0)};
  if (mode != Candidates::Window)
    ins.push_back(b.cache(CacheKind::Entries, 0, HD, rate));
  if (mode == Candidates::TopK)
    ins.push_back(b.rows(K, DType::I32));
  const double scale = 1.0 / std::sqrt(static_cast<double>(HD));
  const EmittedKernel kernel =
      b.emit("v4.attention", ins, {b.rows(H * HD)},
             {intAttr("num_heads", {H}), intAttr("head_dim", {HD}), intAttr("window", {W}),
              intAttr("rate", {rate}), floatAttr("scale", {scale})});

  const std::vector<float> q = randoms(kBucket * H * HD, 1), kv = randoms(kBucket * HD, 2), sinks = randoms(H, 3);
  std::vector<CacheBuffer> rings, entries;
  std::vector<std::vector<float>> ringSlots, entrySlots;
  std::vector<int32_t> topk(kBucket * K, -1);
  std::mt19937 rng(9);
  for (int64_t r = 0; r < kPresent; ++r) {
    rings.push_back({HD, W, randoms(W * HD, 40 + static_cast<uint32_t>(r))});
    ringSlots.push_back(rings.back().data);
    const int64_t visible = rate > 0 ? (positions[r] + 1) / rate : 0;
    entries.push_back({HD, visible, randoms(std::max<int64_t>(1, visible) * HD, 50 + static_cast<uint32_t>(r))});
    entrySlots.push_back(entries.back().data);
    entrySlots.back().resize(64 * HD, kNaN); // capacity past the visible rows
    for (int64_t i = 0; i < K; ++i) // some -1, some not visible to this row
      topk[r * K + i] = static_cast<int32_t>(rng() % (visible + 2)) - 1;
  }
  const ref::AttentionParams p =
      v4cuda::testing::attentionParams(H, HD, W, rate, scale, mode == Candidates::TopK ? K : 0);
  std::vector<float> expected(kPresent * H * HD);
  for (int64_t r = 0; r < kPresent; ++r)
    ref::attention(q.data() + r * H * HD, kv.data() + r * HD, sinks.data(), &positions[r], 1, rings[r],
                   mode == Candidates::Window ? nullptr : &entries[r],
                   mode == Candidates::TopK ? topk.data() + r * K : nullptr, p, expected.data() + r * H * HD, nullptr);

  const std::vector<const float *> ringTable = slotTable<const float>(ringSlots),
                                   entryTable = slotTable<const float>(entrySlots);
  std::vector<float> out(kBucket * H * HD, kNaN);
  const v4cuda::AttentionShape shape{static_cast<int>(H), static_cast<int>(W), static_cast<int>(rate),
                                     static_cast<int>(p.topKWidth), static_cast<float>(scale)};
  const v4cuda::RowSlots<const float> windows{ringTable.data()};
  const std::string call = "v4cuda::attentionHeads<32, 4>(in0, in1, in2, in3, v4cuda::RowSlots<const float>{in4}, ";
  if (mode == Candidates::Window)
    launchEntry(kernel, call + "static_cast<const float *>(nullptr), ", [&] {
      v4cuda::attentionHeads<HD, 4>(q.data(), kv.data(), sinks.data(), positions.data(), windows,
                                    static_cast<const float *>(nullptr), static_cast<const int32_t *>(nullptr),
                                    out.data(), shape, kDyn);
    });
  else
    launchEntry(kernel, call + "v4cuda::RowSlots<const float>{in5}, ", [&] {
      v4cuda::attentionHeads<HD, 4>(q.data(), kv.data(), sinks.data(), positions.data(), windows,
                                    v4cuda::RowSlots<const float>{entryTable.data()},
                                    mode == Candidates::TopK ? topk.data() : nullptr, out.data(), shape, kDyn);
    });
  expectEqualRows(out, expected, kPresent * H * HD, 2e-6f, "attention mode " + str(static_cast<int>(mode)));
  expectUntouched(out, kPresent * H * HD, "attention");
}

TEST(BatchedStateKernelsOnHost, AttentionReadsEachSessionsCaches) {
  runBatchedAttention(Candidates::Window);
  runBatchedAttention(Candidates::AllEntries);
  runBatchedAttention(Candidates::TopK);
}

// ---- indexer ---------------------------------------------------------------------

TEST(BatchedStateKernelsOnHost, IndexerScoresEachSessionsKeys) {
  constexpr int DI = 16;
  const int64_t H = 16, m = 4, K = 16;
  const std::vector<int32_t> positions = {9, 2990, 37, 0}; // 2, 747 and 9 visible keys
  BatchedStep b;
  const EmittedKernel kernel = b.emit(
      "v4.indexer_topk", {b.rows(H * DI), b.rows(H), b.positions(), b.cache(CacheKind::Entries, 0, DI, m)},
      {b.rows(K, DType::I32)},
      {intAttr("heads", {H}), intAttr("head_dim", {DI}), intAttr("top_k", {K}), intAttr("rate", {m}),
       floatAttr("weight_scale", {0.25}), floatAttr("score_scale", {0.25})});
  const unsigned splits = kernel.dims.grid[1];
  ASSERT_GT(splits, 1u) << "a decode bucket splits each row's keys over several blocks";
  const std::vector<float> q = randoms(kBucket * H * DI, 22), weights = randoms(kBucket * H, 23);
  std::vector<CacheBuffer> keys;
  std::vector<std::vector<float>> keySlots;
  for (int64_t r = 0; r < kPresent; ++r) {
    const int64_t rows = (positions[r] + 1) / m;
    keys.push_back({DI, rows, randoms(rows * DI, 60 + static_cast<uint32_t>(r))});
    if (r == 1) // ties: the lower index first
      v4cuda::testing::repeatEverySeventhRow(keys[r].data, DI, rows);
    keySlots.push_back(keys.back().data);
  }
  const ref::IndexerParams p = v4cuda::testing::indexerParams(H, DI, K, m, 0.25);
  std::vector<int32_t> expected(kPresent * K), out(kBucket * K, INT_MIN);
  for (int64_t r = 0; r < kPresent; ++r)
    ref::indexerTopK(q.data() + r * H * DI, weights.data() + r * H, &positions[r], 1, keys[r], p,
                     expected.data() + r * K, nullptr);
  std::vector<float> scratchScore(kBucket * splits * K, kNaN);
  std::vector<int> scratchIndex(kBucket * splits * K, -7);
  std::vector<unsigned> done(kBucket, 0);
  const std::vector<const float *> table = slotTable<const float>(keySlots);
  const v4cuda::IndexerShape shape{static_cast<int>(H), static_cast<int>(K), static_cast<int>(m), 0.25f, 0.25f};
  launchEntry(kernel, "v4cuda::indexerTopK<16, 512>(in0, in1, in2, v4cuda::RowSlots<const float>{in3}, out0, ", [&] {
    v4cuda::indexerTopK<DI, 512>(q.data(), weights.data(), positions.data(), v4cuda::RowSlots<const float>{table.data()},
                                 out.data(), shape, scratchScore.data(), scratchIndex.data(), done.data(), kDyn);
  });
  for (int64_t i = 0; i < kPresent * K; ++i)
    if (out[i] != expected[i]) {
      ADD_FAILURE() << "top-k of session " << i / K << " slot " << i % K << ": " << out[i] << ", reference "
                    << expected[i];
      break;
    }
  EXPECT_EQ(out[kPresent * K], INT_MIN) << "the row past the present sessions was written";
  for (unsigned c : done)
    EXPECT_EQ(c, 0u) << "the per-row arrival counters must be reset for the next launch";
}

// ---- compressor ---------------------------------------------------------------

// Three sessions at positions that complete windows at different steps (and
// one with none yet); every session starts from its own non-zero state and
// earlier entries. After each batched step, every session's state and
// entries equal the reference fed that session's one token.
template <bool OV, bool FUSED>
void runBatchedCompress() {
  constexpr bool fused = FUSED;
  const int64_t m = OV ? 4 : 8, C = 16, Cin = OV ? 2 * C : C, D = 48, steps = 6, capacity = 64;
  const std::vector<int64_t> starts = {2, 5, 14};
  BatchedStep b;
  const ArgRef stateArg = b.cache(CacheKind::CompressState, 2 * m, 2 * Cin, 0);
  const ArgRef entriesArg = b.cache(CacheKind::Entries, 0, C, m);
  std::vector<ArgRef> ins;
  if (fused)
    ins = {b.rows(D), weight(DType::F32, {Cin, D}), weight(DType::F32, {Cin, D})};
  else
    ins = {b.rows(Cin), b.rows(Cin)};
  for (const ArgRef &a : {weight(DType::F32, {m, Cin}), weight(DType::F32, {C}), b.positions(), stateArg, entriesArg})
    ins.push_back(a);
  std::vector<v4rt::Attr> attrs = ropeAttrs(C);
  attrs.push_back(intAttr("rate", {m}));
  attrs.push_back(intAttr("overlap", {OV ? 1 : 0}));
  attrs.push_back(floatAttr("eps", {1e-6}));
  const EmittedKernel kernel = b.emit(fused ? "v4.linear_compress" : "v4.compress", ins, {stateArg, entriesArg}, attrs);
  // A chunk's scratch holds the windows it can complete; a batch one per row.
  EXPECT_NE(kernel.source.find("_pooled[" + str(kBucket * C) + "]"), std::string::npos) << kernel.source;
  const int first = fused ? 3 : 2;
  constexpr int kTile = FUSED ? 4 : 32; // the emitter's TT: min(16, tokens) fused, 32 loaded

  ref::CompressParams p;
  p.rate = m;
  p.headDim = C;
  p.overlap = OV;
  p.rope = ropeOf(C);
  p.eps = 1e-6;
  const std::vector<float> pb = randoms(m * Cin, 11), nw = randoms(C, 12);
  const std::vector<float> kvW = randoms(Cin * D, 13, 0.2f), gateW = randoms(Cin * D, 14, 0.2f);
  std::vector<CacheBuffer> refState, refEntries;
  std::vector<std::vector<float>> state, entries;
  for (int64_t r = 0; r < kPresent; ++r) {
    refState.push_back({2 * Cin, 2 * m, randoms(2 * m * 2 * Cin, 70 + static_cast<uint32_t>(r))});
    const int64_t done = starts[r] / m; // windows completed before this session's first token here
    refEntries.push_back({C, done, randoms(done * C, 80 + static_cast<uint32_t>(r))});
    state.push_back(refState.back().data);
    entries.push_back(refEntries.back().data);
    entries.back().resize(capacity * C, kNaN);
  }
  const std::vector<float *> stateTable = slotTable<float>(state), entryTable = slotTable<float>(entries);
  unsigned done = 0;
  const v4cuda::CompressShape shape{static_cast<int>(m), static_cast<int>(C), static_cast<int>(fused ? D : 0),
                                    static_cast<int>(kRope), 1.0, 1e-6};
  const std::string call = std::string("v4cuda::compressChunk<") + (OV ? "true" : "false") + ", 1, " + str(kTile) +
                           ">(source, in" + str(first) + ", in" + str(first + 1) + ", in" + str(first + 2) +
                           ", v4cuda::RowSlots<float>{out0}, v4cuda::RowSlots<float>{out1}, ";
  for (int64_t step = 0; step < steps; ++step) {
    std::vector<int32_t> positions(kBucket, 0);
    for (int64_t r = 0; r < kPresent; ++r)
      positions[r] = static_cast<int32_t>(starts[r] + step);
    const uint32_t seed = 100 + static_cast<uint32_t>(step);
    std::vector<float> kv = randoms(kBucket * Cin, seed), gate = randoms(kBucket * Cin, seed + 50, 3.0f), h;
    if (fused) {
      h = randoms(kBucket * D, seed + 99);
      ref::linear(h.data(), kBucket, D, kvW.data(), Cin, kv.data(), nullptr);
      ref::linear(h.data(), kBucket, D, gateW.data(), Cin, gate.data(), nullptr);
    }
    for (int64_t r = 0; r < kPresent; ++r)
      ref::compress(kv.data() + r * Cin, gate.data() + r * Cin, 1, pb.data(), nw.data(), &positions[r], p,
                    refState[r], refEntries[r]);
    std::vector<float> pooled(kBucket * C, kNaN);
    const v4cuda::RowSlots<float> stateSlots{stateTable.data()}, entrySlots{entryTable.data()};
    if constexpr (FUSED) {
      const v4cuda::state::ProjectedColumns<OV, 1, kTile, float, float, float> source{h.data(), kvW.data(),
                                                                                      gateW.data()};
      launchEntry(kernel, call, [&] {
        v4cuda::compressChunk<OV, 1, kTile>(source, pb.data(), nw.data(), positions.data(), stateSlots, entrySlots,
                                            kInvFreqF.data(), shape, pooled.data(), &done, kDyn);
      });
    } else {
      const v4cuda::state::LoadedColumns<OV, float, float> source{kv.data(), gate.data()};
      launchEntry(kernel, call, [&] {
        v4cuda::compressChunk<OV, 1, kTile>(source, pb.data(), nw.data(), positions.data(), stateSlots, entrySlots,
                                            kInvFreqF.data(), shape, pooled.data(), &done, kDyn);
      });
    }
    EXPECT_EQ(done, 0u) << "the arrival counter must be reset by the last block";
    for (int64_t r = 0; r < kPresent; ++r) {
      const std::string at = "session " + str(r) + " at position " + str(positions[r]);
      // The fused path projects in another summation order: equal to ~1e-6.
      expectEqualRows(state[r], refState[r].data, 2 * m * 2 * Cin, fused ? 2e-5f : 0.0f, "state of " + at);
      expectEqualRows(entries[r], refEntries[r].data, refEntries[r].rows * C, fused ? 2e-5f : 2e-6f,
                      "entries of " + at);
      expectUntouched(entries[r], refEntries[r].rows * C, "entries of " + at);
    }
  }
  for (int64_t r = 0; r < kPresent; ++r)
    EXPECT_GT(refEntries[r].rows, starts[r] / m) << "session " << r << " must complete a window in these steps";
}

TEST(BatchedStateKernelsOnHost, CompressUpdatesEachSessionsState) {
  runBatchedCompress<true, false>();
  runBatchedCompress<false, false>();
}

TEST(BatchedStateKernelsOnHost, LinearCompressUpdatesEachSessionsState) {
  runBatchedCompress<true, true>();
  runBatchedCompress<false, true>();
}

} // namespace
