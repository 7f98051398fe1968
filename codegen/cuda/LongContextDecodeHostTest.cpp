// The single-token decode kernels (include/v4cuda/IndexerDecode.cuh,
// AttentionDecode.cuh) on the host emulation against the CPU reference:
// many splits over contexts that are not a multiple of the split, top-k ties
// (equal rows, zero scores), fewer visible entries than top_k, the two-level
// merge with uneven groups, and the split-K attention's combine with the sink.
// Shapes are shrunk except in the *Flash* tests (V4-Flash heads and splits); the
// geometry is the emitters' (StateEmitters.cpp, 256 threads, tile = 4 keys x
// 256 / (H / HT) threads).
#include "codegen/cuda/testing/HostEmulation.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <random>
#include <vector>

#include <v4cuda/AttentionDecode.cuh>
#include <v4cuda/IndexerDecode.cuh>

#include <gtest/gtest.h>

#include "codegen/cuda/StateKernelTestSupport.h"
#include "codegen/cuda/testing/KernelTestSupport.h"

#include "runtime/cpu/ReferenceKernels.h"
#include "runtime/cpu/VectorMath.h"

namespace {

using v4emu::testing::asStored;
using v4emu::testing::kNaN;
using v4emu::testing::randoms;
using v4emu::testing::stored;
using v4rt::CacheBuffer;
namespace ref = v4rt::ref;

constexpr unsigned kThreads = 256;

// ---- indexer ----------------------------------------------------------------------

struct IndexerCase {
  int64_t position;  // the token's position: visible = (position + 1) / m
  int64_t topK;
  unsigned splits;   // grid.x
  int group;         // splits per first-level merge
  bool ties;         // equal rows (equal scores) and zero rows (score 0)
  int64_t heads = 16;
};

template <int DI, int HT, typename S> void runIndexerDecode(const IndexerCase &c) {
  const int64_t H = c.heads, m = 4;
  const int64_t visible = (c.position + 1) / m, capacity = visible + 40;
  std::vector<float> keyValues = asStored<S>(randoms(std::max<int64_t>(1, visible) * DI, 41));
  if (c.ties)
    for (int64_t w = 0; w < visible; ++w) {
      if (w % 5 == 3) // a zero row: every head's qk is 0, score 0 (ties among them)
        std::fill(keyValues.begin() + w * DI, keyValues.begin() + (w + 1) * DI, 0.0f);
      else if (w % 11 == 10) // a copy of an earlier row: the same score, the lower index first
        std::copy(keyValues.begin() + (w - 7) * DI, keyValues.begin() + (w - 6) * DI, keyValues.begin() + w * DI);
    }
  const std::vector<float> q = asStored<S>(randoms(H * DI, 42)), weights = asStored<S>(randoms(H, 43));
  const ref::IndexerParams p =
      v4cuda::testing::indexerParams(H, DI, c.topK, m, 1.0 / std::sqrt(static_cast<double>(DI)));
  const std::vector<int32_t> positions = {static_cast<int32_t>(c.position)};
  std::vector<int32_t> expected(c.topK);
  auto reference = [&] {
    const CacheBuffer keys{DI, visible, std::vector<float>(keyValues.begin(), keyValues.begin() + visible * DI)};
    ref::indexerTopK(q.data(), weights.data(), positions.data(), 1, keys, p, expected.data(), nullptr);
  };
  reference();
  if (c.ties && visible > 8) { // the best rows again at the end (another split): ties at the top
    for (int64_t j = 0; j < 3; ++j)
      std::copy(keyValues.begin() + expected[j] * DI, keyValues.begin() + (expected[j] + 1) * DI,
                keyValues.begin() + (visible - 1 - j) * DI);
    reference();
  }

  // Device side: capacity rows past the visible ones hold NaN (never read).
  std::vector<S> keyRows = stored<S>(keyValues);
  keyRows.resize(capacity * DI, v4cuda::fromFloat<S>(kNaN));
  const std::vector<S> qs = stored<S>(q), ws = stored<S>(weights);
  const int64_t K = c.topK, groups = (c.splits + c.group - 1) / c.group;
  std::vector<float> splitScore(c.splits * K, kNaN), groupScore(groups * K, kNaN);
  std::vector<int> splitIndex(c.splits * K, -7), splitCount(c.splits, -7), groupIndex(groups * K, -7),
      groupCount(groups, -7);
  std::vector<unsigned> groupDone(groups, 0);
  unsigned topDone = 0;
  const v4cuda::IndexerDecodeScratch scratch{splitScore.data(), splitIndex.data(), splitCount.data(),
                                             groupScore.data(), groupIndex.data(), groupCount.data(),
                                             groupDone.data(), &topDone};
  const v4cuda::IndexerShape shape{static_cast<int>(H), static_cast<int>(K), static_cast<int>(m), 0.25f,
                                   static_cast<float>(p.scoreScale)};
  const int tileKeys = v4cuda::kIndexerDecodeKeysPerThread * static_cast<int>(kThreads / (H / HT));
  const v4cuda::IndexerDecodeLayout layout{static_cast<int>(H), DI, tileKeys, static_cast<int>(K), c.group};
  std::vector<int32_t> out(K + 1, INT_MIN);
  const int32_t dyn[1] = {1};
  v4emu::launch(dim3(c.splits), dim3(kThreads), layout.bytes(), [&] {
    v4cuda::indexerTopKDecode<DI, HT>(qs.data(), ws.data(), positions.data(), keyRows.data(), out.data(), shape,
                                      c.group, scratch, dyn);
  });
  const std::string what = "DI " + std::to_string(DI) + " HT " + std::to_string(HT) + " visible " +
                           std::to_string(visible) + " K " + std::to_string(K) + " splits " +
                           std::to_string(c.splits) + " group " + std::to_string(c.group);
  for (int64_t i = 0; i < K; ++i)
    if (out[i] != expected[i]) {
      ADD_FAILURE() << what << ": slot " << i << " = " << out[i] << ", reference " << expected[i];
      break;
    }
  EXPECT_EQ(out[K], INT_MIN) << what << ": wrote past top_k";
  // The scores the splits published are the reference's bit for bit (its
  // formula, with its dot): rounding differences rarely flip an index, so
  // the indices alone would not show a summation-order change.
  int64_t published = 0, wrong = 0;
  for (unsigned split = 0; split < c.splits; ++split)
    for (int i = 0; i < splitCount[split] && wrong == 0; ++i, ++published) {
      const int w = splitIndex[split * K + i];
      float score = 0.0f;
      for (int64_t h = 0; h < H; ++h) {
        const float qk = v4rt::ref::dot(q.data() + h * DI, keyValues.data() + w * DI, DI);
        score += (std::max(qk, 0.0f) * static_cast<float>(p.scoreScale)) * (weights[h] * static_cast<float>(p.weightScale));
      }
      if (splitScore[split * K + i] != score) {
        ADD_FAILURE() << what << ": split " << split << " published score " << splitScore[split * K + i]
                      << " for entry " << w << ", reference formula " << score;
        ++wrong;
      }
    }
  EXPECT_GE(published, std::min<int64_t>(visible, K)) << what << ": the splits' lists";
  for (unsigned counter : groupDone)
    EXPECT_EQ(counter, 0u) << what << ": a group counter was not reset";
  EXPECT_EQ(topDone, 0u) << what << ": the top counter was not reset";
  if (c.ties) { // the case must exercise the tie rule: equal rows next to each other in the top-k
    int64_t equalNeighbours = 0;
    for (int64_t i = 0; i + 1 < K && expected[i + 1] >= 0; ++i)
      equalNeighbours += std::equal(keyValues.begin() + expected[i] * DI, keyValues.begin() + (expected[i] + 1) * DI,
                                    keyValues.begin() + expected[i + 1] * DI)
                             ? 1
                             : 0;
    EXPECT_GT(equalNeighbours, 0) << what << ": no equal scores next to each other in the top-k";
  }
}

TEST(LongContextDecodeOnHost, IndexerSplitsMatchReferenceExactly) {
  // 3001 keys over 8 splits of one 512-key tile (6 used), groups of 3 (3, 3, 2).
  runIndexerDecode<32, 8, float>({12006, 16, 8, 3, true});
  // Two tiles per split (3 splits of 1024), groups of 2, zero-score ties inside the top 1700.
  runIndexerDecode<32, 8, float>({12006, 1700, 3, 2, true});
  // Head groups of 4 (256-key tiles), 9 splits in groups of 4, a channel tail (20 = 16 + 4).
  runIndexerDecode<20, 4, float>({9999, 64, 9, 4, false});
  // More groups than a group holds: the second level merges them in rounds.
  runIndexerDecode<32, 8, float>({12006, 16, 12, 2, true});
  // One group: a single level of merging.
  runIndexerDecode<32, 8, float>({5001, 40, 5, 8, true});
  // Fewer visible entries than top_k: -1 padding; most splits empty.
  runIndexerDecode<32, 8, float>({37, 16, 6, 2, false});
  runIndexerDecode<32, 8, float>({2, 16, 4, 2, false}); // nothing visible yet
}

TEST(LongContextDecodeOnHost, IndexerSplitsBf16MatchReferenceExactly) {
  // bf16 q and keys: the lane sums fuse multiply-adds (exact products).
  runIndexerDecode<32, 8, __nv_bfloat16>({12006, 16, 8, 3, true});
  runIndexerDecode<32, 8, __nv_bfloat16>({12006, 1700, 3, 2, true});
  runIndexerDecode<16, 4, __nv_bfloat16>({4097, 100, 5, 2, true});
}

// The V4-Flash instantiation and geometry (StateEmitters.cpp): 64 heads x 128,
// top-512, 264 splits of 128-key tiles in groups of 16 (17 groups), 20,000 keys.
TEST(LongContextDecodeOnHost, IndexerFlashGeometryMatchesReferenceExactly) {
  runIndexerDecode<128, 8, __nv_bfloat16>({80003, 512, 264, 16, true, 64});
}

// ---- attention ----------------------------------------------------------------------

struct AttentionCase {
  int64_t position;
  int64_t rate;   // 0: sliding only
  bool useTopk;   // CSA: the selected entries
  unsigned splits;
};

template <int HD, int HG, typename S> void runAttentionDecode(const AttentionCase &c) {
  const int64_t H = 4, W = 8, K = 37;
  const int64_t entryRows = c.rate > 0 ? (c.position + 1) / c.rate : 0;
  const std::vector<int32_t> positions = {static_cast<int32_t>(c.position)};
  const std::vector<float> q = asStored<S>(randoms(H * HD, 51)), kv = asStored<S>(randoms(HD, 52)),
                           sinks = randoms(H, 53, 2.0f);
  CacheBuffer ring{HD, W, asStored<S>(randoms(W * HD, 54))};
  const CacheBuffer entries{HD, entryRows, asStored<S>(randoms(std::max<int64_t>(1, entryRows) * HD, 55))};
  std::vector<int32_t> topk(K);
  std::mt19937 rng(56);
  for (int64_t i = 0; i < K; ++i) // some -1, some not yet visible
    topk[i] = static_cast<int32_t>(rng() % (entryRows + 3)) - 1;
  const ref::AttentionParams p =
      v4cuda::testing::attentionParams(H, HD, W, c.rate, 1.0 / std::sqrt(static_cast<double>(HD)), c.useTopk ? K : 0);
  std::vector<float> expected(H * HD);
  const bool useEntries = c.rate > 0;
  ref::attention(q.data(), kv.data(), sinks.data(), positions.data(), 1, ring, useEntries ? &entries : nullptr,
                 c.useTopk ? topk.data() : nullptr, p, expected.data(), nullptr);

  const std::vector<S> qs = stored<S>(q), kvs = stored<S>(kv), rings = stored<S>(ring.data),
                       entriesStored = stored<S>(entries.data);
  const v4cuda::AttentionShape shape{static_cast<int>(H), static_cast<int>(W), static_cast<int>(c.rate),
                                     static_cast<int>(p.topKWidth), static_cast<float>(p.scale)};
  const int64_t groups = H / HG;
  std::vector<float> partials(groups * c.splits * v4cuda::attentionDecodePartialFloats<HD, HG>(), kNaN);
  std::vector<unsigned> done(groups, 0);
  std::vector<S> out(H * HD + 1, v4cuda::fromFloat<S>(kNaN));
  const int32_t dyn[1] = {1};
  const int sharedFloats = v4cuda::attentionDecodeSharedFloats<HD>(kThreads / 32, static_cast<int>(c.splits));
  v4emu::launch(dim3(static_cast<unsigned>(groups * c.splits)), dim3(kThreads), sharedFloats * 4, [&] {
    v4cuda::attentionDecodeSplit<HD, HG>(qs.data(), kvs.data(), sinks.data(), positions.data(), rings.data(),
                                         useEntries ? entriesStored.data() : nullptr,
                                         c.useTopk ? topk.data() : nullptr, out.data(), shape, partials.data(),
                                         done.data(), dyn);
  });
  const std::string what = "attention hd " + std::to_string(HD) + " position " + std::to_string(c.position) +
                           " rate " + std::to_string(c.rate) + (c.useTopk ? " topk" : "") + " splits " +
                           std::to_string(c.splits);
  // fp32 math in another order (online softmax per split), then a bf16
  // output rounds once: half a bf16 ulp of the value. Averages over many
  // candidates are small, so the bound is mostly relative.
  int bad = 0;
  for (int64_t i = 0; i < H * HD && bad < 5; ++i) {
    const float actual = v4cuda::toFloat(out[i]), reference = expected[i];
    const float bound = 2e-6f * std::max(1.0f, std::fabs(reference)) +
                        (sizeof(S) == 4 ? 0.0f : std::ldexp(std::fabs(reference), -8));
    if (!(std::fabs(actual - reference) <= bound)) {
      ADD_FAILURE() << what << ": [" << i << "] = " << actual << ", reference " << expected[i];
      ++bad;
    }
  }
  EXPECT_TRUE(std::isnan(v4cuda::toFloat(out[H * HD]))) << what << ": wrote past the heads";
  for (unsigned counter : done)
    EXPECT_EQ(counter, 0u) << what << ": a group counter was not reset";
}

TEST(LongContextDecodeOnHost, AttentionSplitsMatchReference) {
  // HCA-like: every visible entry (307 of them + 8 window rows) over 7 splits.
  runAttentionDecode<32, 2, float>({1230, 4, false, 7});
  runAttentionDecode<32, 4, float>({1230, 4, false, 16}); // splits of ~20 candidates: idle warps
  // CSA-like: the top-k entries (-1 and invisible ones skipped) + the window.
  runAttentionDecode<32, 1, float>({1230, 4, true, 5});
  // Sliding only, a window not yet full (more splits than candidates: empty splits).
  runAttentionDecode<32, 2, float>({5, 0, false, 9});
  runAttentionDecode<32, 2, float>({0, 4, false, 3}); // the first token: the window row only
}

TEST(LongContextDecodeOnHost, AttentionSplitsVectorLanesMatchReference) {
  runAttentionDecode<128, 2, float>({801, 4, false, 6});
  runAttentionDecode<128, 4, __nv_bfloat16>({801, 4, true, 4});
  runAttentionDecode<128, 1, __nv_bfloat16>({1999, 8, false, 11});
}

// The V4-Flash head shape (head_dim 512, head pairs, 17 splits) at the last
// position of a 1M context: the HCA layer's 8,191 entries + the window, and a
// CSA layer's selected entries (f32 rows: the outputs are averages of
// thousands of rows, small, so the check is tight).
TEST(LongContextDecodeOnHost, AttentionFlashShapesAtOneMillionMatchReference) {
  runAttentionDecode<512, 2, float>({1048574, 128, false, 17});
  runAttentionDecode<512, 2, float>({1048574, 4, true, 17});
}

} // namespace
