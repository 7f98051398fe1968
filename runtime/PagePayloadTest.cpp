// The page payload format: page size rule, round trip, schema checks.
#include "runtime/PagePayload.h"

#include <gtest/gtest.h>

#include <cstring>

#include "common/Error.h"
#include "runtime/cpu/CacheStorage.h"

namespace v4rt {
namespace {

CacheSlot slot(CacheKind kind, int64_t rows, int64_t width, int64_t rate) {
  CacheSlot s;
  s.name = "slot";
  s.kind = kind;
  s.rows = rows;
  s.width = width;
  s.rate = rate;
  return s;
}

TEST(PagePayload, PageTokensAreTheLcmOfRates) {
  EXPECT_EQ(pageTokensFor({slot(CacheKind::Window, 8, 4, 0), slot(CacheKind::Entries, 0, 4, 4),
                           slot(CacheKind::Entries, 0, 4, 16)}),
            16);
  EXPECT_EQ(pageTokensFor({slot(CacheKind::Entries, 0, 4, 4), slot(CacheKind::Entries, 0, 4, 128)}),
            128);
  EXPECT_EQ(pageTokensFor({slot(CacheKind::Entries, 0, 4, 6), slot(CacheKind::Entries, 0, 4, 4)}), 12);
  // Windows only: the widest window rounded up to 16.
  EXPECT_EQ(pageTokensFor({slot(CacheKind::Window, 8, 4, 0)}), 16);
  EXPECT_EQ(pageTokensFor({slot(CacheKind::Window, 130, 4, 0)}), 144);
}

TEST(PagePayload, RoundTripsAndRejectsOtherSchemas) {
  const std::vector<CacheSlot> slots = {slot(CacheKind::Window, 3, 2, 0),
                                        slot(CacheKind::Entries, 0, 2, 4)};
  const int64_t P = 8;
  std::vector<CacheBuffer> caches(2);
  caches[0].width = caches[1].width = 2;
  caches[0].resizeRows(3);
  caches[1].resizeRows(4); // two pages of 2 entries each
  for (size_t i = 0; i < caches[0].data.size(); ++i)
    caches[0].data[i] = 100.0f + i;
  for (size_t i = 0; i < caches[1].data.size(); ++i)
    caches[1].data[i] = static_cast<float>(i);
  const auto page0 = encodePagePayload(slots, caches, 0, P, SwaCacheStrategy::Full);
  const auto page1 = encodePagePayload(slots, caches, 1, P, SwaCacheStrategy::Full);
  EXPECT_EQ(page1.size(), pagePayloadSize(slots, P, /*withSnapshot=*/true));
  EXPECT_EQ(checkPagePayload(page1, slots, 1, P), "");
  EXPECT_NE(checkPagePayload(page1, slots, 0, P), "");
  EXPECT_TRUE(pageHasSnapshot(page1));
  EXPECT_EQ(pageStrategy(page1), SwaCacheStrategy::Full);
  std::vector<CacheSlot> wider = slots;
  wider[1].width = 3;
  EXPECT_NE(checkPagePayload(page1, wider, 1, P), "");
  std::vector<uint8_t> shortened(page1.begin(), page1.end() - 4);
  EXPECT_NE(checkPagePayload(shortened, slots, 1, P), "");

  std::vector<CacheBuffer> restored(2);
  restored[0].width = restored[1].width = 2;
  restored[0].resizeRows(3);
  appendPageEntries(page0, slots, P, restored);
  appendPageEntries(page1, slots, P, restored);
  restorePageSnapshot(page1, slots, P, restored);
  EXPECT_EQ(restored[1].rows, 4);
  EXPECT_EQ(restored[1].data, caches[1].data);
  EXPECT_EQ(restored[0].data, caches[0].data);
}

// periodic:16 over pages of 8 tokens: pages 1, 3, ... (ending at 16, 32, ...)
// keep the window; the others, and every zero page, hold only their entries.
TEST(PagePayload, StrategiesDecideWhichPagesKeepTheWindow) {
  const std::vector<CacheSlot> slots = {slot(CacheKind::Window, 3, 2, 0),
                                        slot(CacheKind::CompressState, 8, 4, 0),
                                        slot(CacheKind::Entries, 0, 2, 4)};
  const int64_t P = 8;
  std::vector<CacheBuffer> caches(3);
  caches[0].width = 2;
  caches[1].width = 4;
  caches[2].width = 2;
  caches[0].resizeRows(3);
  caches[1].resizeRows(8);
  caches[2].resizeRows(4);
  for (size_t i = 0; i < caches[2].data.size(); ++i)
    caches[2].data[i] = 1.0f + static_cast<float>(i);
  const size_t entriesOnly = pagePayloadSize(slots, P, false);
  const size_t withWindow = pagePayloadSize(slots, P, true);
  EXPECT_EQ(withWindow - entriesOnly, sizeof(float) * (3 * 2 + 8 * 4));
  const SwaCacheStrategy periodic = SwaCacheStrategy::periodic(16);
  const auto page0 = encodePagePayload(slots, caches, 0, P, periodic);
  const auto page1 = encodePagePayload(slots, caches, 1, P, periodic);
  const auto zero1 = encodePagePayload(slots, caches, 1, P, SwaCacheStrategy::Zero);
  EXPECT_EQ(page0.size(), entriesOnly);
  EXPECT_EQ(page1.size(), withWindow);
  EXPECT_EQ(zero1.size(), entriesOnly);
  EXPECT_FALSE(pageHasSnapshot(page0));
  EXPECT_TRUE(pageHasSnapshot(page1));
  EXPECT_FALSE(pageHasSnapshot(zero1));
  EXPECT_EQ(pageStrategy(page0), periodic);
  EXPECT_EQ(pageStrategy(zero1), SwaCacheStrategy::Zero);
  for (const auto *page : {&page0, &page1, &zero1})
    EXPECT_EQ(checkPagePayload(*page, slots, page == &page0 ? 0 : 1, P), "");
  // A page claiming a snapshot it lacks, or a strategy that would have kept
  // one, is refused.
  std::vector<uint8_t> lying = zero1;
  lying[40] = 1;
  EXPECT_NE(checkPagePayload(lying, slots, 1, P), "");
  lying = zero1;
  lying[8] = static_cast<uint8_t>(SwaCacheKind::Full);
  EXPECT_EQ(checkPagePayload(lying, slots, 1, P),
            "snapshot flag disagrees with the page's window strategy");

  std::vector<CacheBuffer> restored(3);
  for (size_t s = 0; s < 3; ++s)
    restored[s].width = caches[s].width;
  appendPageEntries(page0, slots, P, restored);
  appendPageEntries(zero1, slots, P, restored);
  EXPECT_EQ(restored[2].data, caches[2].data);
  EXPECT_THROW(restorePageSnapshot(zero1, slots, P, restored), std::exception);
}

// The CUDA backend writes pages from device rows already in the slots'
// format: sections give back byte for byte the payload the CPU encoder writes.
TEST(PagePayload, SectionsAreTheStoredRows) {
  std::vector<CacheSlot> slots = {slot(CacheKind::Window, 3, 2, 0), slot(CacheKind::Entries, 0, 2, 4)};
  slots[0].dtype = DType::BF16;
  const int64_t P = 8;
  std::vector<CacheBuffer> caches(2);
  for (size_t s = 0; s < 2; ++s) {
    caches[s].width = 2;
    caches[s].format = cacheRowFormat(slots[s]);
  }
  caches[0].resizeRows(3);
  caches[1].resizeRows(4);
  for (size_t i = 0; i < caches[0].data.size(); ++i)
    caches[0].data[i] = 1.5f * static_cast<float>(i); // exact in bf16
  for (size_t i = 0; i < caches[1].data.size(); ++i)
    caches[1].data[i] = 0.25f + static_cast<float>(i);
  EXPECT_EQ(pageSectionBytes(slots[0], P), 3u * 2 * 2); // every bf16 row of the window
  EXPECT_EQ(pageSectionBytes(slots[1], P), 2u * 2 * 4); // P / rate f32 entries
  for (SwaCacheStrategy strategy : {SwaCacheStrategy::Full, SwaCacheStrategy::Zero}) {
    const std::vector<uint8_t> page = encodePagePayload(slots, caches, 1, P, strategy);
    ASSERT_EQ(checkPagePayload(page, slots, 1, P), "");
    const std::vector<const uint8_t *> sections = {pageSection(page, slots, 0, P), pageSection(page, slots, 1, P)};
    EXPECT_EQ(sections[0] != nullptr, strategy == SwaCacheStrategy::Full); // no snapshot: no window section
    float entry = 0.0f;
    std::memcpy(&entry, sections[1], sizeof entry);
    EXPECT_EQ(entry, 0.25f + 4.0f); // page 1 starts at entry row 2, element 4
    EXPECT_EQ(encodePagePayloadSections(slots, sections, 1, P, strategy), page);
  }
  // A snapshot page needs every fixed-size slot's rows (f32 rows are their own stored format).
  const auto *entryRows = reinterpret_cast<const uint8_t *>(caches[1].row(2));
  EXPECT_THROW(encodePagePayloadSections(slots, {nullptr, entryRows}, 1, P, SwaCacheStrategy::Full), v4c::Error);
  EXPECT_EQ(encodePagePayloadSections(slots, {nullptr, entryRows}, 1, P, SwaCacheStrategy::Zero),
            encodePagePayload(slots, caches, 1, P, SwaCacheStrategy::Zero));
}

// The tokens a rebuild from the empty window needs: every window plus the
// largest rate.
TEST(PagePayload, WindowRebuildTokens) {
  EXPECT_EQ(windowRebuildTokens({slot(CacheKind::Window, 8, 4, 0), slot(CacheKind::Window, 8, 4, 0),
                                 slot(CacheKind::Entries, 0, 4, 4),
                                 slot(CacheKind::Entries, 0, 4, 16)}),
            8 + 8 + 16);
  EXPECT_EQ(windowRebuildTokens({slot(CacheKind::Window, 128, 4, 0)}), 128);
}

} // namespace
} // namespace v4rt
