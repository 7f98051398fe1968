// The CUDA backend's pinned host page tier on the emulated driver
// (tests/emulated-cuda): payload blocks come from cuMemAllocHost (the
// emulator's v4emuIsPinnedHost says so), the host tier keeps its budget and
// LRU, a refused cuMemAllocHost leaves pages pageable and counted, and pages
// go device -> pinned host -> disk -> back byte for byte.
#include <gtest/gtest.h>


#include <cstring>
#include <memory>
#include <vector>

#include "runtime/cuda/EmulatorQueries.h"
#include "runtime/cuda/CudaDriver.h"
#include "runtime/cuda/DeviceObjects.h"
#include "runtime/cuda/DeviceTier.h"
#include "runtime/cuda/PinnedPayloadAllocator.h"
#include "runtime/cuda/Sm90aDeviceTest.h"
#include "runtime/kvcache/DiskTier.h"
#include "runtime/kvcache/KvCacheTestSupport.h"
#include "runtime/kvcache/MemoryTier.h"
#include "runtime/kvcache/TieredPageCache.h"

namespace v4rt::cuda {
namespace {

using kvcache::PagePtr;
using kvcache::test::testKey;
using kvcache::test::testPagePtr;

constexpr size_t kPayload = 3000;
constexpr int64_t kPageTokens = 128;

class PinnedPageTier : public Sm90aDeviceTest {
protected:
  EmulatorQueries emu_; // the emulated driver's fault injection and limits

  void SetUp() override {
    Sm90aDeviceTest::SetUp();
    if (IsSkipped())
      return;
    // The emulator's test queries (absent from a real libcuda: those checks skip).
    emu_ = EmulatorQueries::find();
    allocator_ = std::make_shared<PinnedPayloadAllocator>(*device_, 0); // no retention: every block is fresh
  }
  void TearDown() override { emu_.reset(); }

  // Whether the driver handed out [payload, +size) with cuMemAllocHost.
  bool driverPinned(const kvcache::PageBytes &payload) const {
    return emu_.isPinnedHost(payload.data(), payload.size()) != 0;
  }
  void requireEmulator() {
    if (!emu_.isPinnedHost || !emu_.setPinnedHostLimit || !emu_.setDeviceMemoryLimit)
      GTEST_SKIP() << "needs the emulated driver's test queries (tests/emulated-cuda)";
  }

