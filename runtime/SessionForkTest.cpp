// fork and truncate: a forked or rolled-back session computes what a fresh
// session fed the same ids does, and a shared prefix is prefilled only once.
#include "runtime/Session.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "runtime/PrefixCache.h"
#include "runtime/PrefixCacheTestSupport.h"
#include "runtime/api/v4rt.hpp"

namespace v4rt {
namespace {

using test::maxAbsDifference;
using test::pseudoRandomIds;

constexpr float kTolerance = 1e-6f;

std::vector<int32_t> slice(const std::vector<int32_t> &ids, size_t begin, size_t end) {
  return std::vector<int32_t>(ids.begin() + begin, ids.begin() + end);
}

// Decodes `ids` one by one; returns every step's logits.
std::vector<float> decodeAll(Session &session, const std::vector<int32_t> &ids, int64_t vocab) {
  std::vector<float> logits(ids.size() * vocab);
  for (size_t i = 0; i < ids.size(); ++i)
    session.decode(ids[i], logits.data() + i * vocab);
  return logits;
}

// A fresh cache-less session that prefills `prefix`, then decodes `steps`.
std::vector<float> freshDecode(const Model &model, const std::vector<int32_t> &prefix,
                               const std::vector<int32_t> &steps) {
  Session fresh(model);
  fresh.prefill(prefix.data(), static_cast<int64_t>(prefix.size()), nullptr);
  return decodeAll(fresh, steps, model.vocabSize());
}

std::vector<float> prefillRows(Session &session, const std::vector<int32_t> &ids, int64_t vocab) {
  std::vector<float> logits(ids.size() * vocab);
  session.prefill(ids.data(), static_cast<int64_t>(ids.size()), logits.data());
  return logits;
}

// Branching at the current position: two continuations, each equal to a
// fresh session that prefilled the whole sequence.
TEST(SessionFork, BranchHereThenDivergentContinuations) {
  auto model = Model::load(test::compiledArtifact("tiny-mixed"));
  const int64_t V = model->vocabSize();
  const std::vector<int32_t> prefix = pseudoRandomIds(75, V, 1);
  const std::vector<int32_t> first = pseudoRandomIds(6, V, 2), second = pseudoRandomIds(6, V, 3);
  Session base(*model);
  base.prefill(prefix.data(), 75, nullptr);
  std::unique_ptr<Session> branch = base.fork(75);
  EXPECT_EQ(branch->position(), 75);
  EXPECT_EQ(branch->tokens(), prefix);
  EXPECT_EQ(branch->prefillTokensComputed(), 0);
  // Interleaved, as two live conversations would run.
  std::vector<float> baseLogits(first.size() * V), branchLogits(second.size() * V);
  for (size_t i = 0; i < first.size(); ++i) {
    base.decode(first[i], baseLogits.data() + i * V);
    branch->decode(second[i], branchLogits.data() + i * V);
  }
  for (const auto &[continuation, logits] :
       {std::pair{first, baseLogits}, std::pair{second, branchLogits}}) {
    std::vector<int32_t> whole = prefix;
    whole.insert(whole.end(), continuation.begin(), continuation.end());
    Session fresh(*model);
    const std::vector<float> all = prefillRows(fresh, whole, V);
    // Decode step i's logits are the fresh prefill's row 75 + i.
    const std::vector<float> rows(all.begin() + 75 * V, all.end());
    EXPECT_LE(maxAbsDifference(logits, rows), kTolerance);
  }
  EXPECT_GT(maxAbsDifference(baseLogits, branchLogits), 1e-3f); // they did diverge
}

// Copies share chunks; a write into a shared chunk copies it first, so the
// other buffer never sees it (also after a truncation into a shared chunk).
TEST(CacheBufferChunks, CopyOnWrite) {
  CacheBuffer source;
  source.width = 2;
  source.useChunks(4);
  source.resizeRows(6);
  for (int64_t r = 0; r < 6; ++r)
    source.row(r)[0] = static_cast<float>(r);
  ASSERT_EQ(source.chunks.size(), 2u);
  CacheBuffer copy = source;
  EXPECT_EQ(copy.chunks[0].get(), source.chunks[0].get());
  copy.resizeRows(7); // append into the shared partial chunk
  copy.row(6)[0] = 70.0f;
  copy.row(5)[0] = 50.0f;
  EXPECT_EQ(copy.chunks[0].get(), source.chunks[0].get()); // the full chunk stays shared
  EXPECT_NE(copy.chunks[1].get(), source.chunks[1].get());
  EXPECT_EQ(source.row(5)[0], 5.0f);
  EXPECT_EQ(copy.row(4)[0], 4.0f);
  copy.resizeRows(2); // back into chunk 0, still shared
  copy.resizeRows(3);
  copy.row(2)[0] = -1.0f;
  EXPECT_EQ(source.row(2)[0], 2.0f);
  EXPECT_EQ(static_cast<const CacheBuffer &>(copy).row(1)[0], 1.0f);
  EXPECT_EQ(copy.chunks.size(), 1u);
  EXPECT_EQ(source.rows, 6);
}

// Forked sessions reference the Entries chunks below the fork point instead
// of copying them; only the chunk each appends into is copied.
TEST(SessionFork, SharesCompleteEntriesChunks) {
  auto model = Model::load(test::compiledArtifact("tiny-mixed"));
  const int64_t V = model->vocabSize();
  const std::vector<int32_t> ids = pseudoRandomIds(90, V, 13);
  Session base(*model);
  base.prefill(ids.data(), 75, nullptr);
  std::unique_ptr<Session> atCurrent = base.fork(75), earlier = base.fork(40);
  decodeAll(base, slice(ids, 75, 90), V);
  decodeAll(*atCurrent, pseudoRandomIds(15, V, 14), V);
  decodeAll(*earlier, pseudoRandomIds(10, V, 15), V);
  const std::vector<CacheSlot> &slots = model->program().caches;
  int64_t entriesSlots = 0;
  for (size_t s = 0; s < slots.size(); ++s) {
    if (slots[s].kind != CacheKind::Entries)
      continue;
    ++entriesSlots;
    const CacheBuffer &original = base.caches()[s];
    ASSERT_EQ(original.chunkRows, 16 / slots[s].rate);
    for (size_t c = 0; c < 4; ++c) // pages 0..3 lie below position 75
      EXPECT_EQ(atCurrent->caches()[s].chunks[c].get(), original.chunks[c].get()) << slots[s].name;
    for (size_t c = 0; c < 2; ++c) // pages 0..1 lie below position 40
      EXPECT_EQ(earlier->caches()[s].chunks[c].get(), original.chunks[c].get()) << slots[s].name;
    // The chunk of page 4 got different rows in base and atCurrent.
    EXPECT_NE(atCurrent->caches()[s].chunks[4].get(), original.chunks[4].get()) << slots[s].name;
  }
  EXPECT_GT(entriesSlots, 0);
}

struct EarlierCase {
  const char *artifact;
  int64_t prompt, decoded;
  std::vector<int64_t> positions;
};

class SessionForkEarlier : public ::testing::TestWithParam<EarlierCase> {};

// Forks below the current position (page boundaries, mid-page and
// mid-compression-window positions, inside the decoded tail) equal a fresh
// session of that prefix; only the tokens after the last page boundary are
// prefilled again, and the source session is untouched.
TEST_P(SessionForkEarlier, EqualsFreshSessionOfThePrefix) {
  const EarlierCase param = GetParam();
  auto model = Model::load(test::compiledArtifact(param.artifact));
  const int64_t V = model->vocabSize();
  const int64_t P = pageTokensFor(model->program().caches);
  const std::vector<int32_t> ids = pseudoRandomIds(param.prompt + param.decoded, V, 4);
  const std::vector<int32_t> next = pseudoRandomIds(3, V, 5);
  Session base(*model);
  base.prefill(ids.data(), param.prompt, nullptr);
  decodeAll(base, slice(ids, param.prompt, ids.size()), V);
  ASSERT_EQ(base.position(), param.prompt + param.decoded);
  for (int64_t position : param.positions) {
    SCOPED_TRACE("fork at " + std::to_string(position));
    std::unique_ptr<Session> child = base.fork(position);
    EXPECT_EQ(child->position(), position);
    EXPECT_EQ(child->tokens(), slice(ids, 0, position));
    EXPECT_EQ(child->prefillTokensComputed(), position % P);
    const std::vector<float> reference = freshDecode(*model, slice(ids, 0, position), next);
    EXPECT_LE(maxAbsDifference(decodeAll(*child, next, V), reference), kTolerance);
  }
  // The source goes on as if nothing happened.
  const std::vector<float> reference = freshDecode(*model, ids, next);
  EXPECT_LE(maxAbsDifference(decodeAll(base, next, V), reference), kTolerance);
}

INSTANTIATE_TEST_SUITE_P(
    Conformance, SessionForkEarlier,
    ::testing::Values(EarlierCase{"tiny-mixed", 75, 6, {0, 1, 13, 16, 33, 46, 47, 64, 77, 80}},
                      EarlierCase{"tiny-real-rates", 260, 5, {0, 3, 130, 128, 256, 258, 263}}),
    [](const auto &info) {
      return info.param.artifact == std::string("tiny-mixed") ? std::string("TinyMixed")
                                                              : std::string("TinyRealRates");
    });

// Truncate, then continue with other tokens: a fresh session fed the same ids.
TEST(SessionTruncate, ContinuingEqualsFreshSession) {
  auto model = Model::load(test::compiledArtifact("tiny-mixed"));
  const int64_t V = model->vocabSize();
  const std::vector<int32_t> ids = pseudoRandomIds(80, V, 6);
  const std::vector<int32_t> other = pseudoRandomIds(10, V, 7), next = pseudoRandomIds(3, V, 8);
  Session session(*model);
  session.prefill(ids.data(), 75, nullptr);
  decodeAll(session, slice(ids, 75, 80), V);
  for (int64_t position : {50, 50, 21, 0}) {
    SCOPED_TRACE("truncate to " + std::to_string(position));
    const int64_t computedBefore = session.prefillTokensComputed();
    session.truncate(position);
    EXPECT_EQ(session.position(), position);
    EXPECT_EQ(session.tokens(), slice(ids, 0, position));
    EXPECT_EQ(session.prefillTokensComputed() - computedBefore, position % 16);
    Session fresh(*model);
    fresh.prefill(ids.data(), position, nullptr);
    EXPECT_LE(maxAbsDifference(prefillRows(session, other, V), prefillRows(fresh, other, V)),
              kTolerance);
    EXPECT_LE(maxAbsDifference(decodeAll(session, next, V), decodeAll(fresh, next, V)),
              kTolerance);
    // Back to the original ids for the next round.
    session.truncate(position);
    session.prefill(ids.data() + position, 80 - position, nullptr);
    ASSERT_EQ(session.tokens(), ids);
  }
}

// Beyond the snapshots a session keeps, a prefix cache that holds the pages
// serves the boundary; without one, the session starts over from position 0.
TEST(SessionTruncate, RestoresFromThePrefixCacheBeyondKeptSnapshots) {
  auto model = Model::load(test::compiledArtifact("tiny-mixed"));
  const int64_t V = model->vocabSize();
  const std::vector<int32_t> ids = pseudoRandomIds(200, V, 9), next = pseudoRandomIds(4, V, 10);
  test::TempDir dir;
  PrefixCache cache(*model, test::diskOnly(dir.path()));
  Session cached(*model, &cache), plain(*model);
  cached.prefill(ids.data(), 200, nullptr);
  plain.prefill(ids.data(), 200, nullptr);
  const std::vector<float> reference = freshDecode(*model, slice(ids, 0, 40), next);

  std::unique_ptr<Session> fromScratch = plain.fork(40);
  EXPECT_EQ(fromScratch->prefillTokensComputed(), 40); // no snapshot kept that far back
  EXPECT_LE(maxAbsDifference(decodeAll(*fromScratch, next, V), reference), kTolerance);

  const int64_t before = cached.prefillTokensComputed();
  cached.truncate(40);
  EXPECT_EQ(cached.prefillTokensComputed() - before, 8); // pages 0 and 1 came from the cache
  EXPECT_EQ(cache.stats().prefillTokensSaved, 32u);
  EXPECT_LE(maxAbsDifference(decodeAll(cached, next, V), reference), 1e-5f);
}

// Item 7: a long shared prefix is prefilled once; five quick instructions
// each fork, append a few tokens, decode a few and are discarded.
TEST(SessionForkApi, QuickInstructionsNeverPrefillTheSharedPrefixAgain) {
  ModelHandle model(test::compiledArtifact("tiny-mixed"));
  const int64_t V = model.vocabSize();
  const std::vector<int32_t> prefix = pseudoRandomIds(300, V, 11);
  SessionHandle base(model);
  base.prefill(prefix);
  int64_t computed = base.prefillTokensComputed();
  EXPECT_EQ(computed, 300);
  auto reference = Model::load(test::compiledArtifact("tiny-mixed"));
  for (uint32_t instruction = 0; instruction < 5; ++instruction) {
    SCOPED_TRACE("instruction " + std::to_string(instruction));
    SessionHandle quick = base.fork(base.position());
    const std::vector<int32_t> appended = pseudoRandomIds(4, V, 100 + instruction);
    std::vector<float> logits = quick.prefill(appended);
    std::vector<int32_t> whole = prefix;
    whole.insert(whole.end(), appended.begin(), appended.end());
    std::vector<int32_t> generated;
    for (int step = 0; step < 3; ++step) {
      const float *last = logits.data() + logits.size() - V;
      generated.push_back(static_cast<int32_t>(std::max_element(last, last + V) - last));
      logits = quick.decode(generated.back());
    }
    EXPECT_EQ(quick.position(), 307);
    EXPECT_EQ(quick.prefillTokensComputed(), 4);
    computed += quick.prefillTokensComputed();
    // What a fresh session computes for the same ids.
    const std::vector<float> fresh = freshDecode(*reference, whole, generated);
    EXPECT_LE(maxAbsDifference(logits, std::vector<float>(fresh.end() - V, fresh.end())),
              kTolerance);
  }
  EXPECT_EQ(computed, 300 + 5 * 4); // the prefix exactly once
  EXPECT_EQ(base.position(), 300);
  EXPECT_EQ(base.prefillTokensComputed(), 300);
}

// Positions outside 0..current are one-line errors, in C++ and through the C API.
TEST(SessionForkApi, RejectsBadPositions) {
  ModelHandle model(test::compiledArtifact("tiny-mixed"));
  SessionHandle session(model);
  session.prefill(pseudoRandomIds(20, model.vocabSize(), 12));
  const auto expectError = [](auto &&call, const std::string &expected) {
    try {
      call();
      FAIL() << "accepted: " << expected;
    } catch (const RuntimeError &e) {
      const std::string message = e.what();
      EXPECT_NE(message.find(expected), std::string::npos) << message;
      EXPECT_NE(message.find("use 0..20"), std::string::npos) << message;
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    }
  };
  expectError([&] { session.fork(-1); }, "fork position -1 is out of range");
  expectError([&] { session.fork(21); }, "fork position 21 is out of range");
  expectError([&] { session.truncate(-5); }, "truncate position -5 is out of range");
  expectError([&] { session.truncate(21); }, "truncate position 21 is out of range");
  EXPECT_EQ(session.position(), 20); // a refused call changes nothing
  session.truncate(20);
  EXPECT_EQ(session.prefillTokensComputed(), 20);
}

} // namespace
} // namespace v4rt
