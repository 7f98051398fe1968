// Payload storage: heap bytes adopted without a copy, blocks of a
// PayloadAllocator released when their last holder lets go, and the tiers
// that place payloads in an allocator (MemoryTier, DiskTier). The CUDA
// backend's pinned allocator is tested on the emulated driver
// (runtime/cuda/PinnedPageTierTest.cpp); here a heap allocator that counts.
#include "runtime/kvcache/PageBytes.h"

#include <cstdlib>
#include <cstring>
#include <set>

#include <gtest/gtest.h>

#include "runtime/kvcache/DiskTier.h"
#include "runtime/kvcache/KvCacheTestSupport.h"
#include "runtime/kvcache/MemoryTier.h"

namespace v4rt::kvcache {
namespace {

using test::testKey;
using test::testPagePtr;

// Blocks from malloc, at most `capacity` bytes live at once (then null).
class CountingAllocator final : public PayloadAllocator {
public:
  explicit CountingAllocator(size_t capacity) : capacity_(capacity) {}
  void *allocate(size_t bytes) override {
    if (liveBytes + bytes > capacity_)
      return nullptr;
    void *block = std::malloc(bytes);
    live.insert(block);
    liveBytes += bytes;
    return block;
  }
  void release(void *block, size_t bytes) noexcept override {
    live.erase(block);
    liveBytes -= bytes;
    std::free(block);
  }
  bool pinned() const override { return true; }
  bool owns(const void *pointer) const { return live.count(const_cast<void *>(pointer)) != 0; }

  std::set<void *> live;
  size_t liveBytes = 0;

private:
  size_t capacity_;
};

TEST(PageBytes, AdoptsHeapBytesWithoutACopy) {
  std::vector<uint8_t> bytes(100, 7);
  const uint8_t *where = bytes.data();
  PageBytes payload(std::move(bytes));
  EXPECT_EQ(payload.data(), where);
  EXPECT_EQ(payload.size(), 100u);
  EXPECT_EQ(payload.placedIn(), nullptr);
  EXPECT_FALSE(payload.pinned());
  payload.dropFront(30);
  EXPECT_EQ(payload.size(), 70u);
  EXPECT_EQ(payload[0], 7);
}

TEST(PageBytes, BlocksAreReleasedByTheirLastHolderAndCopiesLandOnTheHeap) {
  auto allocator = std::make_shared<CountingAllocator>(1 << 20);
  {
    PageBytes block = PageBytes::allocate(allocator, 64);
    ASSERT_TRUE(allocator->owns(block.data()));
    EXPECT_EQ(block.placedIn(), allocator.get());
    EXPECT_TRUE(block.pinned());
    for (size_t i = 0; i < 64; ++i)
      block[i] = static_cast<uint8_t>(i);
    PageBytes copy = block; // a private, mutable payload
    EXPECT_EQ(copy.placedIn(), nullptr);
    EXPECT_EQ(copy, block);
    copy[3] ^= 1;
    EXPECT_NE(copy, block);
    PageBytes moved = std::move(block);
    moved.dropFront(16); // the block stays whole; the view starts later
    EXPECT_EQ(moved.size(), 48u);
    EXPECT_EQ(moved[0], 16);
    EXPECT_EQ(allocator->live.size(), 1u);
  }
  EXPECT_TRUE(allocator->live.empty());
  EXPECT_EQ(allocator->liveBytes, 0u);
}

TEST(PageBytes, AnExhaustedAllocatorFallsBackToZeroedHeapBytes) {
  auto allocator = std::make_shared<CountingAllocator>(10);
  const PageBytes bytes = PageBytes::allocate(allocator, 64);
  EXPECT_EQ(bytes.placedIn(), nullptr);
  ASSERT_EQ(bytes.size(), 64u);
  EXPECT_EQ(bytes, PageBytes(std::vector<uint8_t>(64, 0)));
  EXPECT_EQ(PageBytes::allocate(nullptr, 5).size(), 5u);
}

TEST(PageBytes, MemoryTierPlacesPagesInItsAllocatorAndCountsRefusals) {
  auto allocator = std::make_shared<CountingAllocator>(2500); // two 1000-byte pages, not three
  MemoryTier tier("host", 10000, allocator);
  const PagePtr first = testPagePtr(0, 1000);
  tier.put(first);
  tier.put(testPagePtr(1, 1000));
  tier.put(testPagePtr(2, 1000));
  const PagePtr held0 = tier.get(testKey(0));
  EXPECT_TRUE(allocator->owns(held0->payload.data()));
  EXPECT_NE(held0->payload.data(), first->payload.data()); // the caller's page untouched
  EXPECT_EQ(held0->payload, first->payload);
  const PagePtr held2 = tier.get(testKey(2));
  EXPECT_FALSE(allocator->owns(held2->payload.data())); // refused: kept as given
  EXPECT_EQ(held2->payload, testPagePtr(2, 1000)->payload);
  TierStats stats = tier.stats();
  EXPECT_TRUE(stats.pinned);
  EXPECT_EQ(stats.displayName(), "host (pinned)");
  EXPECT_EQ(stats.bytes, 3000u);
  EXPECT_EQ(stats.pinnedBytes, 2000u);
  EXPECT_EQ(stats.pinFailures, 1u);
  EXPECT_TRUE(tier.erase(testKey(1)));
  EXPECT_EQ(tier.stats().pinnedBytes, 1000u);
  EXPECT_EQ(allocator->live.size(), 1u); // page 1's block went back; page 0's is held here and by held0
  tier.clear();
  EXPECT_EQ(tier.stats().pinnedBytes, 0u);
  EXPECT_EQ(allocator->live.size(), 1u); // held0 keeps its page valid
  EXPECT_EQ(held0->payload, first->payload);
}

TEST(PageBytes, WithoutAnAllocatorTheHostTierHoldsPagesAsGiven) {
  MemoryTier tier("host", 10000);
  const PagePtr page = testPagePtr(0, 1000);
  tier.put(page);
  EXPECT_EQ(tier.get(testKey(0)), page); // the same object: no copy on the CPU backend
  EXPECT_FALSE(tier.stats().pinned);
  EXPECT_EQ(tier.stats().displayName(), "host");
}

TEST(PageBytes, DiskTierReadsPagesIntoItsAllocator) {
  test::ScratchDirectory directory;
  auto allocator = std::make_shared<CountingAllocator>(1 << 20);
  DiskTier disk(directory.path(), test::kTestIdentity, 1 << 20, allocator);
  disk.put(testPagePtr(4, 1500));
  const PagePtr read = disk.get(testKey(4));
  ASSERT_NE(read, nullptr);
  EXPECT_EQ(read->payload, testPagePtr(4, 1500)->payload);
  EXPECT_EQ(read->payload.placedIn(), allocator.get());
  ASSERT_EQ(allocator->live.size(), 1u);
  // The payload is the file's block past its header.
  const auto *block = static_cast<const uint8_t *>(*allocator->live.begin());
  EXPECT_EQ(read->payload.data(), block + pageHeaderSize(test::kTestIdentity));
}

} // namespace
} // namespace v4rt::kvcache