  std::shared_ptr<PinnedPayloadAllocator> allocator_;
};

TEST_F(PinnedPageTier, HostTierRehomesPagesIntoDriverPinnedMemory) {
  requireEmulator();
  kvcache::MemoryTier host("host", 3 * kPayload, allocator_);
  const PagePtr given = testPagePtr(0, kPayload);
  ASSERT_FALSE(driverPinned(given->payload)); // the heap
  EXPECT_TRUE(host.put(given).empty());
  const PagePtr held = host.get(testKey(0));
  ASSERT_NE(held, nullptr);
  EXPECT_NE(held->payload.data(), given->payload.data()); // re-homed, the caller's page untouched
  EXPECT_TRUE(driverPinned(held->payload));
  EXPECT_TRUE(held->payload.pinned());
  EXPECT_EQ(held->payload, given->payload);
  EXPECT_EQ(held->key, given->key);
  EXPECT_EQ(held->pageIndex, given->pageIndex);

  // A page already in the allocator's memory is held as is (no second copy).
  auto pinned = std::make_shared<kvcache::Page>(*testPagePtr(1, kPayload));
  pinned->payload = kvcache::PageBytes::allocate(allocator_, kPayload);
  std::memcpy(pinned->payload.data(), testPagePtr(1, kPayload)->payload.data(), kPayload);
  const uint8_t *pinnedBytes = pinned->payload.data();
  host.put(pinned);
  EXPECT_EQ(host.get(testKey(1))->payload.data(), pinnedBytes);

  const kvcache::TierStats stats = host.stats();
  EXPECT_TRUE(stats.pinned);
  EXPECT_EQ(stats.displayName(), "host (pinned)");
  EXPECT_EQ(stats.bytes, 2 * kPayload);
  EXPECT_EQ(stats.pinnedBytes, 2 * kPayload);
  EXPECT_EQ(stats.pinFailures, 0u);
  EXPECT_EQ(allocator_->stats().liveBlocks, 2u);
}

TEST_F(PinnedPageTier, BudgetAndLeastRecentlyUsedOrderAsOnTheHeap) {
  requireEmulator();
  kvcache::MemoryTier host("host", 3 * kPayload, allocator_);
  for (int64_t i = 0; i < 3; ++i)
    host.put(testPagePtr(i, kPayload));
  const PagePtr keep = host.get(testKey(1));
  ASSERT_NE(host.get(testKey(0)), nullptr); // recency 0, 1, 2: 2 is the oldest
  std::vector<PagePtr> evicted = host.put(testPagePtr(3, 2 * kPayload));
  ASSERT_EQ(evicted.size(), 2u);
  EXPECT_EQ(evicted[0]->key, testKey(2));
  EXPECT_EQ(evicted[1]->key, testKey(1));
  // Evicted pages stay valid, pinned, for their holders (the next tier down).
  EXPECT_TRUE(driverPinned(evicted[0]->payload));
  EXPECT_EQ(evicted[0]->payload, testPagePtr(2, kPayload)->payload);
  EXPECT_EQ(keep->payload, testPagePtr(1, kPayload)->payload);
  EXPECT_EQ(host.keysByRecency(), (std::vector<kvcache::PageKey>{testKey(3), testKey(0)}));
  const kvcache::TierStats stats = host.stats();
  EXPECT_EQ(stats.bytes, 3 * kPayload);
  EXPECT_EQ(stats.pinnedBytes, 3 * kPayload);
  EXPECT_EQ(stats.evictions, 2u);
  // A page over the whole budget passes straight down, never pinned here.
  evicted = host.put(testPagePtr(9, 4 * kPayload));
  ASSERT_EQ(evicted.size(), 1u);
  EXPECT_FALSE(driverPinned(evicted[0]->payload));
  // Blocks go back to the driver once no tier or holder has them.
  evicted.clear();
  host.clear();
  EXPECT_EQ(host.stats().pinnedBytes, 0u);
  EXPECT_EQ(allocator_->stats().liveBlocks, 1u); // `keep` (page 1) alone
}

TEST_F(PinnedPageTier, ARefusedPinLeavesThePagePageableAndCounted) {
  requireEmulator();
  kvcache::MemoryTier host("host", 10 * kPayload, allocator_);
  host.put(testPagePtr(0, kPayload));
  emu_.setPinnedHostLimit(0); // cuMemAllocHost now fails
  const PagePtr given = testPagePtr(1, kPayload);
  host.put(given);
  const PagePtr held = host.get(testKey(1));
  ASSERT_NE(held, nullptr);
  EXPECT_EQ(held->payload.data(), given->payload.data()); // kept as given: no copy to another heap block
  EXPECT_FALSE(driverPinned(held->payload));
  const kvcache::TierStats stats = host.stats();
  EXPECT_TRUE(stats.pinned);
  EXPECT_EQ(stats.bytes, 2 * kPayload);
  EXPECT_EQ(stats.pinnedBytes, kPayload);
  EXPECT_EQ(stats.pinFailures, 1u);
  EXPECT_EQ(allocator_->stats().failures, 1u);
  EXPECT_NE(allocator_->lastFailure().find("cuMemAllocHost of 3000 bytes failed"), std::string::npos)
      << allocator_->lastFailure();
  // PageBytes::allocate falls back to zeroed heap bytes.
  const kvcache::PageBytes fallback = kvcache::PageBytes::allocate(allocator_, 64);
  EXPECT_EQ(fallback.placedIn(), nullptr);
  EXPECT_EQ(fallback.size(), 64u);
  EXPECT_EQ(allocator_->stats().failures, 2u);
}

TEST_F(PinnedPageTier, ReleasedBlocksAreReusedBySizeUpToTheRetainBudget) {
  requireEmulator();
  auto retaining = std::make_shared<PinnedPayloadAllocator>(*device_, 2 * kPayload);
  const uint8_t *retainedBlock = nullptr;
  {
    kvcache::PageBytes a = kvcache::PageBytes::allocate(retaining, kPayload);
    kvcache::PageBytes b = kvcache::PageBytes::allocate(retaining, kPayload);
    kvcache::PageBytes c = kvcache::PageBytes::allocate(retaining, kPayload);
    retainedBlock = c.data();
  } // c and b retained, a (released last, over 2 * kPayload) freed
  PinnedPayloadStats stats = retaining->stats();
  EXPECT_EQ(stats.driverAllocations, 3u);
  EXPECT_EQ(stats.retainedBlocks, 2u);
  EXPECT_EQ(stats.retainedBytes, 2 * kPayload);
  EXPECT_EQ(stats.liveBlocks, 0u);
  EXPECT_TRUE(emu_.isPinnedHost(retainedBlock, kPayload)); // retained: still the driver's
  kvcache::PageBytes again = kvcache::PageBytes::allocate(retaining, kPayload);
  kvcache::PageBytes other = kvcache::PageBytes::allocate(retaining, kPayload / 2); // another size: a new block
  stats = retaining->stats();
  EXPECT_EQ(stats.reuses, 1u);
  EXPECT_EQ(stats.driverAllocations, 4u);
  EXPECT_TRUE(driverPinned(again));
  EXPECT_TRUE(driverPinned(other));
}

// Device tier (2 pages) -> pinned host (2 pages) -> disk: every page the
// device tier hands down is pinned, disk pages are read into pinned blocks
// and come back up byte-exact.
TEST_F(PinnedPageTier, PagesRoundTripDeviceToPinnedHostToDiskAndBack) {
  requireEmulator();
  kvcache::test::ScratchDirectory directory;
  std::vector<std::unique_ptr<kvcache::PageTier>> tiers;
  tiers.push_back(std::make_unique<DeviceTier>(*device_, stream_->get(), 2 * kPayload, allocator_));
  tiers.push_back(std::make_unique<kvcache::MemoryTier>("host", 2 * kPayload, allocator_));
  tiers.push_back(
      std::make_unique<kvcache::DiskTier>(directory.path(), kvcache::test::kTestIdentity, 1ull << 30, allocator_));
  kvcache::TieredPageCache cache(std::move(tiers), kPageTokens);
  auto &device = dynamic_cast<DeviceTier &>(*cache.findTier("device"));
  auto &host = dynamic_cast<kvcache::MemoryTier &>(*cache.findTier("host"));
  kvcache::PageTier &disk = *cache.findTier("disk");

  constexpr int64_t kPages = 6;
  for (int64_t i = 0; i < kPages; ++i)
    cache.insert(testPagePtr(i, kPayload, 7));
  // Newest two on the device, the two before on the host, the oldest on disk.
  for (int64_t i : {4, 5})
    EXPECT_TRUE(device.contains(testKey(i, 7))) << i;
  for (int64_t i : {2, 3}) {
    ASSERT_TRUE(host.contains(testKey(i, 7))) << i;
    const PagePtr page = host.get(testKey(i, 7));
    EXPECT_TRUE(driverPinned(page->payload)) << "page " << i << " demoted from the device is not pinned";
    EXPECT_EQ(page->payload, testPagePtr(i, kPayload, 7)->payload) << i;
  }
  for (int64_t i : {0, 1})
    EXPECT_TRUE(disk.contains(testKey(i, 7))) << i;
  kvcache::TierStats hostStats = host.stats();
  EXPECT_EQ(hostStats.pinnedBytes, hostStats.bytes);
  EXPECT_EQ(hostStats.pinFailures, 0u);

  // Page 0 from disk: promoted to the device (its rows readable there), and
  // the device page it displaces goes down to the host, pinned.
  const PagePtr fromDisk = cache.lookup(testKey(0, 7));
  ASSERT_NE(fromDisk, nullptr);
  EXPECT_EQ(fromDisk->payload, testPagePtr(0, kPayload, 7)->payload);
  const CUdeviceptr rows = device.devicePayload(testKey(0, 7));
  ASSERT_NE(rows, 0u);
  std::vector<uint8_t> onDevice(kPayload);
  checkCuda(device_->api(), device_->api().cuMemcpyDtoHAsync(onDevice.data(), rows, kPayload, stream_->get()),
            "cuMemcpyDtoHAsync");
  stream_->synchronize();
  EXPECT_EQ(kvcache::PageBytes(onDevice), testPagePtr(0, kPayload, 7)->payload);
  // Every page is still somewhere, byte for byte (each lookup promotes and demotes).
  for (int64_t i = 0; i < kPages; ++i) {
    const PagePtr page = cache.lookup(testKey(i, 7));
    ASSERT_NE(page, nullptr) << i;
    EXPECT_EQ(page->payload, testPagePtr(i, kPayload, 7)->payload) << i;
    EXPECT_TRUE(driverPinned(page->payload)) << "page " << i << " read back from the device is not pinned";
  }
  hostStats = host.stats();
  EXPECT_EQ(hostStats.pages, 2u);
  EXPECT_EQ(hostStats.pinnedBytes, hostStats.bytes);
  const kvcache::CacheStats stats = cache.stats();
  EXPECT_GT(stats.promotions, 0u);
  EXPECT_GT(stats.demotions, 0u);
  EXPECT_EQ(stats.dropped, 0u);
}

// The device tier's budget is not a promise the device keeps: a page it
// finds no device memory for goes down to the host tier, and the insert
// (a session's page export) does not fail.
TEST_F(PinnedPageTier, APageTheDeviceHasNoRoomForGoesDown) {
  requireEmulator();
  kvcache::test::ScratchDirectory directory;
  std::vector<std::unique_ptr<kvcache::PageTier>> tiers;
  tiers.push_back(std::make_unique<DeviceTier>(*device_, stream_->get(), 4 * kPayload, allocator_));
  tiers.push_back(std::make_unique<kvcache::MemoryTier>("host", 4 * kPayload, allocator_));
  kvcache::TieredPageCache cache(std::move(tiers), kPageTokens);
  auto &device = dynamic_cast<DeviceTier &>(*cache.findTier("device"));
  kvcache::PageTier &host = *cache.findTier("host");
  cache.insert(testPagePtr(0, kPayload, 9));
  EXPECT_TRUE(device.contains(testKey(0, 9)));
  size_t freeBytes = 0, totalBytes = 0;
  ASSERT_EQ(api().cuMemGetInfo(&freeBytes, &totalBytes), CUDA_SUCCESS);
  emu_.setDeviceMemoryLimit(totalBytes - freeBytes); // full
  EXPECT_NO_THROW(cache.insert(testPagePtr(1, kPayload, 9)));
  EXPECT_FALSE(device.contains(testKey(1, 9)));
  ASSERT_TRUE(host.contains(testKey(1, 9)));
  EXPECT_EQ(host.get(testKey(1, 9))->payload, testPagePtr(1, kPayload, 9)->payload);
  EXPECT_TRUE(device.contains(testKey(0, 9))); // what fitted stays
  EXPECT_EQ(device.stats().bytes, kPayload);
}

} // namespace
} // namespace v4rt::cuda
