// CudaSession::fork / truncate on the emulated driver (tests/emulated-cuda):
// the real runtime and the real generated kernels of tiny-mixed (fp32, sm_90a;
// page = lcm of its entry rates = 16 tokens, prefill chunk 64). A forked or
// truncated session's next logits equal a cold session fed the same ids, only
// the tokens after the restored boundary are prefilled again, the source is
// untouched, and a preempted source is read from its pinned host copy.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "runtime/PrefixCache.h"
#include "runtime/cuda/CudaPrefixCache.h"
#include "runtime/cuda/CudaSession.h"
#include "runtime/cuda/CudaSessionTestSupport.h"
#include "runtime/cuda/TinyMixedTestArtifact.h"

namespace v4rt::cuda {
namespace {

using namespace test;

constexpr float kTolerance = 1e-5f;
constexpr int64_t kPage = 16; // tiny-mixed: lcm(4, 16)

class CudaSessionFork : public ::testing::Test {
protected:
  // The test artifact (TinyMixedTestArtifact.h); null without a device.
  std::unique_ptr<CudaModel> load(int64_t poolSessions = 0) {
    CudaLoadOptions options;
    options.maxContext = 64;
    options.deviceKvSessions = poolSessions;
    return loadTinyMixed(options);
  }
};

#define LOAD_OR_SKIP(model, ...)                                                                                      \
  std::unique_ptr<CudaModel> model = load(__VA_ARGS__);                                                              \
  if (!model)                                                                                                         \
  GTEST_SKIP() << "no CUDA device (run with the emulated driver on LD_LIBRARY_PATH)"

// Forks at the current position, at page boundaries (one a prefill chunk
// ended on, one a decode step reached), inside a page, and below the first
// kept snapshot; then the parent goes on as if nothing happened.
TEST_F(CudaSessionFork, ForksEqualColdSessionsAndLeaveTheParent) {
  LOAD_OR_SKIP(model);
  const int64_t V = model->vocabSize();
  const std::vector<int32_t> ids = pseudoRandomIds(49, V, 1);
  const int32_t next = 77;
  CudaSession parent(*model);
  // Chunks [0, 32) and [32, 45) (a chunk ends on the last page boundary it
  // crosses), then decode steps to 49: snapshots at 32 and 48, none at 16.
  parent.prefill(ids.data(), 45, nullptr);
  for (int64_t i = 45; i < 49; ++i)
    parent.decode(ids[i], nullptr);
  ASSERT_EQ(parent.position(), 49);
  EXPECT_EQ(parent.prefillTokensComputed(), 45);
  const std::vector<float> parentReference = coldDecode(*model, ids, next);

  struct Case {
    int64_t position, computed; // computed = position - restored boundary
  };
  for (const Case c : {Case{49, 0}, Case{48, 0}, Case{40, 8}, Case{20, 20}}) {
    SCOPED_TRACE("fork at " + std::to_string(c.position));
    std::unique_ptr<CudaSession> child = parent.fork(c.position);
    EXPECT_EQ(child->position(), c.position);
    EXPECT_EQ(child->tokens(), slice(ids, 0, c.position));
    EXPECT_EQ(child->prefillTokensComputed(), c.computed);
    const std::vector<float> reference =
        c.position == 49 ? parentReference : coldDecode(*model, slice(ids, 0, c.position), next);
    EXPECT_LE(maxAbsDifference(decodeLogits(*child, next, V), reference), kTolerance);
  }
  EXPECT_EQ(parent.position(), 49);
  EXPECT_EQ(parent.tokens(), ids);
  EXPECT_EQ(parent.prefillTokensComputed(), 45);
  EXPECT_LE(maxAbsDifference(decodeLogits(parent, next, V), parentReference), kTolerance);
}

// Truncate, then go on with other tokens (through the decode graph captured
// before): a cold session fed the same ids.
TEST_F(CudaSessionFork, TruncateThenOtherTokensEqualsColdSession) {
  LOAD_OR_SKIP(model);
  const int64_t V = model->vocabSize();
  const std::vector<int32_t> ids = pseudoRandomIds(45, V, 2);
  CudaSession session(*model);
  session.prefill(ids.data(), 44, nullptr); // snapshot at 32
  session.decode(ids[44], nullptr);         // the decode graph is captured
  struct Case {
    int64_t position, computed;
    int32_t other;
  };
  for (const Case c : {Case{40, 8, 300}, Case{10, 10, 5}}) {
    SCOPED_TRACE("truncate to " + std::to_string(c.position));
    const int64_t before = session.prefillTokensComputed();
    session.truncate(c.position);
    EXPECT_EQ(session.position(), c.position);
    EXPECT_EQ(session.tokens(), slice(ids, 0, c.position));
    EXPECT_EQ(session.prefillTokensComputed() - before, c.computed);
    EXPECT_LE(maxAbsDifference(decodeLogits(session, c.other, V),
                               coldDecode(*model, slice(ids, 0, c.position), c.other)),
              kTolerance);
    EXPECT_EQ(session.position(), c.position + 1);
  }
}

// Positions outside 0..position() are one-line errors that change nothing.
TEST_F(CudaSessionFork, RejectsOutOfRangePositions) {
  LOAD_OR_SKIP(model);
  CudaSession session(*model);
  const std::vector<int32_t> ids = pseudoRandomIds(4, model->vocabSize(), 3);
  session.prefill(ids.data(), 4, nullptr);
  const auto expectError = [](auto &&call, const std::string &expected) {
    try {
      call();
      FAIL() << "accepted: " << expected;
    } catch (const v4c::Error &e) {
      EXPECT_EQ(std::string(e.what()), expected);
    }
  };
  expectError([&] { session.fork(9); }, "fork position 9 is out of range: the session holds 4 tokens (use 0..4)");
  expectError([&] { session.fork(-1); }, "fork position -1 is out of range: the session holds 4 tokens (use 0..4)");
  expectError([&] { session.truncate(5); },
              "truncate position 5 is out of range: the session holds 4 tokens (use 0..4)");
  EXPECT_EQ(session.position(), 4);
  session.truncate(4); // a no-op
  EXPECT_EQ(session.tokens(), ids);
  EXPECT_EQ(session.prefillTokensComputed(), 4);
}

// A pool of one session: forking a preempted source reads its rows from its
// pinned host copy (and leaves it preempted); forking a resident source
// preempts it for the child, the same.
TEST_F(CudaSessionFork, ForksOfAPreemptedSourceReadItsHostCopy) {
  LOAD_OR_SKIP(model, 1);
  const int64_t V = model->vocabSize();
  DeviceKvPool &pool = model->kvPool();
  const std::vector<int32_t> ids = pseudoRandomIds(20, V, 4);
  const int32_t next = 123;
  CudaSession source(*model), other(*model);
  source.prefill(ids.data(), 20, nullptr); // snapshot at 16
  other.prefill(ids.data(), 3, nullptr);
  ASSERT_FALSE(source.isResident());
  const uint64_t preemptions = pool.stats().preemptions;

  std::unique_ptr<CudaSession> mid = source.fork(18);
  EXPECT_FALSE(source.isResident());
  EXPECT_EQ(mid->prefillTokensComputed(), 2);
  EXPECT_EQ(pool.stats().preemptions, preemptions + 1); // `other` made room for the child
  std::unique_ptr<CudaSession> here = source.fork(20);
  EXPECT_EQ(here->prefillTokensComputed(), 0);
  EXPECT_LE(maxAbsDifference(decodeLogits(*mid, next, V), coldDecode(*model, slice(ids, 0, 18), next)), kTolerance);
  EXPECT_LE(maxAbsDifference(decodeLogits(*here, next, V), coldDecode(*model, ids, next)), kTolerance);

  // Resident source: the child's acquire preempts it before the copies.
  source.ensureResident();
  std::unique_ptr<CudaSession> again = source.fork(17);
  EXPECT_FALSE(source.isResident());
  EXPECT_EQ(again->prefillTokensComputed(), 1);
  EXPECT_LE(maxAbsDifference(decodeLogits(*again, next, V), coldDecode(*model, slice(ids, 0, 17), next)),
            kTolerance);
  EXPECT_LE(maxAbsDifference(decodeLogits(source, next, V), coldDecode(*model, ids, next)), kTolerance);
}

// Beyond the kept snapshots (2 here), the prefix cache's page serves the
// boundary (restorePages, as for a fresh prompt). The pages the truncated
// session then completes carry its new ids: a later session restores them
// and computes what a cold one does.
TEST_F(CudaSessionFork, TruncateRestoresFromThePrefixCacheAndExportsTheNewIds) {
  LOAD_OR_SKIP(model);
  const int64_t V = model->vocabSize();
  PrefixCacheOptions cacheOptions;
  cacheOptions.hostBytes = 64ull << 20; // --swa-cache full: every page keeps its window snapshot
  const std::unique_ptr<PrefixCache> cache = makeCudaPrefixCache(*model, cacheOptions, 0);
  CudaSessionOptions options;
  options.prefixCache = cache.get();
  options.keptSnapshots = 2;
  const std::vector<int32_t> ids = pseudoRandomIds(60, V, 5), other = pseudoRandomIds(32, V, 6);
  const int32_t next = 77;
  // A new session given `prompt` restores `pages` cached pages and ends with
  // a cold session's last-row logits.
  const auto expectRestores = [&](const std::vector<int32_t> &prompt, int64_t pages) {
    CudaSession restored(*model, options), cold(*model);
    std::vector<float> restoredLogits(V), coldLogits(V);
    const int64_t count = static_cast<int64_t>(prompt.size());
    EXPECT_EQ(restored.prefill(prompt.data(), count, restoredLogits.data(), /*lastRowOnly=*/true), pages * kPage);
    cold.prefill(prompt.data(), count, coldLogits.data(), /*lastRowOnly=*/true);
    EXPECT_LE(maxAbsDifference(restoredLogits, coldLogits), kTolerance);
  };
  {
    CudaSession session(*model, options);
    session.prefill(ids.data(), 60, nullptr); // pages 0..2 exported; snapshots kept at 32 and 48 only
    const int64_t before = session.prefillTokensComputed();
    session.truncate(20);
    EXPECT_EQ(session.prefillTokensComputed() - before, 4); // page 0 (and its window snapshot) from the cache
    EXPECT_EQ(session.tokens(), slice(ids, 0, 20));
    EXPECT_LE(maxAbsDifference(decodeLogits(session, next, V), coldDecode(*model, slice(ids, 0, 20), next)),
              kTolerance);
    session.prefill(other.data(), 15, nullptr); // completes page 1 again, with other ids
    ASSERT_EQ(session.position(), 36);
    std::vector<int32_t> prompt = session.tokens();
    prompt.push_back(other[15]);
    expectRestores(prompt, 2); // pages 0 and 1, page 1 under the new ids' key

    // From the snapshot at 32 this time: page 2 is chained to page 1's key.
    const int64_t computed = session.prefillTokensComputed();
    session.truncate(33);
    EXPECT_EQ(session.prefillTokensComputed() - computed, 1);
    session.prefill(other.data() + 16, 15, nullptr);
    ASSERT_EQ(session.position(), 48);
    prompt = session.tokens();
    prompt.push_back(other[31]);
    expectRestores(prompt, 3);
  }
}

} // namespace
} // namespace v4rt::cuda
