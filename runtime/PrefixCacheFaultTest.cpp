// A damaged cache directory costs time, never correctness: flipped bytes,
// truncated files, another artifact's pages and a kill -9'd writer each leave
// the next run's tokens equal to a cold run's, and the fault is counted.
#include "runtime/PrefixCache.h"

#include <chrono>
#include <csignal>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>

#include "common/Error.h"
#include "runtime/PrefixCacheTestSupport.h"
#include "runtime/Session.h"
#include "runtime/kvcache/Page.h"

extern char **environ;

namespace v4rt {
namespace {

namespace fs = std::filesystem;
using test::diskOnly;
using test::generate;
using test::pageFile;
using test::pseudoRandomIds;
using test::TempDir;

std::vector<uint8_t> readBytes(const fs::path &path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void writeBytes(const fs::path &path, const std::vector<uint8_t> &bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char *>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

class PrefixCacheFaultTest : public ::testing::Test {
protected:
  void SetUp() override {
    model = Model::load(test::compiledArtifact("tiny-mixed"));
    prompt = pseudoRandomIds(70, model->vocabSize(), 13); // pages 0..3 reusable
    cold = generate(*model, nullptr, prompt, 5).ids;
    PrefixCache writer(*model, diskOnly(dir.path()));
    generate(*model, &writer, prompt, 0);
    ASSERT_TRUE(fs::exists(pageFile(dir.path(), writer, prompt, 3)));
  }

  // A new instance (a restarted process) runs the prompt; returns its stats.
  PrefixCacheStats rerun(int64_t expectedReused) {
    PrefixCache reader(*model, diskOnly(dir.path()));
    const test::Generation warm = generate(*model, &reader, prompt, 5);
    EXPECT_EQ(warm.ids, cold);
    EXPECT_EQ(warm.tokensReused, expectedReused);
    return reader.stats();
  }

  fs::path page(int64_t index) {
    PrefixCache keys(*model, diskOnly(dir.path()));
    return pageFile(dir.path(), keys, prompt, index);
  }

  TempDir dir;
  std::unique_ptr<Model> model;
  std::vector<int32_t> prompt;
  std::vector<int32_t> cold;
};

TEST_F(PrefixCacheFaultTest, FlippedByteIsAMiss) {
  std::vector<uint8_t> bytes = readBytes(page(2));
  bytes[bytes.size() / 2] ^= 0x40;
  writeBytes(page(2), bytes);
  const PrefixCacheStats stats = rerun(32); // pages 0 and 1 only
  EXPECT_EQ(stats.tiers.tiers.at(0).corrupt, 1u);
  EXPECT_EQ(stats.pagesMissed, 2u);
  rerun(64); // the recomputed page was stored again
}

TEST_F(PrefixCacheFaultTest, TruncatedFileIsAMiss) {
  std::vector<uint8_t> bytes = readBytes(page(0));
  bytes.resize(bytes.size() - 100);
  writeBytes(page(0), bytes);
  const PrefixCacheStats stats = rerun(0);
  EXPECT_EQ(stats.tiers.tiers.at(0).corrupt, 1u);
  rerun(64);
}

// Damage in several pages: the run that finds the first one also reads the
// pages after it, drops the damaged ones and stores them again, so the next
// run finds every page good (not one more run per damaged page).
TEST_F(PrefixCacheFaultTest, OneRunRepairsEveryDamagedPageOfThePrompt) {
  for (int64_t index : {1, 3}) {
    std::vector<uint8_t> bytes = readBytes(page(index));
    bytes[bytes.size() / 2] ^= 0x40;
    writeBytes(page(index), bytes);
  }
  const PrefixCacheStats repairing = rerun(16); // page 0 only
  EXPECT_EQ(repairing.tiers.tiers.at(0).corrupt, 2u);
  EXPECT_EQ(repairing.pagesStored, 2u); // pages 1 and 3 again (page 2 was good: kept)
  const PrefixCacheStats repaired = rerun(64);
  EXPECT_EQ(repaired.tiers.tiers.at(0).corrupt, 0u);
  EXPECT_EQ(repaired.pagesHit, 4u);
}

TEST_F(PrefixCacheFaultTest, AnotherArtifactsPageIsAMiss) {
  PrefixCache keys(*model, diskOnly(dir.path()));
  const kvcache::PageKey key = keys.prefixKeys(prompt.data(), 2).at(1);
  std::vector<uint8_t> genuine = readBytes(page(1));
  kvcache::DecodedPage decoded = kvcache::decodePage(genuine.data(), genuine.size(),
                                                     model->identity(), key);
  ASSERT_TRUE(decoded) << decoded.reason;
  writeBytes(page(1), kvcache::encodePage(*decoded.page, "another-artifact-identity"));
  const PrefixCacheStats stats = rerun(16);
  EXPECT_EQ(stats.tiers.tiers.at(0).corrupt, 1u);
}

// A page of the right identity and key whose payload has another schema (a
// compiler change that kept the identity) is rejected by the payload check.
TEST_F(PrefixCacheFaultTest, PayloadOfAnotherSchemaIsAMiss) {
  PrefixCache keys(*model, diskOnly(dir.path()));
  const kvcache::PageKey key = keys.prefixKeys(prompt.data(), 1).at(0);
  std::vector<uint8_t> genuine = readBytes(page(0));
  kvcache::DecodedPage decoded = kvcache::decodePage(genuine.data(), genuine.size(),
                                                     model->identity(), key);
  ASSERT_TRUE(decoded) << decoded.reason;
  kvcache::Page altered = *decoded.page;
  altered.payload[48 + 16] ^= 1; // slot 0's width in its descriptor (after the 48-byte header)
  writeBytes(page(0), kvcache::encodePage(altered, model->identity()));
  const PrefixCacheStats stats = rerun(0);
  EXPECT_EQ(stats.pagesRejected, 1u);
  rerun(64); // the rejected page was replaced by the recomputed one
}

// A disk that refuses writes (every page subdirectory name taken by a plain
// file) costs the stores, counted as warnings; generation goes on unharmed.
TEST(PrefixCacheIo, FailedStoresAreWarningsNotErrors) {
  auto model = Model::load(test::compiledArtifact("tiny-mixed"));
  const std::vector<int32_t> prompt = pseudoRandomIds(50, model->vocabSize(), 19);
  TempDir dir;
  PrefixCache cache(*model, diskOnly(dir.path()));
  const char *hex = "0123456789abcdef";
  for (int high = 0; high < 16; ++high)
    for (int low = 0; low < 16; ++low)
      writeBytes(dir.path() / std::string{hex[high], hex[low]}, {1});
  const test::Generation run = generate(*model, &cache, prompt, 3);
  EXPECT_EQ(run.ids, generate(*model, nullptr, prompt, 3).ids);
  const PrefixCacheStats stats = cache.stats();
  EXPECT_EQ(stats.ioFailures, 3u);
  EXPECT_EQ(stats.storeFailures, 3u); // all three were stores
  EXPECT_EQ(stats.pagesStored, 0u);
  EXPECT_NE(cache.lastWarning().find("KV page not stored"), std::string::npos) << cache.lastWarning();
}

// An exception while encoding a page or taking a boundary snapshot (say
// std::bad_alloc) costs the cache that page or snapshot, never the prefill:
// the logits are exactly a cache-less session's, and the failures are counted.
TEST(PrefixCacheStoreFaults, FailedPageEncodingOrSnapshotNeverFailsPrefill) {
  auto model = Model::load(test::compiledArtifact("tiny-mixed"));
  const int64_t V = model->vocabSize();
  const std::vector<int32_t> prompt = pseudoRandomIds(70, V, 23);
  Session plain(*model);
  std::vector<float> plainLogits(V);
  plain.prefill(prompt.data(), 70, plainLogits.data(), PrefillLogits::LastRow);

  PrefixCacheOptions options;
  options.hostBytes = 64ull << 20;
  PrefixCache cache(*model, options);
  const int64_t P = cache.pageTokens();
  ASSERT_EQ(70 / P, 4); // pages 0..3 complete
  Session session(*model, &cache);
  int pagesEncoded = 0, snapshotsTaken = 0;
  session.setCacheFaultHook([&](const char *where) {
    if (std::string(where) == "page" && ++pagesEncoded == 2)
      throw std::bad_alloc();
    if (std::string(where) == "snapshot" && ++snapshotsTaken == 3)
      throw v4c::Error("no memory for the snapshot");
  });
  std::vector<float> logits(V);
  EXPECT_EQ(session.prefill(prompt.data(), 70, logits.data(), PrefillLogits::LastRow), 0);
  EXPECT_EQ(session.position(), 70);
  EXPECT_EQ(logits, plainLogits);
  EXPECT_EQ(pagesEncoded, 4);
  EXPECT_EQ(snapshotsTaken, 4);
  const PrefixCacheStats stats = cache.stats();
  EXPECT_EQ(stats.storeFailures, 2u); // page 1 and the snapshot at 3P
  EXPECT_EQ(stats.pagesStored, 3u);
  EXPECT_EQ(stats.ioFailures, 0u);
  EXPECT_NE(cache.lastWarning().find("no memory for the snapshot"), std::string::npos) << cache.lastWarning();

  // The session goes on as the cache-less one: a decode step, and a fork
  // past the missing snapshot (restored from an earlier boundary instead).
  std::vector<float> next(V), plainNext(V);
  session.decode(prompt[5], next.data());
  plain.decode(prompt[5], plainNext.data());
  EXPECT_EQ(next, plainNext);
  std::unique_ptr<Session> child = session.fork(3 * P + 2), plainChild = plain.fork(3 * P + 2);
  child->decode(prompt[7], next.data());
  plainChild->decode(prompt[7], plainNext.data());
  EXPECT_LE(test::maxAbsDifference(next, plainNext), 1e-6f);

  // A later session restores page 0 only (page 1 is missing) and matches.
  const uint64_t hitsBefore = cache.stats().pagesHit; // the fork may have looked pages up
  Session warm(*model, &cache);
  std::vector<float> warmLogits(V);
  EXPECT_EQ(warm.prefill(prompt.data(), 70, warmLogits.data(), PrefillLogits::LastRow), P);
  EXPECT_EQ(cache.stats().pagesHit - hitsBefore, 1u);
  EXPECT_LE(test::maxAbsDifference(warmLogits, plainLogits), 1e-5f);
}

// A restore that fails midway (here the window rebuild's first kernel step)
// puts the session back to the fresh state and prefills the whole prompt:
// the logits are exactly a cache-less session's, the failure is counted.
TEST(PrefixCacheStoreFaults, FailedRestoreFallsBackToAFullPrefill) {
  auto model = Model::load(test::compiledArtifact("tiny-mixed"));
  const int64_t V = model->vocabSize();
  const std::vector<int32_t> prompt = pseudoRandomIds(70, V, 29);
  Session plain(*model);
  std::vector<float> plainLogits(V);
  plain.prefill(prompt.data(), 70, plainLogits.data(), PrefillLogits::LastRow);

  PrefixCacheOptions options;
  options.hostBytes = 64ull << 20;
  options.strategy = SwaCacheStrategy::Zero; // restores run the last tokens again
  PrefixCache cache(*model, options);
  Session writer(*model, &cache);
  writer.prefill(prompt.data(), 70, nullptr, PrefillLogits::LastRow);
  ASSERT_EQ(cache.stats().pagesStored, 4u);

  Session session(*model, &cache);
  bool failed = false;
  session.setStepHook([&](const BoundBucket &, size_t, const KernelArgs &) {
    if (!failed) {
      failed = true;
      throw v4c::Error("injected kernel failure");
    }
  });
  std::vector<float> logits(V);
  EXPECT_EQ(session.prefill(prompt.data(), 70, logits.data(), PrefillLogits::LastRow), 0);
  EXPECT_TRUE(failed);
  EXPECT_EQ(session.position(), 70);
  EXPECT_EQ(session.prefillTokensComputed(), 70);
  EXPECT_EQ(logits, plainLogits);
  const PrefixCacheStats stats = cache.stats();
  EXPECT_EQ(stats.storeFailures, 1u);
  EXPECT_EQ(stats.prefillTokensSaved, 0u);
  EXPECT_NE(cache.lastWarning().find("injected kernel failure"), std::string::npos) << cache.lastWarning();
}

// kill -9 of a v4run writing pages, then a new run on the directory.
TEST(PrefixCacheCrash, KilledWriterLeavesAUsableDirectory) {
  const std::string artifact = test::compiledArtifact("tiny-mixed");
  auto model = Model::load(artifact);
  const std::vector<int32_t> prompt = pseudoRandomIds(4000, model->vocabSize(), 17);
  std::string ids;
  for (int32_t id : prompt)
    ids += (ids.empty() ? "" : ",") + std::to_string(id);
  TempDir dir;
  std::vector<std::string> args = {V4RUN_BINARY, "generate", artifact, "--prompt-ids", ids,
                                   "-n", "1", "--threads", "1", "--cache-dir",
                                   dir.path().string()};
  std::vector<char *> argv;
  for (std::string &arg : args)
    argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t writer = 0;
  ASSERT_EQ(::posix_spawn(&writer, V4RUN_BINARY, nullptr, nullptr, argv.data(), environ), 0);
  // Kill it once it is busy storing pages.
  auto pageCount = [&] {
    size_t pages = 0;
    std::error_code racing;
    for (auto it = fs::recursive_directory_iterator(dir.path(), racing);
         it != fs::recursive_directory_iterator(); it.increment(racing))
      pages += it->path().extension() == ".page";
    return pages;
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (pageCount() < 20 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_EQ(::kill(writer, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(writer, &status, 0), writer);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the writer finished before it was killed";

  const std::vector<int32_t> shorter(prompt.begin(), prompt.begin() + 400);
  PrefixCache reader(*model, diskOnly(dir.path()));
  const test::Generation warm = generate(*model, &reader, shorter, 4);
  EXPECT_EQ(warm.ids, generate(*model, nullptr, shorter, 4).ids);
  // The 20 or more pages it had finished (the prompt allows 24 at most).
  EXPECT_GE(warm.tokensReused, 320);
  EXPECT_LE(warm.tokensReused, 384);
  for (const auto &entry : fs::recursive_directory_iterator(dir.path()))
    EXPECT_EQ(entry.path().string().find(".page.tmp."), std::string::npos) << entry.path();
}

} // namespace
} // namespace v4rt
