// The page payload format: page size rule, round trip, schema checks.
#include "runtime/PagePayload.h"

#include <gtest/gtest.h>

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
  EXPECT_EQ(page1.size(), pagePayloadSize(slots, P, SwaCacheStrategy::Full));
  EXPECT_EQ(checkPagePayload(page1, slots, 1, P, SwaCacheStrategy::Full), "");
  EXPECT_NE(checkPagePayload(page1, slots, 0, P, SwaCacheStrategy::Full), "");
  std::vector<CacheSlot> wider = slots;
  wider[1].width = 3;
  EXPECT_NE(checkPagePayload(page1, wider, 1, P, SwaCacheStrategy::Full), "");
  std::vector<uint8_t> shortened(page1.begin(), page1.end() - 4);
  EXPECT_NE(checkPagePayload(shortened, slots, 1, P, SwaCacheStrategy::Full), "");

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

} // namespace
} // namespace v4rt
