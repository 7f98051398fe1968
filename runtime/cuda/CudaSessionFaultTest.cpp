// CudaSession's error paths on the emulated driver (tests/emulated-cuda),
// with the real kernels of tiny-mixed (fp32, sm_90a; page 16 tokens). The
// emulator's test queries refuse pinned or device memory, refuse the Nth
// submission of one driver call, or fail the Nth kernel (a lost context).
//
// The contract (CudaSession.h, "Errors"): the prefix cache and the window
// snapshots are best-effort: a failed page export, page restore or snapshot
// is counted and skipped, and the session's logits and position are a
// no-cache session's. A failed kernel makes the session's later calls fail
// with a one-line error; nothing hangs or crashes.
#include <gtest/gtest.h>


#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "runtime/PrefixCache.h"
#include "runtime/cuda/EmulatorQueries.h"
#include "runtime/cuda/CudaPrefixCache.h"
#include "runtime/cuda/CudaSession.h"
#include "runtime/cuda/CudaSessionTestSupport.h"
#include "runtime/cuda/PinnedPayloadAllocator.h"
#include "runtime/cuda/TinyMixedTestArtifact.h"

namespace v4rt::cuda {
namespace {

using namespace test;

constexpr float kTolerance = 1e-5f; // same kernels, other chunking
constexpr int64_t kPage = 16;       // tiny-mixed: lcm(4, 16)

class CudaSessionFaults : public ::testing::Test {
protected:
  EmulatorQueries emu_; // the emulated driver's fault injection and limits

  void SetUp() override {
    CudaLoadOptions options;
    options.maxContext = 64;
    model_ = loadTinyMixed(options);
    if (!model_)
      GTEST_SKIP() << "no CUDA device (run with the emulated driver on LD_LIBRARY_PATH)";
    // The emulator's test queries (absent from a real libcuda: skip).
    emu_ = EmulatorQueries::find();
    if (!emu_.setPinnedHostLimit || !emu_.setDeviceMemoryLimit || !emu_.failSubmission || !emu_.failKernel)
      GTEST_SKIP() << "needs the emulated driver's test queries (tests/emulated-cuda)";
  }
  void TearDown() override { emu_.reset(); }

  std::unique_ptr<PrefixCache> hostCache(uint64_t deviceTierBytes = 0) const {
    PrefixCacheOptions options;
    options.hostBytes = 64ull << 20; // --swa-cache full: every page keeps its window snapshot
    return makeCudaPrefixCache(*model_, options, deviceTierBytes);
  }
  // A no-cache session's last-row logits after `ids`.
  std::vector<float> coldLastRow(const std::vector<int32_t> &ids) const {
    CudaSession cold(*model_);
    std::vector<float> logits(static_cast<size_t>(model_->vocabSize()));
    cold.prefill(ids.data(), static_cast<int64_t>(ids.size()), logits.data(), /*lastRowOnly=*/true);
    return logits;
  }
  // Copies a snapshot makes: one per fixed-size cache slot.
  unsigned long long snapshotCopies() const {
    unsigned long long copies = 0;
    for (const CacheSlot &slot : model_->program().caches)
      copies += slot.kind == CacheKind::Entries ? 0 : 1;
    return copies;
  }
  // Makes the device report no free memory.
  void fillDevice() {
    size_t freeBytes = 0, totalBytes = 0;
    ASSERT_EQ(model_->api().cuMemGetInfo(&freeBytes, &totalBytes), CUDA_SUCCESS);
    emu_.setDeviceMemoryLimit(totalBytes - freeBytes);
  }

