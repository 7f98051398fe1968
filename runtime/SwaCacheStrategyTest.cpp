// Sliding-window strategies (--swa-cache full | periodic:P | zero): a session
// restored from another instance's disk pages continues exactly like one that
// never left memory, whatever the pages kept of the window state, and runs
// again only the tokens the strategy says.
#include "runtime/PrefixCache.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <ostream>

#include "runtime/PrefixCacheTestSupport.h"
#include "runtime/Session.h"
#include "runtime/api/v4rt.hpp"

namespace v4rt {
namespace {

using test::diskOnly;
using test::pseudoRandomIds;
using test::TempDir;

constexpr int64_t kDecodeSteps = 4;

struct StrategyCase {
  const char *model;
  const char *compileOptions; // v4c compile flags ("--kv-cache fp8": narrow cache rows)
  const char *label;
  int64_t pageTokens;
  // Tokens a rebuild from the empty window runs: layers x window + the
  // largest rate, from the case's config.json.
  int64_t rebuildTokens;
  int64_t period; // of the periodic strategy under test
  int64_t promptTokens;
  std::vector<int64_t> restoredPrompts; // prompt lengths a restarted process runs
};

// Test names and ctest listings show the case by its label.
void PrintTo(const StrategyCase &c, std::ostream *out) { *out << c.label; }

SwaCacheStrategy strategyNamed(const std::string &name, int64_t period) {
  return name == "periodic" ? SwaCacheStrategy::periodic(period) : parseSwaCacheStrategy(name);
}

// What the strategy makes a session restoring `boundary` tokens run again:
// back to the last page that kept the window (periodic: a multiple of the
// period; full: every page), or rebuildTokens before the boundary rounded
// down to a page, whichever is later.
int64_t expectedRecomputed(const SwaCacheStrategy &strategy, int64_t boundary,
                           const StrategyCase &c) {
  int64_t withWindow = 0;
  if (strategy.kind == SwaCacheKind::Full)
    withWindow = boundary;
  else if (strategy.kind == SwaCacheKind::Periodic)
    withWindow = boundary / strategy.period * strategy.period;
  const int64_t fromEmpty = std::max<int64_t>(0, boundary - c.rebuildTokens) / c.pageTokens *
                            c.pageTokens;
  return boundary - std::max(withWindow, fromEmpty);
}

int32_t argmax(const std::vector<float> &logits, size_t offset, int64_t vocab) {
  const auto begin = logits.begin() + static_cast<std::ptrdiff_t>(offset);
  return static_cast<int32_t>(std::max_element(begin, begin + vocab) - begin);
}

struct Continuation {
  std::vector<float> logits; // the last prompt row, then one row per decoded token
  int64_t saved = 0;         // prefill's return
  int64_t computed = 0;      // the session's prefill-token counter
  std::vector<CacheBuffer> caches;
};

// Prefills `prompt` (with the cache: LastRow, restoring what it can) and
// decodes greedily.
Continuation continueFrom(const Model &model, PrefixCache *cache,
                          const std::vector<int32_t> &prompt) {
  const int64_t V = model.vocabSize(), T = static_cast<int64_t>(prompt.size());
  Session session(model, cache);
  Continuation out;
  out.logits.resize(static_cast<size_t>(V));
  if (cache) {
    out.saved = session.prefill(prompt.data(), T, out.logits.data(), PrefillLogits::LastRow);
  } else {
    std::vector<float> all(static_cast<size_t>(T * V));
    session.prefill(prompt.data(), T, all.data());
    std::copy(all.end() - V, all.end(), out.logits.begin());
  }
  out.caches = session.caches(); // the state right after the prompt
  out.computed = session.prefillTokensComputed();
  std::vector<float> row(static_cast<size_t>(V));
  for (int64_t step = 0; step < kDecodeSteps; ++step) {
    session.decode(argmax(out.logits, out.logits.size() - V, V), row.data());
    out.logits.insert(out.logits.end(), row.begin(), row.end());
  }
  return out;
}

// Every row of every slot bit-identical.
void expectSameState(const std::vector<CacheSlot> &slots, const std::vector<CacheBuffer> &a,
                     const std::vector<CacheBuffer> &b) {
  ASSERT_EQ(a.size(), slots.size());
  ASSERT_EQ(b.size(), slots.size());
  for (size_t s = 0; s < slots.size(); ++s) {
    ASSERT_EQ(a[s].rows, b[s].rows) << slots[s].name;
    int64_t differing = 0;
    for (int64_t r = 0; r < a[s].rows; ++r)
      differing += !std::equal(a[s].row(r), a[s].row(r) + a[s].width, b[s].row(r));
    EXPECT_EQ(differing, 0) << slots[s].name << ": rows that differ";
  }
}

std::vector<int32_t> head(const std::vector<int32_t> &ids, int64_t count) {
  return std::vector<int32_t>(ids.begin(), ids.begin() + count);
}

class SwaCacheStrategyTest
    : public ::testing::TestWithParam<std::tuple<StrategyCase, std::string>> {};

// A writer stores the pages of a long prompt under the strategy; restarted
// readers (new model, new PrefixCache on the directory) run prefixes of it,
// restoring on and off the periodic boundaries: the state after the prompt
// and the logits of the prompt's last row and of greedy decoding are those of
// a session that never left memory, bit for bit, and the prefill-token
// counter holds the tail plus the recomputed tokens.
TEST_P(SwaCacheStrategyTest, RestoredSessionEqualsOneThatNeverLeftMemory) {
  const auto &[c, name] = GetParam();
  const SwaCacheStrategy strategy = strategyNamed(name, c.period);
  const std::string artifact = test::compiledArtifact(c.model, c.compileOptions);
  auto model = Model::load(artifact);
  ASSERT_EQ(pageTokensFor(model->program().caches), c.pageTokens);
  ASSERT_EQ(windowRebuildTokens(model->program().caches), c.rebuildTokens);
  const std::vector<int32_t> prompt = pseudoRandomIds(c.promptTokens, model->vocabSize(), 17);
  TempDir dir;
  PrefixCacheOptions options = diskOnly(dir.path());
  options.strategy = strategy;
  {
    PrefixCache writer(*model, options);
    continueFrom(*model, &writer, prompt);
    EXPECT_EQ(writer.stats().pagesStored,
              static_cast<uint64_t>((c.promptTokens + kDecodeSteps) / c.pageTokens));
  }
  auto restarted = Model::load(artifact);
  bool recomputedSome = false, offBoundary = false;
  for (int64_t T : c.restoredPrompts) {
    SCOPED_TRACE(name + ": prompt of " + std::to_string(T) + " tokens");
    const std::vector<int32_t> ids = head(prompt, T);
    const int64_t boundary = (T - 1) / c.pageTokens * c.pageTokens;
    const int64_t recomputed = expectedRecomputed(strategy, boundary, c);
    recomputedSome |= recomputed > 0;
    offBoundary |= strategy.kind == SwaCacheKind::Periodic && boundary % c.period != 0;
    PrefixCache reader(*restarted, options);
    const Continuation warm = continueFrom(*restarted, &reader, ids);
    const Continuation inMemory = continueFrom(*model, nullptr, ids);
    EXPECT_EQ(warm.saved, boundary - recomputed);
    EXPECT_EQ(warm.computed, T - boundary + recomputed);
    const PrefixCacheStats stats = reader.stats();
    EXPECT_EQ(stats.pagesHit, static_cast<uint64_t>(boundary / c.pageTokens));
    EXPECT_EQ(stats.prefillTokensSaved, static_cast<uint64_t>(boundary - recomputed));
    EXPECT_EQ(stats.windowTokensRecomputed, static_cast<uint64_t>(recomputed));
    expectSameState(model->program().caches, warm.caches, inMemory.caches);
    EXPECT_EQ(test::maxAbsDifference(warm.logits, inMemory.logits), 0.0f);
  }
  // The case covers what the strategy is about.
  if (strategy.kind != SwaCacheKind::Full)
    EXPECT_TRUE(recomputedSome);
  if (strategy.kind == SwaCacheKind::Periodic)
    EXPECT_TRUE(offBoundary);
}

const StrategyCase kTinyMixed{"tiny-mixed", "", "TinyMixed", 16, 4 * 8 + 16, 32, 200,
                              {40, 60, 129, 150, 200}};
const StrategyCase kTinyYarn{"tiny-yarn", "", "TinyYarn", 32, 3 * 16 + 32, 64, 300,
                             {70, 100, 200, 260, 290}};
const StrategyCase kTinyRealRates{"tiny-real-rates", "", "TinyRealRates", 128, 3 * 128 + 128, 256,
                                  1000, {200, 300, 700, 1000}};
// Narrow cache rows (docs/quantization.md "KV cache"): pages hold the stored
// bf16 / fp8 rows, the rebuild rounds its rows the same way.
const StrategyCase kTinyMixedKvFp8{"tiny-mixed", "--kv-cache fp8", "TinyMixedKvFp8", 16,
                                   4 * 8 + 16, 32, 200, {60, 150, 200}};
const StrategyCase kTinyYarnKvBf16{"tiny-yarn", "--kv-cache bf16", "TinyYarnKvBf16", 32,
                                   3 * 16 + 32, 64, 300, {100, 290}};

INSTANTIATE_TEST_SUITE_P(
    Conformance, SwaCacheStrategyTest,
    ::testing::Combine(::testing::Values(kTinyMixed, kTinyYarn, kTinyRealRates, kTinyMixedKvFp8,
                                         kTinyYarnKvBf16),
                       ::testing::Values("full", "periodic", "zero")),
    [](const auto &info) {
      return std::string(std::get<0>(info.param).label) + "_" + std::get<1>(info.param);
    });

// The pages' bytes: entries only except where the strategy keeps the window.
TEST(SwaCacheStrategy, PagesWithoutWindowsAreSmaller) {
  auto model = Model::load(test::compiledArtifact("tiny-mixed"));
  const std::vector<CacheSlot> &slots = model->program().caches;
  const std::vector<int32_t> prompt = pseudoRandomIds(129, model->vocabSize(), 23); // 8 pages
  const size_t entriesOnly = pagePayloadSize(slots, 16, false);
  const size_t withWindow = pagePayloadSize(slots, 16, true);
  ASSERT_LT(entriesOnly, withWindow);
  struct Expected {
    SwaCacheStrategy strategy;
    uint64_t bytes;
  };
  uint64_t diskBytes[3] = {};
  const Expected expected[3] = {{SwaCacheStrategy::Full, 8 * withWindow},
                                {SwaCacheStrategy::periodic(64), 2 * withWindow + 6 * entriesOnly},
                                {SwaCacheStrategy::Zero, 8 * entriesOnly}};
  for (size_t i = 0; i < 3; ++i) {
    SCOPED_TRACE(expected[i].strategy.name());
    TempDir dir;
    PrefixCacheOptions options = diskOnly(dir.path());
    options.strategy = expected[i].strategy;
    PrefixCache cache(*model, options);
    Session session(*model, &cache);
    session.prefill(prompt.data(), 129, nullptr, PrefillLogits::LastRow);
    const PrefixCacheStats stats = cache.stats();
    EXPECT_EQ(stats.pagesStored, 8u);
    EXPECT_EQ(stats.pageBytesStored, expected[i].bytes);
    diskBytes[i] = stats.tiers.tiers.at(0).bytes;
  }
  EXPECT_GT(diskBytes[0], diskBytes[1]);
  EXPECT_GT(diskBytes[1], diskBytes[2]);
}

// Pages of one directory written under different strategies (a deployment
// that changed its flag): any reader uses every page correctly.
TEST(SwaCacheStrategy, ReadersUsePagesOfEveryStrategy) {
  auto model = Model::load(test::compiledArtifact("tiny-mixed"));
  const std::vector<int32_t> prompt = pseudoRandomIds(200, model->vocabSize(), 29);
  TempDir dir;
  PrefixCacheOptions options = diskOnly(dir.path());
  {
    options.strategy = SwaCacheStrategy::Full; // pages 0..5 keep their windows
    PrefixCache full(*model, options);
    continueFrom(*model, &full, head(prompt, 100));
    options.strategy = SwaCacheStrategy::Zero; // pages 6..11 keep none
    PrefixCache zero(*model, options);
    continueFrom(*model, &zero, prompt);
    EXPECT_EQ(zero.stats().pagesStored, 6u);
  }
  const Continuation inMemory = continueFrom(*model, nullptr, prompt);
  for (const SwaCacheStrategy &strategy :
       {SwaCacheStrategy::Full, SwaCacheStrategy::periodic(32), SwaCacheStrategy::Zero}) {
    SCOPED_TRACE(strategy.name());
    options.strategy = strategy;
    PrefixCache reader(*model, options);
    const Continuation warm = continueFrom(*model, &reader, prompt);
    // 192 tokens restored: the last window kept is at 96, a rebuild from the
    // empty window starts at 192 - 48 = 144.
    EXPECT_EQ(warm.saved, 144);
    EXPECT_EQ(reader.stats().windowTokensRecomputed, 48u);
    EXPECT_EQ(test::maxAbsDifference(warm.logits, inMemory.logits), 0.0f);
  }
}

// truncate/fork beyond the snapshots a session keeps restore from the pages:
// under zero, that runs the rebuild tokens instead of the whole prefix.
TEST(SwaCacheStrategy, TruncateRebuildsTheWindowFromZeroPages) {
  auto model = Model::load(test::compiledArtifact("tiny-mixed"));
  const int64_t V = model->vocabSize();
  const std::vector<int32_t> ids = pseudoRandomIds(400, V, 31);
  TempDir dir;
  PrefixCacheOptions options = diskOnly(dir.path());
  options.strategy = SwaCacheStrategy::Zero;
  PrefixCache cache(*model, options);
  Session session(*model, &cache);
  session.prefill(ids.data(), 400, nullptr);
  const int64_t before = session.prefillTokensComputed();
  session.truncate(150); // kept snapshots: 288 and later
  // Pages 0..8 (144 tokens) restored, 144 - 48 = 96 onwards run again.
  EXPECT_EQ(session.prefillTokensComputed() - before, 48 + 6);
  EXPECT_EQ(session.tokens(), head(ids, 150));
  std::unique_ptr<Session> forked = session.fork(150);
  Session fresh(*model);
  fresh.prefill(ids.data(), 150, nullptr);
  expectSameState(model->program().caches, session.caches(), fresh.caches());
  std::vector<float> a(static_cast<size_t>(V)), b(a.size()), f(a.size());
  for (int32_t id : pseudoRandomIds(5, V, 32)) {
    session.decode(id, a.data());
    forked->decode(id, b.data());
    fresh.decode(id, f.data());
    EXPECT_EQ(test::maxAbsDifference(a, f), 0.0f);
    EXPECT_EQ(test::maxAbsDifference(b, f), 0.0f);
  }
}

// The C API: a cache attached with "zero"; prefill_last reports the tokens it
// did not compute, the stats the tokens run again and the bytes stored.
TEST(SwaCacheStrategyApi, ZeroThroughTheCApi) {
  TempDir dir;
  const std::string artifact = test::compiledArtifact("tiny-mixed");
  ModelHandle model(artifact);
  model.attachCache(dir.path().string(), 0, 0, "", "zero");
  const std::vector<int32_t> prompt = pseudoRandomIds(100, model.vocabSize(), 37);
  int64_t reused = -1;
  std::vector<float> first, second;
  {
    SessionHandle session(model);
    first = session.prefillLast(prompt, &reused);
    EXPECT_EQ(reused, 0);
  }
  {
    SessionHandle session(model);
    second = session.prefillLast(prompt, &reused);
    // Pages 0..5 (96 tokens) restored, the window rebuilt from 96 - 48 on.
    EXPECT_EQ(reused, 48);
    EXPECT_EQ(session.prefillTokensComputed(), 48 + 4);
  }
  EXPECT_EQ(test::maxAbsDifference(first, second), 0.0f);
  const v4rt_cache_stats stats = model.cacheStats();
  EXPECT_EQ(stats.prefill_tokens_saved, 48u);
  EXPECT_EQ(stats.window_tokens_recomputed, 48u);
  EXPECT_EQ(stats.pages_stored, 6u);
  auto loaded = Model::load(artifact);
  EXPECT_EQ(stats.page_bytes_stored, 6 * pagePayloadSize(loaded->program().caches, 16, false));
}

} // namespace
} // namespace v4rt
