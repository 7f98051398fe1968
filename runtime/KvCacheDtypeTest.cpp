// `v4c compile --kv-cache bf16|fp8` end to end: the format reaches the
// artifact's cache slots, sessions store exactly the rounded rows, and pages
// hold the narrow bytes and restore them bit for bit.
#include <gtest/gtest.h>

#include <cstring>

#include "common/Error.h"
#include "runtime/PagePayload.h"
#include "runtime/artifact/ProgramCheck.h"
#include "runtime/PrefixCacheTestSupport.h"
#include "runtime/Session.h"
#include "runtime/cpu/CacheStorage.h"

namespace v4rt {
namespace {

// tiny-mixed: head_dim 32, qk_rope_head_dim 4, indexer head_dim 16; layers
// sliding, CSA (rate 4), HCA (rate 16), CSA.
constexpr int64_t kRopeDim = 4;

bool isIndexerKeys(const CacheSlot &slot) {
  return slot.kind == CacheKind::Entries && slot.name.find(".indexer.") != std::string::npos;
}

std::unique_ptr<Model> load(const std::string &kvCache) {
  return Model::load(test::compiledArtifact("tiny-mixed", "--kv-cache " + kvCache));
}

TEST(KvCacheDtype, TheArtifactCarriesEachSlotsFormat) {
  for (const std::string kvCache : {"bf16", "fp8"}) {
    auto model = load(kvCache);
    EXPECT_NE(model->program().compileOptions.find("\"kv_cache\":\"" + kvCache + "\""), std::string::npos)
        << model->program().compileOptions;
    int windows = 0, entries = 0, keys = 0, states = 0;
    for (const CacheSlot &slot : model->program().caches) {
      SCOPED_TRACE(slot.name);
      if (slot.kind == CacheKind::CompressState) {
        EXPECT_EQ(slot.dtype, DType::F32) << "compressor state stays f32";
        EXPECT_EQ(slot.ropeWidth, 0);
        ++states;
        continue;
      }
      EXPECT_EQ(slot.dtype, kvCache == "bf16" ? DType::BF16 : DType::F8E4M3);
      const int64_t rope = kvCache == "fp8" && !isIndexerKeys(slot) ? kRopeDim : 0;
      EXPECT_EQ(slot.ropeWidth, rope);
      (slot.kind == CacheKind::Window ? windows : isIndexerKeys(slot) ? keys : entries)++;
    }
    EXPECT_EQ(windows, 4);
    EXPECT_EQ(entries, 3);
    EXPECT_EQ(keys, 2);
    EXPECT_EQ(states, 5);
  }
  for (const CacheSlot &slot : Model::load(test::compiledArtifact("tiny-mixed"))->program().caches)
    EXPECT_EQ(slot.dtype, DType::F32) << slot.name << ": the default stays fp32";
}

// A tampered rope width is refused when the artifact is read (and written).
TEST(KvCacheDtype, ProgramCheckRefusesABadRopeWidth) {
  auto model = load("fp8");
  Program program = model->program();
  artifact::checkProgram(program);
  CacheSlot &window = program.caches.front();
  ASSERT_EQ(window.dtype, DType::F8E4M3);
  window.ropeWidth = window.width;
  EXPECT_THROW(artifact::checkProgram(program), v4c::Error);
  window.ropeWidth = -1;
  EXPECT_THROW(artifact::checkProgram(program), v4c::Error);
  window.ropeWidth = 4;
  window.dtype = DType::BF16;
  EXPECT_THROW(artifact::checkProgram(program), v4c::Error) << "rope width on a bf16 slot";
  window.ropeWidth = 0;
  artifact::checkProgram(program);
}

// Layer 0's kv does not depend on any cache read, so its window rows under a
// narrow format are exactly the fp32 session's rows rounded by storeCacheRow;
// every other row of every narrow slot is a value of its format.
TEST(KvCacheDtype, SessionsStoreExactlyTheRoundedRows) {
  auto reference = Model::load(test::compiledArtifact("tiny-mixed"));
  const std::vector<int32_t> ids = test::pseudoRandomIds(37, reference->vocabSize(), 5);
  Session f32Session(*reference);
  f32Session.prefill(ids.data(), static_cast<int64_t>(ids.size()), nullptr);
  for (const std::string kvCache : {"bf16", "fp8"}) {
    auto model = load(kvCache);
    Session session(*model);
    session.prefill(ids.data(), 33, nullptr);
    for (size_t i = 33; i < ids.size(); ++i) // the last rows through the decode bucket
      session.decode(ids[i], nullptr);
    const std::vector<CacheSlot> &slots = model->program().caches;
    for (size_t s = 0; s < slots.size(); ++s) {
      SCOPED_TRACE(kvCache + " " + slots[s].name);
      const CacheBuffer &cache = session.caches()[s];
      EXPECT_EQ(cache.format, cacheRowFormat(slots[s]));
      if (slots[s].kind == CacheKind::CompressState)
        continue;
      std::vector<float> again(static_cast<size_t>(cache.width));
      int64_t changedByRounding = 0;
      for (int64_t r = 0; r < cache.rows; ++r) {
        roundCacheRows(cache.format, cache.row(r), 1, cache.width, again.data());
        ASSERT_EQ(0, std::memcmp(again.data(), cache.row(r), sizeof(float) * cache.width))
            << "row " << r << " holds a value its format cannot";
      }
      if (slots[s].name != "layers.0.window")
        continue;
      const CacheBuffer &exact = f32Session.caches()[s];
      for (int64_t r = 0; r < cache.rows; ++r) {
        roundCacheRows(cache.format, exact.row(r), 1, cache.width, again.data());
        ASSERT_EQ(0, std::memcmp(again.data(), cache.row(r), sizeof(float) * cache.width)) << "row " << r;
        changedByRounding += std::memcmp(exact.row(r), cache.row(r), sizeof(float) * cache.width) != 0;
      }
      EXPECT_EQ(changedByRounding, cache.rows) << "every stored row was rounded";
    }
  }
}

// A page of a narrow cache is smaller and restores the same floats.
TEST(KvCacheDtype, PagesHoldTheNarrowBytes) {
  size_t fp32Bytes = 0, bf16Bytes = 0, fp8Bytes = 0;
  for (const std::string kvCache : {"fp32", "bf16", "fp8"}) {
    auto model = load(kvCache);
    const std::vector<CacheSlot> &slots = model->program().caches;
    const int64_t P = pageTokensFor(slots);
    const std::vector<int32_t> ids = test::pseudoRandomIds(2 * P, model->vocabSize(), 9);
    Session session(*model);
    session.prefill(ids.data(), 2 * P, nullptr);
    const std::vector<uint8_t> page0 = encodePagePayload(slots, session.caches(), 0, P, SwaCacheStrategy::Zero);
    const std::vector<uint8_t> page1 = encodePagePayload(slots, session.caches(), 1, P, SwaCacheStrategy::Full);
    ASSERT_EQ(checkPagePayload(page1, slots, 1, P), "") << kvCache;
    (kvCache == "fp32" ? fp32Bytes : kvCache == "bf16" ? bf16Bytes : fp8Bytes) = page1.size();

    std::vector<CacheBuffer> restored(slots.size());
    for (size_t s = 0; s < slots.size(); ++s) {
      restored[s].width = slots[s].width;
      restored[s].format = cacheRowFormat(slots[s]);
      if (slots[s].kind != CacheKind::Entries)
        restored[s].resizeRows(slots[s].rows);
    }
    appendPageEntries(page0, slots, P, restored);
    appendPageEntries(page1, slots, P, restored);
    restorePageSnapshot(page1, slots, P, restored);
    for (size_t s = 0; s < slots.size(); ++s) {
      const CacheBuffer &original = session.caches()[s];
      ASSERT_EQ(restored[s].rows, original.rows) << slots[s].name;
      for (int64_t r = 0; r < original.rows; ++r)
        ASSERT_EQ(0, std::memcmp(restored[s].row(r), original.row(r), sizeof(float) * original.width))
            << kvCache << " " << slots[s].name << " row " << r;
    }
  }
  EXPECT_LT(bf16Bytes, fp32Bytes);
  EXPECT_LT(fp8Bytes, bf16Bytes);
}

} // namespace
} // namespace v4rt
