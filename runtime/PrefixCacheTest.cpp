// Prefix reuse end to end: a session restored from cached pages (memory or a
// disk directory another instance wrote) computes what a cold session does.
#include "runtime/PrefixCache.h"

#include <gtest/gtest.h>

#include <fstream>
#include <functional>

#include "runtime/PrefixCacheTestSupport.h"
#include "runtime/Session.h"
#include "runtime/api/v4rt.hpp"

namespace v4rt {
namespace {

using test::diskOnly;
using test::generate;
using test::maxAbsDifference;
using test::pseudoRandomIds;
using test::TempDir;

struct ReuseCase {
  const char *name;
  int64_t expectedPageTokens;
  int64_t promptTokens;
};

class PrefixReuseTest : public ::testing::TestWithParam<ReuseCase> {};

// A first instance stores the pages; a second one, on the same directory
// (what a restarted process sees), restores them: same logits (1e-5), same ids.
TEST_P(PrefixReuseTest, RestoredFromDiskMatchesColdSession) {
  const ReuseCase param = GetParam();
  auto model = Model::load(test::compiledArtifact(param.name));
  const std::vector<int32_t> prompt = pseudoRandomIds(param.promptTokens, model->vocabSize(), 7);
  const test::Generation cold = generate(*model, nullptr, prompt, 6);
  TempDir dir;
  const int64_t P = param.expectedPageTokens;
  {
    PrefixCache writer(*model, diskOnly(dir.path()));
    ASSERT_EQ(writer.pageTokens(), P);
    const test::Generation first = generate(*model, &writer, prompt, 6);
    EXPECT_EQ(first.tokensReused, 0);
    EXPECT_EQ(first.ids, cold.ids);
    EXPECT_LE(maxAbsDifference(first.lastPromptLogits, cold.lastPromptLogits), 1e-5f);
    // Every page the prompt and the decode steps completed was stored.
    EXPECT_EQ(writer.stats().pagesStored, static_cast<uint64_t>((param.promptTokens + 6) / P));
  }
  auto reloaded = Model::load(test::compiledArtifact(param.name));
  PrefixCache reader(*reloaded, diskOnly(dir.path()));
  const test::Generation warm = generate(*reloaded, &reader, prompt, 6);
  EXPECT_EQ(warm.tokensReused, (param.promptTokens - 1) / P * P);
  EXPECT_GT(warm.tokensReused, 2 * P - 1);
  EXPECT_LE(maxAbsDifference(warm.lastPromptLogits, cold.lastPromptLogits), 1e-5f);
  EXPECT_LE(maxAbsDifference(warm.decodeLogits, cold.decodeLogits), 1e-5f);
  EXPECT_EQ(warm.ids, cold.ids);
  const PrefixCacheStats stats = reader.stats();
  EXPECT_EQ(stats.prefillTokensSaved, static_cast<uint64_t>(warm.tokensReused));
  EXPECT_EQ(stats.pagesHit, static_cast<uint64_t>(warm.tokensReused / P));
  EXPECT_EQ(stats.pagesMissed, 0u);
  EXPECT_DOUBLE_EQ(stats.hitRate(), 1.0);
}

INSTANTIATE_TEST_SUITE_P(Conformance, PrefixReuseTest,
                         ::testing::Values(ReuseCase{"tiny-mixed", 16, 75},
                                           ReuseCase{"tiny-real-rates", 128, 300}),
                         [](const auto &info) { return info.param.name == std::string("tiny-mixed")
                                                           ? std::string("TinyMixed")
                                                           : std::string("TinyRealRates"); });

// A prompt of exactly k pages reuses k-1 of them: the last token must run.
TEST(PrefixCache, KeepsTheLastTokenToRun) {
  auto model = Model::load(test::compiledArtifact("tiny-mixed"));
  const std::vector<int32_t> prompt = pseudoRandomIds(64, model->vocabSize(), 3);
  TempDir dir;
  PrefixCache cache(*model, diskOnly(dir.path()));
  generate(*model, &cache, prompt, 0);
  const test::Generation warm = generate(*model, &cache, prompt, 2);
  EXPECT_EQ(warm.tokensReused, 48);
  EXPECT_EQ(warm.ids, generate(*model, nullptr, prompt, 2).ids);
}

// A prompt that diverges inside page 2 reuses pages 0 and 1 only; a tenant
// salt keeps another tenant's pages apart.
TEST(PrefixCache, SharesOnlyMatchingPrefixesOfOneTenant) {
  auto model = Model::load(test::compiledArtifact("tiny-mixed"));
  std::vector<int32_t> prompt = pseudoRandomIds(70, model->vocabSize(), 11);
  TempDir dir;
  PrefixCache cache(*model, diskOnly(dir.path()));
  generate(*model, &cache, prompt, 0);
  std::vector<int32_t> diverged = prompt;
  diverged[40] = diverged[40] == 5 ? 6 : 5;
  const test::Generation warm = generate(*model, &cache, diverged, 3);
  EXPECT_EQ(warm.tokensReused, 32);
  EXPECT_EQ(warm.ids, generate(*model, nullptr, diverged, 3).ids);

  PrefixCacheOptions salted = diskOnly(dir.path());
  salted.tenantSalt = "tenant-b";
  PrefixCache other(*model, salted);
  EXPECT_EQ(generate(*model, &other, prompt, 0).tokensReused, 0);
  EXPECT_EQ(other.stats().pagesMissed, 4u);
}

// Host tier over disk: pages are written through, so a disk-only instance
// finds them; the host tier serves the same process.
TEST(PrefixCache, HostTierWritesThroughToDisk) {
  auto model = Model::load(test::compiledArtifact("tiny-mixed"));
  const std::vector<int32_t> prompt = pseudoRandomIds(50, model->vocabSize(), 5);
  TempDir dir;
  PrefixCacheOptions options = diskOnly(dir.path());
  options.hostBytes = 64ull << 20;
  PrefixCache tiered(*model, options);
  generate(*model, &tiered, prompt, 0);
  EXPECT_EQ(generate(*model, &tiered, prompt, 0).tokensReused, 48);
  const PrefixCacheStats stats = tiered.stats();
  ASSERT_EQ(stats.tiers.tiers.size(), 2u);
  EXPECT_EQ(stats.tiers.tiers[0].name, "host");
  EXPECT_EQ(stats.tiers.tiers[0].pages, 3u);
  EXPECT_EQ(stats.tiers.tiers[0].hits, 3u);
  EXPECT_EQ(stats.tiers.tiers[1].pages, 3u);
  PrefixCache diskReader(*model, diskOnly(dir.path()));
  EXPECT_EQ(generate(*model, &diskReader, prompt, 0).tokensReused, 48);
}

// Callers that need every row's logits (verify) get no reuse.
TEST(PrefixCache, AllRowsPrefillComputesEverything) {
  auto model = Model::load(test::compiledArtifact("tiny-mixed"));
  const std::vector<int32_t> prompt = pseudoRandomIds(40, model->vocabSize(), 9);
  TempDir dir;
  PrefixCache cache(*model, diskOnly(dir.path()));
  generate(*model, &cache, prompt, 0);
  Session session(*model, &cache);
  std::vector<float> all(prompt.size() * model->vocabSize());
  EXPECT_EQ(session.prefill(prompt.data(), 40, all.data(), PrefillLogits::AllRows), 0);
  Session cold(*model);
  std::vector<float> reference(all.size());
  cold.prefill(prompt.data(), 40, reference.data());
  EXPECT_LE(maxAbsDifference(all, reference), 1e-5f);
}

TEST(PrefixCache, ParsesWindowStrategies) {
  EXPECT_EQ(parseSwaCacheStrategy("full"), SwaCacheStrategy::Full);
  EXPECT_EQ(parseSwaCacheStrategy("zero"), SwaCacheStrategy::Zero);
  EXPECT_EQ(parseSwaCacheStrategy("periodic:64"), SwaCacheStrategy::periodic(64));
  EXPECT_EQ(parseSwaCacheStrategy("periodic:64").name(), "periodic:64");
  const auto expectError = [](const std::function<void()> &call, const std::string &expected) {
    try {
      call();
      FAIL() << "accepted: " << expected;
    } catch (const std::exception &e) {
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    }
  };
  for (const char *text : {"periodic:", "periodic:0", "periodic:-16", "periodic:1k"})
    expectError([&] { parseSwaCacheStrategy(text); }, "the period must be a positive number");
  expectError([&] { parseSwaCacheStrategy("sometimes"); }, "unknown strategy");
  // The period is a whole number of pages (16 tokens for tiny-mixed).
  auto model = Model::load(test::compiledArtifact("tiny-mixed"));
  TempDir dir;
  PrefixCacheOptions options = diskOnly(dir.path());
  options.strategy = SwaCacheStrategy::periodic(40);
  expectError([&] { PrefixCache cache(*model, options); },
              "must be a multiple of the page size, 16 tokens for this model (e.g. periodic:32)");
  options.strategy = SwaCacheStrategy::periodic(48);
  EXPECT_EQ(PrefixCache(*model, options).strategy(), SwaCacheStrategy::periodic(48));
}

// The C API: attach, prefill_last reports reuse, stats report every counter.
TEST(PrefixCacheApi, ReportsStats) {
  TempDir dir;
  ModelHandle model(test::compiledArtifact("tiny-mixed"));
  EXPECT_THROW(model.cacheStats(), RuntimeError);
  EXPECT_THROW(model.attachCache(dir.path().string(), 0, 0, "", "periodic:24"), RuntimeError);
  model.attachCache(dir.path().string());
  const std::vector<int32_t> prompt = pseudoRandomIds(40, model.vocabSize(), 21);
  int64_t reused = -1;
  std::vector<float> first, second;
  {
    SessionHandle session(model);
    first = session.prefillLast(prompt, &reused);
    EXPECT_EQ(reused, 0);
    EXPECT_EQ(session.position(), 40);
  }
  {
    SessionHandle session(model);
    second = session.prefillLast(prompt, &reused);
    EXPECT_EQ(reused, 32);
    EXPECT_EQ(session.position(), 40);
  }
  EXPECT_LE(maxAbsDifference(first, second), 1e-5f);
  const v4rt_cache_stats stats = model.cacheStats();
  EXPECT_EQ(stats.page_tokens, 16);
  EXPECT_EQ(stats.prefill_tokens_saved, 32u);
  EXPECT_EQ(stats.pages_hit, 2u);
  EXPECT_EQ(stats.pages_missed, 2u); // the first session found nothing
  EXPECT_EQ(stats.pages_stored, 2u);
  EXPECT_EQ(stats.disk_pages, 2u);
  EXPECT_GT(stats.disk_bytes, 0u);
  EXPECT_EQ(stats.disk_corrupt, 0u);
  EXPECT_EQ(stats.io_failures, 0u);
  EXPECT_EQ(stats.store_failures, 0u);
}

// A disk that refuses every page (each subdirectory name taken by a plain
// file): the C API counts the failed stores, and the session is unharmed.
TEST(PrefixCacheApi, ReportsStoreFailures) {
  TempDir dir;
  const char *hex = "0123456789abcdef";
  for (int high = 0; high < 16; ++high)
    for (int low = 0; low < 16; ++low)
      std::ofstream(dir.path() / std::string{hex[high], hex[low]}) << "x";
  ModelHandle model(test::compiledArtifact("tiny-mixed"));
  model.attachCache(dir.path().string());
  const std::vector<int32_t> prompt = pseudoRandomIds(40, model.vocabSize(), 22);
  SessionHandle session(model);
  int64_t reused = -1;
  session.prefillLast(prompt, &reused);
  EXPECT_EQ(reused, 0);
  const v4rt_cache_stats stats = model.cacheStats();
  EXPECT_EQ(stats.pages_stored, 0u);
  EXPECT_EQ(stats.store_failures, 2u); // pages 0 and 1 of the 40 tokens
  EXPECT_EQ(stats.io_failures, 2u);
}

} // namespace
} // namespace v4rt
