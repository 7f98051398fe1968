// Continuous batching: sessions decoded together in one batched step give the
// logits each gives decoded alone, bit for bit, whatever their positions,
// however they join and leave, and however many there are.
#include "runtime/DecodeBatch.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>

#include "common/Error.h"
#include "runtime/PrefixCache.h"
#include "runtime/PrefixCacheTestSupport.h"
#include "runtime/Session.h"
#include "runtime/api/v4rt.hpp"

namespace v4rt {
namespace {

using test::pseudoRandomIds;

// Compiled with decode buckets of 1 and 4 sessions.
const std::string &batchedArtifact(const std::string &caseName) {
  static std::map<std::string, std::string> paths;
  auto &path = paths[caseName];
  if (path.empty())
    path = test::compiledArtifact(caseName, "--decode-batch 1,4");
  return path;
}

// Row i of `all` (rows of `vocab` floats).
std::vector<float> row(const std::vector<float> &all, int64_t i, int64_t vocab) {
  return std::vector<float>(all.begin() + i * vocab, all.begin() + (i + 1) * vocab);
}

// Bitwise: the threaded linear splits over output features, never inside a
// dot product, and every other kernel treats tokens independently, so a
// batched step must reproduce the single-session step exactly.
void expectBitwiseEqual(const std::vector<float> &batched, const std::vector<float> &alone,
                        const std::string &what) {
  ASSERT_EQ(batched.size(), alone.size()) << what;
  EXPECT_EQ(std::memcmp(batched.data(), alone.data(), batched.size() * sizeof(float)), 0)
      << what << ": max |difference| " << test::maxAbsDifference(batched, alone);
}

// A pair of sessions fed identically: one decoded in batches, one alone.
struct Twin {
  std::unique_ptr<Session> batched, alone;
};

Twin prefilledTwin(const Model &model, const std::vector<int32_t> &prompt) {
  Twin twin{std::make_unique<Session>(model), std::make_unique<Session>(model)};
  for (Session *session : {twin.batched.get(), twin.alone.get()})
    session->prefill(prompt.data(), static_cast<int64_t>(prompt.size()), nullptr);
  return twin;
}

// One batched step over `active` twins, checked against each decoded alone;
// the next id of each is its own greedy pick, so the twins keep generating.
void stepAndCompare(const Model &model, std::vector<Twin *> active, std::vector<int32_t> &nextIds,
                    const std::string &what) {
  const int64_t V = model.vocabSize();
  std::vector<Session *> sessions;
  for (Twin *twin : active)
    sessions.push_back(twin->batched.get());
  std::vector<float> logits(active.size() * V);
  decodeBatch(sessions.data(), sessions.size(), nextIds.data(), logits.data());
  for (size_t i = 0; i < active.size(); ++i) {
    std::vector<float> alone(V);
    active[i]->alone->decode(nextIds[i], alone.data());
    const std::string where = what + ", row " + std::to_string(i) + " at position " +
                              std::to_string(active[i]->alone->position() - 1);
    expectBitwiseEqual(row(logits, static_cast<int64_t>(i), V), alone, where);
    EXPECT_EQ(active[i]->batched->position(), active[i]->alone->position()) << where;
    EXPECT_EQ(active[i]->batched->tokens(), active[i]->alone->tokens()) << where;
    const std::vector<float> mine = row(logits, static_cast<int64_t>(i), V);
    nextIds[i] = static_cast<int32_t>(std::max_element(mine.begin(), mine.end()) - mine.begin());
  }
}

class DecodeBatchTest : public ::testing::TestWithParam<std::string> {};

TEST_P(DecodeBatchTest, BucketsFromDecodeBatchOption) {
  auto model = Model::load(batchedArtifact(GetParam()));
  EXPECT_EQ(model->decodeBatches(), (std::vector<int64_t>{1, 4}));
  EXPECT_EQ(model->decodeBucket().bucket->batch, 1);
  EXPECT_EQ(model->decodeBucketFor(1)->bucket->name, "decode_1");
  for (int64_t n : {2, 3, 4, 9})
    EXPECT_EQ(model->decodeBucketFor(n)->bucket->name, "decode_4") << n;
  // The same kernels in the same order as decode_1 (rope + cache append fused too).
  const Bucket &one = *model->decodeBucketFor(1)->bucket, &four = *model->decodeBucketFor(4)->bucket;
  ASSERT_EQ(four.steps.size(), one.steps.size());
  for (size_t i = 0; i < one.steps.size(); ++i)
    EXPECT_EQ(four.steps[i].kernel, one.steps[i].kernel) << "step " << i;
  EXPECT_GT(four.arenaBytes, one.arenaBytes);
}

// Four sessions at different positions (inside the first window, across
// compression and page boundaries) decoded together for 24 steps.
TEST_P(DecodeBatchTest, DifferentPositionsMatchDecodingAlone) {
  auto model = Model::load(batchedArtifact(GetParam()));
  const int64_t V = model->vocabSize();
  std::vector<Twin> twins;
  const int64_t promptLengths[] = {1, 6, 31, 70};
  for (int64_t i = 0; i < 4; ++i)
    twins.push_back(prefilledTwin(*model, pseudoRandomIds(promptLengths[i], V, 10 + i)));
  std::vector<Twin *> all;
  for (Twin &twin : twins)
    all.push_back(&twin);
  std::vector<int32_t> next = {3, 5, 7, 11};
  for (int step = 0; step < 24; ++step)
    stepAndCompare(*model, all, next, "step " + std::to_string(step));
  // Three of four rows: a decode_4 run over n = 3 < batch.
  all.pop_back();
  next.pop_back();
  for (int step = 0; step < 5; ++step)
    stepAndCompare(*model, all, next, "3 sessions, step " + std::to_string(step));
}

// Long contexts: the cache steps' rows hold enough work to run on the pool
// in parallel (DecodeBatch.cpp kParallelRowsWork), each row single-threaded.
TEST_P(DecodeBatchTest, LongContextsRunRowsInParallel) {
  auto model = Model::load(batchedArtifact(GetParam()), LoadOptions{2});
  const int64_t V = model->vocabSize();
  std::vector<Twin> twins;
  for (int64_t i = 0; i < 4; ++i) {
    const std::vector<int32_t> prompt = pseudoRandomIds(2300 + 37 * i, V, 90 + i);
    Twin twin{std::make_unique<Session>(*model), nullptr};
    twin.batched->prefill(prompt.data(), static_cast<int64_t>(prompt.size()), nullptr);
    twin.alone = twin.batched->fork(twin.batched->position()); // shares entries copy-on-write
    twins.push_back(std::move(twin));
  }
  std::vector<Twin *> all;
  for (Twin &twin : twins)
    all.push_back(&twin);
  std::vector<int32_t> next = {3, 5, 7, 11};
  for (int step = 0; step < 6; ++step)
    stepAndCompare(*model, all, next, "long, step " + std::to_string(step));
}

// Sessions join (fresh or freshly prefilled) and leave between steps; the
// active set, its order and its size change every step.
TEST_P(DecodeBatchTest, SessionsJoinAndLeaveBetweenSteps) {
  auto model = Model::load(batchedArtifact(GetParam()));
  const int64_t V = model->vocabSize();
  std::vector<Twin> twins;
  for (int64_t i = 0; i < 6; ++i)
    twins.push_back(prefilledTwin(*model, pseudoRandomIds(4 + 9 * i, V, 40 + i)));
  std::vector<int32_t> nextOf(twins.size());
  for (size_t i = 0; i < twins.size(); ++i)
    nextOf[i] = static_cast<int32_t>(2 + i);
  // Which twins decode at each step (indices into twins).
  const std::vector<std::vector<size_t>> schedule = {
      {0}, {0, 1}, {1, 0, 2}, {2, 3, 1, 0}, {3, 4}, {5, 4, 3, 2}, {5}, {0, 5, 1}, {4, 2, 0, 1}, {1}};
  for (size_t step = 0; step < schedule.size(); ++step) {
    std::vector<Twin *> active;
    std::vector<int32_t> next;
    for (size_t index : schedule[step]) {
      active.push_back(&twins[index]);
      next.push_back(nextOf[index]);
    }
    stepAndCompare(*model, active, next, "step " + std::to_string(step));
    for (size_t i = 0; i < schedule[step].size(); ++i)
      nextOf[schedule[step][i]] = next[i];
  }
}

// A forked child and its parent share copy-on-write entry chunks; decoding
// both in one step must write each its own copy.
TEST_P(DecodeBatchTest, ForkedSessionAndParentInOneBatch) {
  auto model = Model::load(batchedArtifact(GetParam()));
  const int64_t V = model->vocabSize();
  const std::vector<int32_t> prompt = pseudoRandomIds(47, V, 7);
  Twin parent = prefilledTwin(*model, prompt);
  Twin here{parent.batched->fork(47), parent.alone->fork(47)};
  Twin earlier{parent.batched->fork(33), parent.alone->fork(33)};
  std::vector<Twin *> all = {&parent, &here, &earlier};
  std::vector<int32_t> next = {9, 10, 11}; // diverge at once
  for (int step = 0; step < 20; ++step)
    stepAndCompare(*model, all, next, "step " + std::to_string(step));
  // And they did diverge: the parent's and the child's ids differ.
  EXPECT_NE(parent.batched->tokens(), here.batched->tokens());
}

// Nine sessions with buckets of at most four: three plan runs (4 + 4 + 1).
TEST_P(DecodeBatchTest, MoreSessionsThanTheLargestBucket) {
  auto model = Model::load(batchedArtifact(GetParam()));
  const int64_t V = model->vocabSize();
  std::vector<Twin> twins;
  for (int64_t i = 0; i < 9; ++i)
    twins.push_back(prefilledTwin(*model, pseudoRandomIds(3 + 5 * i, V, 70 + i)));
  std::vector<Session *> sessions;
  for (Twin &twin : twins)
    sessions.push_back(twin.batched.get());
  for (int step = 0; step < 4; ++step) {
    std::vector<int32_t> ids = pseudoRandomIds(9, V, 100 + step);
    std::vector<float> logits(9 * V);
    EXPECT_EQ(decodeBatch(sessions.data(), 9, ids.data(), logits.data()), 3);
    for (int64_t i = 0; i < 9; ++i) {
      std::vector<float> alone(V);
      twins[i].alone->decode(ids[i], alone.data());
      expectBitwiseEqual(row(logits, i, V), alone, "session " + std::to_string(i));
    }
  }
}

// An artifact with decode_1 only still batches, one plan run per session.
TEST_P(DecodeBatchTest, DecodeOneOnlyArtifactRunsOnePlanPerSession) {
  auto model = Model::load(test::compiledArtifact(GetParam()));
  const int64_t V = model->vocabSize();
  EXPECT_EQ(model->decodeBatches(), (std::vector<int64_t>{1}));
  Twin a = prefilledTwin(*model, pseudoRandomIds(5, V, 1)), b = prefilledTwin(*model, pseudoRandomIds(20, V, 2));
  std::vector<Session *> sessions = {a.batched.get(), b.batched.get()};
  const std::vector<int32_t> ids = {4, 8};
  std::vector<float> logits(2 * V);
  EXPECT_EQ(decodeBatch(sessions.data(), 2, ids.data(), logits.data()), 2);
  std::vector<float> alone(V);
  a.alone->decode(4, alone.data());
  expectBitwiseEqual(row(logits, 0, V), alone, "session 0");
  b.alone->decode(8, alone.data());
  expectBitwiseEqual(row(logits, 1, V), alone, "session 1");
}

// Without decode_1, a single session decodes with decode_4 over one row.
TEST_P(DecodeBatchTest, DecodeFourOnlyArtifactDecodesSingleSessions) {
  auto four = Model::load(test::compiledArtifact(GetParam(), "--decode-batch 4"));
  auto one = Model::load(test::compiledArtifact(GetParam()));
  EXPECT_EQ(four->decodeBatches(), (std::vector<int64_t>{4}));
  EXPECT_EQ(four->decodeBucket().bucket->name, "decode_4");
  const int64_t V = one->vocabSize();
  const std::vector<int32_t> prompt = pseudoRandomIds(21, V, 3), steps = pseudoRandomIds(12, V, 4);
  Session a(*four), b(*one);
  a.prefill(prompt.data(), 21, nullptr);
  b.prefill(prompt.data(), 21, nullptr);
  std::vector<float> fromFour(V), fromOne(V);
  for (size_t i = 0; i < steps.size(); ++i) {
    a.decode(steps[i], fromFour.data());
    b.decode(steps[i], fromOne.data());
    expectBitwiseEqual(fromFour, fromOne, "step " + std::to_string(i));
  }
}

INSTANTIATE_TEST_SUITE_P(Conformance, DecodeBatchTest, ::testing::Values("tiny-mixed", "tiny-real-rates"),
                         [](const auto &info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

// Sessions with a prefix cache store the pages they complete during batched
// decode exactly as when they decode alone: a later session restores them.
TEST(DecodeBatch, StoresCompletedPagesLikeDecode) {
  auto model = Model::load(batchedArtifact("tiny-mixed"));
  const int64_t V = model->vocabSize();
  PrefixCacheOptions options;
  options.hostBytes = 64 << 20;
  PrefixCache batchedCache(*model, options), aloneCache(*model, options);
  const int64_t P = batchedCache.pageTokens();
  std::vector<std::unique_ptr<Session>> batched, alone;
  std::vector<std::vector<int32_t>> prompts;
  for (int64_t i = 0; i < 3; ++i) {
    prompts.push_back(pseudoRandomIds(P - 2 + i, V, 200 + i));
    batched.push_back(std::make_unique<Session>(*model, &batchedCache));
    alone.push_back(std::make_unique<Session>(*model, &aloneCache));
    batched.back()->prefill(prompts[i].data(), P - 2 + i, nullptr, PrefillLogits::LastRow);
    alone.back()->prefill(prompts[i].data(), P - 2 + i, nullptr, PrefillLogits::LastRow);
  }
  std::vector<Session *> sessions = {batched[0].get(), batched[1].get(), batched[2].get()};
  for (int step = 0; step < 4; ++step) { // every session crosses its first page boundary
    const std::vector<int32_t> ids = pseudoRandomIds(3, V, 300 + step);
    decodeBatch(sessions.data(), 3, ids.data(), nullptr);
    for (int64_t i = 0; i < 3; ++i)
      alone[i]->decode(ids[i], nullptr);
  }
  EXPECT_EQ(batchedCache.stats().pagesStored, aloneCache.stats().pagesStored);
  EXPECT_EQ(batchedCache.stats().pagesStored, 3u);
  // A new session with session 1's ids and one more token restores its page.
  std::vector<int32_t> whole = batched[1]->tokens();
  whole.push_back(5);
  Session restored(*model, &batchedCache);
  std::vector<float> logits(V), reference(V);
  EXPECT_EQ(restored.prefill(whole.data(), static_cast<int64_t>(whole.size()), logits.data(),
                             PrefillLogits::LastRow),
            P);
  alone[1]->decode(5, reference.data());
  // A prefill chunk against a decode step: equal up to summation order.
  EXPECT_LE(test::maxAbsDifference(logits, reference), 1e-6f);
}

TEST(DecodeBatch, RejectsABadBatchBeforeRunningAnything) {
  auto model = Model::load(batchedArtifact("tiny-mixed"));
  auto other = Model::load(batchedArtifact("tiny-mixed"));
  Session a(*model), b(*model), foreign(*other);
  const int32_t ids[] = {3, 4};
  Session *twice[] = {&a, &a};
  EXPECT_THROW(decodeBatch(twice, 2, ids, nullptr), v4c::Error);
  Session *mixed[] = {&a, &foreign};
  EXPECT_THROW(decodeBatch(mixed, 2, ids, nullptr), v4c::Error);
  Session *withNull[] = {&a, nullptr};
  EXPECT_THROW(decodeBatch(withNull, 2, ids, nullptr), v4c::Error);
  const int32_t badIds[] = {3, static_cast<int32_t>(model->vocabSize())};
  Session *pair[] = {&a, &b};
  try {
    decodeBatch(pair, 2, badIds, nullptr);
    ADD_FAILURE() << "an out-of-range id was accepted";
  } catch (const v4c::Error &e) {
    EXPECT_NE(std::string(e.what()).find("out of range"), std::string::npos) << e.what();
  }
  EXPECT_EQ(a.position(), 0); // nothing ran
  EXPECT_EQ(b.position(), 0);
  EXPECT_EQ(decodeBatch(pair, 0, ids, nullptr), 0);
}

// A step hook sees every step of its session's decode, batched or not.
TEST(DecodeBatch, SessionWithStepHookStillSeesItsSteps) {
  auto model = Model::load(batchedArtifact("tiny-mixed"));
  const int64_t V = model->vocabSize();
  Session hooked(*model), plain(*model), reference(*model);
  size_t calls = 0;
  hooked.setStepHook([&](const BoundBucket &, size_t, const KernelArgs &args) {
    ++calls;
    EXPECT_EQ(args.tokens, 1);
  });
  Session *batch[] = {&hooked, &plain};
  const int32_t ids[] = {6, 7};
  std::vector<float> logits(2 * V), alone(V);
  EXPECT_EQ(decodeBatch(batch, 2, ids, logits.data()), 2); // one by one
  EXPECT_EQ(calls, model->decodeBucket().steps.size());
  reference.decode(6, alone.data());
  expectBitwiseEqual(row(logits, 0, V), alone, "hooked session");
  EXPECT_EQ(plain.position(), 1);
}

// The C API and the C++ wrapper: statuses, not exceptions.
TEST(DecodeBatch, CApi) {
  ModelHandle model(batchedArtifact("tiny-mixed"));
  EXPECT_EQ(model.decodeBatchSizes(), (std::vector<int64_t>{1, 4}));
  SessionHandle a(model), b(model), alone(model);
  const std::vector<int32_t> prompt = pseudoRandomIds(12, model.vocabSize(), 5);
  a.prefill(prompt);
  alone.prefill(prompt);
  const std::vector<float> logits = decodeBatch({&a, &b}, {7, 8});
  ASSERT_EQ(logits.size(), 2 * static_cast<size_t>(model.vocabSize()));
  expectBitwiseEqual(row(logits, 0, model.vocabSize()), alone.decode(7), "C API row 0");
  EXPECT_EQ(a.position(), 13);
  EXPECT_EQ(b.position(), 1);
  v4rt_session *twice[] = {a.get(), a.get()};
  const int32_t ids[] = {1, 2};
  v4rt_status status = v4rt_decode_batch(twice, 2, ids, nullptr);
  ASSERT_NE(status, nullptr);
  EXPECT_NE(std::string(v4rt_status_message(status)).find("appears twice"), std::string::npos);
  v4rt_status_free(status);
  EXPECT_THROW(decodeBatch({&a, &b}, {1}), RuntimeError);
}

} // namespace
} // namespace v4rt
