#include "runtime/kvcache/MemoryTier.h"

#include <gtest/gtest.h>

#include "runtime/kvcache/KvCacheTestSupport.h"

namespace v4rt::kvcache {
namespace {

using test::testKey;
using test::testPagePtr;

TEST(MemoryTier, PutGetEraseAndStats) {
  MemoryTier tier("host", 10000);
  EXPECT_EQ(tier.name(), "host");
  EXPECT_TRUE(tier.put(testPagePtr(0, 1000)).empty());
  EXPECT_TRUE(tier.put(testPagePtr(1, 2000)).empty());
  PagePtr page = tier.get(testKey(1));
  ASSERT_NE(page, nullptr);
  EXPECT_EQ(page->payload, testPagePtr(1, 2000)->payload);
  EXPECT_EQ(tier.get(testKey(5)), nullptr);
  EXPECT_TRUE(tier.contains(testKey(0)));
  EXPECT_TRUE(tier.erase(testKey(0)));
  EXPECT_FALSE(tier.erase(testKey(0)));
  EXPECT_FALSE(tier.contains(testKey(0)));

  TierStats stats = tier.stats();
  EXPECT_EQ(stats.name, "host");
  EXPECT_EQ(stats.pages, 1u);
  EXPECT_EQ(stats.bytes, 2000u);
  EXPECT_EQ(stats.byteBudget, 10000u);
  EXPECT_EQ(stats.hits, 1u);
  EXPECT_EQ(stats.misses, 1u);
  EXPECT_EQ(stats.insertions, 2u);
  EXPECT_DOUBLE_EQ(stats.hitRate(), 0.5);
}

TEST(MemoryTier, EvictsLeastRecentlyUsedAndReturnsThePages) {
  MemoryTier tier("host", 3000);
  tier.put(testPagePtr(0, 1000));
  tier.put(testPagePtr(1, 1000));
  tier.put(testPagePtr(2, 1000));
  ASSERT_NE(tier.get(testKey(0)), nullptr); // 0 becomes most recent; 1 is now the oldest
  std::vector<PagePtr> evicted = tier.put(testPagePtr(3, 1500));
  ASSERT_EQ(evicted.size(), 2u);
  EXPECT_EQ(evicted[0]->key, testKey(1));
  EXPECT_EQ(evicted[1]->key, testKey(2));
  EXPECT_EQ(evicted[0]->payload, testPagePtr(1, 1000)->payload); // whole pages, ready to demote
  EXPECT_EQ(tier.keysByRecency(), (std::vector<PageKey>{testKey(3), testKey(0)}));
  TierStats stats = tier.stats();
  EXPECT_EQ(stats.bytes, 2500u);
  EXPECT_EQ(stats.evictions, 2u);
}

TEST(MemoryTier, APageLargerThanTheBudgetPassesStraightThrough) {
  MemoryTier tier("device", 1000);
  tier.put(testPagePtr(0, 500));
  std::vector<PagePtr> evicted = tier.put(testPagePtr(1, 1001));
  ASSERT_EQ(evicted.size(), 1u);
  EXPECT_EQ(evicted[0]->key, testKey(1));
  EXPECT_TRUE(tier.contains(testKey(0))); // the resident page was not sacrificed for it
  EXPECT_EQ(tier.stats().bytes, 500u);
}

TEST(MemoryTier, PuttingAHeldKeyRefreshesItWithoutDoubleCounting) {
  MemoryTier tier("host", 2000);
  tier.put(testPagePtr(0, 1000));
  tier.put(testPagePtr(1, 1000));
  tier.put(testPagePtr(0, 1000));
  EXPECT_EQ(tier.stats().bytes, 2000u);
  EXPECT_EQ(tier.stats().insertions, 2u);
  std::vector<PagePtr> evicted = tier.put(testPagePtr(2, 1000));
  ASSERT_EQ(evicted.size(), 1u);
  EXPECT_EQ(evicted[0]->key, testKey(1));
}

TEST(MemoryTier, EvictedPagesStayValidForTheirHolders) {
  MemoryTier tier("host", 1000);
  tier.put(testPagePtr(0, 1000));
  PagePtr held = tier.get(testKey(0));
  tier.put(testPagePtr(1, 1000));
  EXPECT_FALSE(tier.contains(testKey(0)));
  EXPECT_EQ(held->payload, testPagePtr(0, 1000)->payload);
}

TEST(MemoryTier, ClearEmptiesIt) {
  MemoryTier tier("host", 10000);
  tier.put(testPagePtr(0, 100));
  tier.put(testPagePtr(1, 100));
  EXPECT_EQ(tier.clear(), 2u);
  EXPECT_EQ(tier.stats().pages, 0u);
  EXPECT_EQ(tier.stats().bytes, 0u);
  EXPECT_EQ(tier.get(testKey(0)), nullptr);
}

} // namespace
} // namespace v4rt::kvcache