  std::unique_ptr<CudaModel> model_;
};

void expectOneLine(const std::string &message, const std::string &expected) {
  EXPECT_NE(message.find(expected), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

// A copy of page 0's export refused after the first was queued into its
// pinned payload: the payload outlives that copy (the emulator aborts on a
// freed DMA target), the prefill succeeds, page 0 is simply not cached.
TEST_F(CudaSessionFaults, AFailedPageExportLeavesThePageUncachedAndTheSessionExact) {
  const int64_t V = model_->vocabSize();
  const std::vector<int32_t> ids = pseudoRandomIds(41, V, 11);
  const std::vector<int32_t> prompt = slice(ids, 0, 40);
  const std::vector<float> reference = coldLastRow(prompt);
  const std::unique_ptr<PrefixCache> cache = hostCache();
  CudaSessionOptions options;
  options.prefixCache = cache.get();
  CudaSession session(*model_, options);
  session.ensureResident();
  // The chunk [0, 16) ends with the snapshot at 16, then page 0's export.
  emu_.failSubmission("cuMemcpyDtoHAsync", snapshotCopies() + 2);
  std::vector<float> logits(static_cast<size_t>(V));
  ASSERT_NO_THROW(session.prefill(prompt.data(), 40, logits.data(), /*lastRowOnly=*/true));
  EXPECT_LE(maxAbsDifference(logits, reference), kTolerance);
  EXPECT_EQ(session.position(), 40);
  EXPECT_EQ(session.tokens(), prompt);
  EXPECT_EQ(session.cacheFailures(), 1);
  expectOneLine(session.lastCacheFailure(), "exporting page 0 of cache slot");
  EXPECT_EQ(cache->stats().pagesStored, 1u); // page 1 only
  EXPECT_EQ(cache->stats().storeFailures, 1u); // the cache counts the failed export too
  expectOneLine(cache->lastWarning(), "exporting page 0 of cache slot");
  EXPECT_LE(maxAbsDifference(decodeLogits(session, ids[40], V), coldLastRow(ids)), kTolerance);

  // Nothing to restore: page 0 is missing, and pages are used from page 0 on.
  CudaSession next(*model_, options);
  EXPECT_EQ(next.prefill(ids.data(), 41, logits.data(), /*lastRowOnly=*/true), 0);
  EXPECT_LE(maxAbsDifference(logits, coldLastRow(ids)), kTolerance);
}

// No pinned memory at all and a full device while a session with device and
// host tiers prefills: its pages go to the host tier in pageable memory, its
// snapshots are skipped (counted), its logits are a no-cache session's, and
// a later session restores those pages.
TEST_F(CudaSessionFaults, RefusedPinnedAndDeviceMemoryCostTheCacheNothingOfTheSession) {
  const int64_t V = model_->vocabSize();
  const std::vector<int32_t> ids = pseudoRandomIds(41, V, 12);
  const std::vector<float> reference = coldLastRow(ids);
  const std::unique_ptr<PrefixCache> cache = hostCache(/*deviceTierBytes=*/64ull << 20);
  CudaSessionOptions options;
  options.prefixCache = cache.get();
  CudaSession session(*model_, options), next(*model_, options);
  session.ensureResident();
  next.ensureResident();
  emu_.setPinnedHostLimit(0);
  fillDevice();
  std::vector<float> logits(static_cast<size_t>(V));
  ASSERT_NO_THROW(session.prefill(ids.data(), 41, logits.data(), /*lastRowOnly=*/true));
  EXPECT_LE(maxAbsDifference(logits, reference), kTolerance);
  EXPECT_EQ(session.position(), 41);
  EXPECT_EQ(session.cacheFailures(), 2); // the snapshots at 16 and 32
  expectOneLine(session.lastCacheFailure(), "cuMemAllocHost failed: CUDA_ERROR_OUT_OF_MEMORY");
  const PrefixCacheStats stats = cache->stats();
  EXPECT_EQ(stats.pagesStored, 2u);
  EXPECT_EQ(stats.ioFailures, 0u);
  EXPECT_EQ(stats.storeFailures, 0u); // snapshots are the session's, not the cache's
  EXPECT_EQ(cache->findTier("device")->stats().pages, 0u);
  const kvcache::TierStats host = cache->findTier("host")->stats();
  EXPECT_EQ(host.pages, 2u);
  EXPECT_EQ(host.pinnedBytes, 0u);
  EXPECT_EQ(host.pinFailures, 2u);
  EXPECT_GE(pinnedAllocatorOf(*cache)->stats().failures, 2u);

  emu_.setPinnedHostLimit(SIZE_MAX);
  emu_.setDeviceMemoryLimit(SIZE_MAX);
  EXPECT_EQ(next.prefill(ids.data(), 41, logits.data(), /*lastRowOnly=*/true), 2 * kPage);
  EXPECT_LE(maxAbsDifference(logits, reference), kTolerance);
  EXPECT_EQ(next.cacheFailures(), 0);
}

// A copy of a cached page refused part way through its restore: the session
// goes back to the empty state and prefills the whole prompt.
TEST_F(CudaSessionFaults, AFailedRestoreFallsBackToAFullPrefill) {
  const int64_t V = model_->vocabSize();
  const std::vector<int32_t> ids = pseudoRandomIds(41, V, 13);
  const std::vector<float> reference = coldLastRow(ids);
  const std::unique_ptr<PrefixCache> cache = hostCache();
  CudaSessionOptions options;
  options.prefixCache = cache.get();
  std::vector<float> logits(static_cast<size_t>(V));
  {
    CudaSession first(*model_, options);
    first.prefill(ids.data(), 41, logits.data(), /*lastRowOnly=*/true); // pages 0 and 1
  }
  ASSERT_EQ(cache->stats().pagesStored, 2u);
  CudaSession session(*model_, options);
  session.ensureResident();
  emu_.failSubmission("cuMemcpyHtoDAsync", 2); // page 0's second cache slot
  ASSERT_NO_THROW(EXPECT_EQ(session.prefill(ids.data(), 41, logits.data(), /*lastRowOnly=*/true), 0));
  EXPECT_LE(maxAbsDifference(logits, reference), kTolerance);
  EXPECT_EQ(session.cacheFailures(), 1);
  expectOneLine(session.lastCacheFailure(), "restoring page 0 of cache slot");
  EXPECT_EQ(cache->stats().storeFailures, 1u);
  EXPECT_EQ(session.prefillTokensComputed(), 41);
  EXPECT_EQ(session.position(), 41);
  EXPECT_EQ(session.tokens(), ids);
  const int32_t next = 99;
  EXPECT_LE(maxAbsDifference(decodeLogits(session, next, V), coldDecode(*model_, ids, next)), kTolerance);
}

// A prefill whose input copy is refused ran none of its kernels: it fails,
// the session stays where it was, and the same call again succeeds.
TEST_F(CudaSessionFaults, APrefillRefusedBeforeItsKernelsCanBeRetried) {
  const int64_t V = model_->vocabSize();
  const std::vector<int32_t> ids = pseudoRandomIds(16, V, 16);
  CudaSession session(*model_);
  session.prefill(ids.data(), 8, nullptr);
  emu_.failSubmission("cuMemcpyHtoDAsync", 1); // the chunk's ids
  try {
    session.prefill(ids.data() + 8, 8, nullptr);
    FAIL() << "a prefill whose inputs were refused returned";
  } catch (const v4c::Error &e) {
    expectOneLine(e.what(), "cuMemcpyHtoDAsync failed: CUDA_ERROR_INVALID_VALUE");
  }
  EXPECT_EQ(session.position(), 8);
  EXPECT_EQ(session.tokens(), slice(ids, 0, 8));
  session.prefill(ids.data() + 8, 8, nullptr);
  const int32_t next = 7;
  EXPECT_LE(maxAbsDifference(decodeLogits(session, next, V), coldDecode(*model_, ids, next)), kTolerance);
}

// A parent whose snapshots found no pinned memory: a fork whose own buffers
// find none either is a one-line error that leaves the parent as it was;
// once memory is back, the fork prefills from 0 (no snapshot to start from).
TEST_F(CudaSessionFaults, ForksWithoutPinnedMemoryFailCleanlyOrPrefillAgain) {
  const int64_t V = model_->vocabSize();
  const std::vector<int32_t> ids = pseudoRandomIds(45, V, 14);
  const int32_t next = 42;
  const std::vector<float> parentReference = coldDecode(*model_, ids, next);
  const std::vector<float> childReference = coldDecode(*model_, slice(ids, 0, 40), next);
  CudaSession parent(*model_);
  parent.ensureResident();
  emu_.setPinnedHostLimit(0);
  parent.prefill(ids.data(), 45, nullptr); // chunk [0, 32): no snapshot at 32
  EXPECT_EQ(parent.cacheFailures(), 1);
  try {
    parent.fork(40);
    FAIL() << "a fork got pinned staging buffers past the limit";
  } catch (const v4c::Error &e) {
    expectOneLine(e.what(), "cuMemAllocHost failed: CUDA_ERROR_OUT_OF_MEMORY");
  }
  EXPECT_EQ(parent.position(), 45);
  EXPECT_EQ(parent.tokens(), ids);
  emu_.setPinnedHostLimit(SIZE_MAX);
  std::unique_ptr<CudaSession> child = parent.fork(40);
  EXPECT_EQ(child->position(), 40);
  EXPECT_EQ(child->prefillTokensComputed(), 40);
  EXPECT_LE(maxAbsDifference(decodeLogits(*child, next, V), childReference), kTolerance);
  EXPECT_LE(maxAbsDifference(decodeLogits(parent, next, V), parentReference), kTolerance);
}

// A kernel that fails loses the context (as on a GPU): the prefill that ran
// it fails with a one-line error, the session's later calls say it failed,
// a new session's first call fails too; nothing hangs. In a child process
// (gtest death test): the lost context would fail every later test here.
void runAfterAFailedKernel(const CudaModel &model, void (*failKernel)(unsigned long long)) {
  const std::vector<int32_t> ids = pseudoRandomIds(16, model.vocabSize(), 15);
  CudaSession session(model);
  session.prefill(ids.data(), 4, nullptr);
  failKernel(3);
  std::vector<float> logits(static_cast<size_t>(model.vocabSize()));
  try {
    session.prefill(ids.data() + 4, 8, logits.data(), /*lastRowOnly=*/true);
    ADD_FAILURE() << "a prefill whose kernel failed returned";
  } catch (const v4c::Error &e) {
    expectOneLine(e.what(), "CUDA_ERROR_LAUNCH_FAILED");
  }
  EXPECT_EQ(session.position(), 4);
  for (int call = 0; call < 3; ++call) {
    try {
      if (call == 0)
        session.decode(ids[4], logits.data());
      else if (call == 1)
        session.prefill(ids.data() + 4, 2, nullptr);
      else
        session.fork(2);
      ADD_FAILURE() << "call " << call << " on a failed session returned";
    } catch (const v4c::Error &e) {
      expectOneLine(e.what(), "this CUDA session failed earlier and cannot continue");
    }
  }
  try {
    CudaSession fresh(model);
    fresh.prefill(ids.data(), 4, nullptr);
    ADD_FAILURE() << "a session on a lost context ran";
  } catch (const v4c::Error &e) {
    expectOneLine(e.what(), "CUDA_ERROR_LAUNCH_FAILED");
  }
}

TEST_F(CudaSessionFaults, AFailedKernelFailsLaterCallsWithOneLineErrors) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        runAfterAFailedKernel(*model_, emu_.failKernel);
        std::exit(::testing::Test::HasFailure() ? 1 : 0);
      },
      ::testing::ExitedWithCode(0), "kernel .* failed: injected failure");
}

} // namespace
} // namespace v4rt::cuda
