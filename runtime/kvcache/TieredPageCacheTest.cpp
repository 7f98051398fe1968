#include "runtime/kvcache/TieredPageCache.h"

#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "common/Error.h"
#include "runtime/kvcache/DiskTier.h"
#include "runtime/kvcache/KvCacheTestSupport.h"
#include "runtime/kvcache/MemoryTier.h"

namespace v4rt::kvcache {
namespace {

namespace fs = std::filesystem;
using test::kTestIdentity;
using test::ScratchDirectory;
using test::testKey;
using test::testPage;
using test::testPagePtr;

constexpr int64_t kPageTokens = 128;
constexpr size_t kPayload = 1000;

std::unique_ptr<TieredPageCache> hostAndDisk(const fs::path &directory, uint64_t hostPages) {
  TieredCacheOptions options;
  options.hostBytes = hostPages * kPayload;
  options.diskDirectory = directory.string();
  options.diskBytes = 1ull << 30;
  return TieredPageCache::create(options, kTestIdentity, kPageTokens);
}

TEST(TieredPageCache, HostOverflowDemotesLeastRecentlyUsedPagesToDisk) {
  ScratchDirectory directory;
  auto cache = hostAndDisk(directory.path(), 2);
  ASSERT_EQ(cache->tierCount(), 2u);
  EXPECT_EQ(cache->tier(0).name(), "host");
  EXPECT_EQ(cache->tier(1).name(), "disk");
  for (int64_t i = 0; i < 5; ++i)
    cache->insert(testPage(i, kPayload));

  PageTier &host = *cache->findTier("host");
  PageTier &disk = *cache->findTier("disk");
  for (int64_t i : {3, 4}) {
    EXPECT_TRUE(host.contains(testKey(i))) << "page " << i;
    EXPECT_FALSE(disk.contains(testKey(i))) << "page " << i;
  }
  for (int64_t i : {0, 1, 2}) {
    EXPECT_FALSE(host.contains(testKey(i))) << "page " << i;
    EXPECT_TRUE(disk.contains(testKey(i))) << "page " << i;
  }
  CacheStats stats = cache->stats();
  EXPECT_EQ(stats.demotions, 3u);
  EXPECT_EQ(stats.dropped, 0u);
  EXPECT_EQ(stats.tiers[0].bytes, 2 * kPayload);
  EXPECT_EQ(stats.tiers[1].bytes, 3 * (pageHeaderSize(kTestIdentity) + kPayload));
  EXPECT_EQ(stats.totalBytes(), stats.tiers[0].bytes + stats.tiers[1].bytes);
}

TEST(TieredPageCache, AHitOnDiskIsPromotedToTheHostAndKeptOnDisk) {
  ScratchDirectory directory;
  auto cache = hostAndDisk(directory.path(), 2);
  for (int64_t i = 0; i < 3; ++i)
    cache->insert(testPage(i, kPayload)); // host: 1, 2; disk: 0
  PagePtr page = cache->lookup(testKey(0));
  ASSERT_NE(page, nullptr);
  EXPECT_EQ(page->payload, testPage(0, kPayload).payload);

  PageTier &host = *cache->findTier("host");
  PageTier &disk = *cache->findTier("disk");
  EXPECT_TRUE(host.contains(testKey(0)));
  EXPECT_TRUE(disk.contains(testKey(0))); // the persistent copy stays
  EXPECT_FALSE(host.contains(testKey(1))); // pushed down to make room
  EXPECT_TRUE(disk.contains(testKey(1)));

  CacheStats stats = cache->stats();
  EXPECT_EQ(stats.lookups, 1u);
  EXPECT_EQ(stats.hits, 1u);
  EXPECT_EQ(stats.promotions, 1u);
  EXPECT_EQ(stats.tiers[0].misses, 1u); // the lookup passed through the host
  EXPECT_EQ(stats.tiers[1].hits, 1u);
  EXPECT_EQ(stats.tokensSaved(), 128u);

  // Now it is served by the host.
  ASSERT_NE(cache->lookup(testKey(0)), nullptr);
  EXPECT_EQ(cache->stats().tiers[0].hits, 1u);
  EXPECT_EQ(cache->stats().tiers[1].hits, 1u);
}

TEST(TieredPageCache, PromotionBetweenMemoryTiersMovesThePage) {
  std::vector<std::unique_ptr<PageTier>> tiers;
  tiers.push_back(std::make_unique<MemoryTier>("device", kPayload));
  tiers.push_back(std::make_unique<MemoryTier>("host", 4 * kPayload));
  TieredPageCache cache(std::move(tiers), kPageTokens);
  cache.insert(testPage(0, kPayload));
  cache.insert(testPage(1, kPayload)); // device: 1; host: 0
  ASSERT_NE(cache.lookup(testKey(0)), nullptr);
  EXPECT_TRUE(cache.tier(0).contains(testKey(0)));
  EXPECT_FALSE(cache.tier(1).contains(testKey(0))); // moved, not duplicated
  EXPECT_TRUE(cache.tier(1).contains(testKey(1)));
  EXPECT_EQ(cache.stats().tiers[1].bytes, kPayload);
}

TEST(TieredPageCache, EvictionsFromTheLastTierAreDropped) {
  std::vector<std::unique_ptr<PageTier>> tiers;
  tiers.push_back(std::make_unique<MemoryTier>("host", 2 * kPayload));
  TieredPageCache cache(std::move(tiers), kPageTokens);
  for (int64_t i = 0; i < 5; ++i)
    cache.insert(testPage(i, kPayload));
  EXPECT_EQ(cache.lookup(testKey(0)), nullptr);
  EXPECT_NE(cache.lookup(testKey(4)), nullptr);
  CacheStats stats = cache.stats();
  EXPECT_EQ(stats.dropped, 3u);
  EXPECT_EQ(stats.demotions, 0u);
  EXPECT_EQ(stats.hits, 1u);
  EXPECT_EQ(stats.misses, 1u);
  EXPECT_DOUBLE_EQ(stats.hitRate(), 0.5);
}

TEST(TieredPageCache, LongestPrefixStopsAtTheFirstMissingPage) {
  ScratchDirectory directory;
  auto cache = hostAndDisk(directory.path(), 2);
  std::vector<int32_t> prompt(5 * kPageTokens + 10);
  for (size_t i = 0; i < prompt.size(); ++i)
    prompt[i] = static_cast<int32_t>(i * 31 % 5000);
  std::vector<PageKey> keys = prefixKeys(prompt.data(), prompt.size(), kPageTokens, kTestIdentity, "");
  ASSERT_EQ(keys.size(), 5u);
  for (int64_t i : {0, 1, 2, 4}) { // page 3 missing
    Page page = testPage(i, kPayload);
    page.key = keys[i];
    cache->insert(std::move(page));
  }
  EXPECT_EQ(cache->longestPrefix(keys), 3u);
  EXPECT_EQ(cache->stats().lookups, 0u); // a presence check, not a lookup
  EXPECT_EQ(cache->longestPrefix({}), 0u);
  EXPECT_EQ(cache->longestPrefix({keys[3], keys[0]}), 0u);

  std::vector<PagePtr> pages = cache->fetchPrefix(keys);
  ASSERT_EQ(pages.size(), 3u);
  for (size_t i = 0; i < pages.size(); ++i) {
    EXPECT_EQ(pages[i]->key, keys[i]);
    EXPECT_EQ(pages[i]->pageIndex, static_cast<int64_t>(i));
  }
  CacheStats stats = cache->stats();
  EXPECT_EQ(stats.hits, 3u);
  EXPECT_EQ(stats.misses, 1u);
  EXPECT_EQ(stats.tokensSaved(), 3u * kPageTokens);
}

TEST(TieredPageCache, ANewProcessFindsThePrefixOnDisk) {
  ScratchDirectory directory;
  {
    auto cache = hostAndDisk(directory.path(), 8);
    for (int64_t i = 0; i < 4; ++i)
      cache->insert(testPage(i, kPayload)); // all fit in the host tier...
  } // ...and the disk holds nothing yet: host pages are not written through
  {
    auto cache = hostAndDisk(directory.path(), 1);
    EXPECT_EQ(cache->stats().tiers[1].pages, 0u);
    for (int64_t i = 0; i < 4; ++i)
      cache->insert(testPage(i, kPayload)); // a 1-page host demotes 3 pages to disk
  }
  auto cache = hostAndDisk(directory.path(), 1);
  EXPECT_EQ(cache->stats().tiers[1].pages, 3u);
  std::vector<PageKey> keys = {testKey(0), testKey(1), testKey(2), testKey(3)};
  EXPECT_EQ(cache->longestPrefix(keys), 3u);
  EXPECT_EQ(cache->fetchPrefix(keys).size(), 3u);
  EXPECT_EQ(cache->stats().tokensSaved(), 3u * kPageTokens);
}

TEST(TieredPageCache, ACorruptDiskPageIsAMissThroughTheCache) {
  ScratchDirectory directory;
  auto cache = hostAndDisk(directory.path(), 1);
  cache->insert(testPage(0, kPayload));
  cache->insert(testPage(1, kPayload)); // page 0 demoted to disk
  auto &disk = static_cast<DiskTier &>(*cache->findTier("disk"));
  fs::resize_file(disk.pagePath(testKey(0)), 10);
  EXPECT_EQ(cache->lookup(testKey(0)), nullptr);
  CacheStats stats = cache->stats();
  EXPECT_EQ(stats.misses, 1u);
  EXPECT_EQ(stats.tiers[1].corrupt, 1u);
  EXPECT_FALSE(cache->contains(testKey(0)));
}

TEST(TieredPageCache, ConcurrentInsertsAndLookupsStayConsistent) {
  ScratchDirectory directory;
  auto cache = hostAndDisk(directory.path(), 4);
  std::atomic<int> wrongPayloads{0};
  std::vector<std::thread> workers;
  for (uint32_t worker = 0; worker < 4; ++worker)
    workers.emplace_back([&, worker] {
      for (int64_t i = 0; i < 25; ++i) {
        cache->insert(testPage(i, 200, worker));
        for (int64_t j = 0; j <= i; j += 3) {
          PagePtr page = cache->lookup(testKey(j, worker));
          if (page && page->payload != testPage(j, 200, worker).payload)
            ++wrongPayloads;
        }
      }
    });
  for (std::thread &thread : workers)
    thread.join();
  EXPECT_EQ(wrongPayloads.load(), 0);
  CacheStats stats = cache->stats();
  EXPECT_EQ(stats.hits + stats.misses, stats.lookups);
  EXPECT_EQ(stats.misses, 0u); // the disk budget holds everything
  EXPECT_EQ(stats.tiers[0].pages + stats.tiers[1].pages >= 100u, true);
}

TEST(TieredPageCache, BadConfigurationsAreClearErrors) {
  EXPECT_THROW(TieredPageCache({}, kPageTokens), v4c::Error);
  std::vector<std::unique_ptr<PageTier>> twins;
  twins.push_back(std::make_unique<MemoryTier>("host", 10));
  twins.push_back(std::make_unique<MemoryTier>("host", 10));
  EXPECT_THROW(TieredPageCache(std::move(twins), kPageTokens), v4c::Error);
  std::vector<std::unique_ptr<PageTier>> one;
  one.push_back(std::make_unique<MemoryTier>("host", 10));
  EXPECT_THROW(TieredPageCache(std::move(one), 0), v4c::Error);
  EXPECT_THROW(TieredPageCache::create(TieredCacheOptions{}, kTestIdentity, kPageTokens), v4c::Error);
}

} // namespace
} // namespace v4rt::kvcache
