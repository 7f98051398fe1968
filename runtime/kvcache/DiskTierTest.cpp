#include "runtime/kvcache/DiskTier.h"

#include <chrono>
#include <thread>

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/Error.h"
#include "runtime/kvcache/KvCacheTestSupport.h"

namespace v4rt::kvcache {
namespace {

namespace fs = std::filesystem;
using test::kTestIdentity;
using test::readFileBytes;
using test::ScratchDirectory;
using test::testKey;
using test::testPage;
using test::testPagePtr;
using test::writeFileBytes;

constexpr uint64_t kLargeBudget = 1ull << 30;

uint64_t fileBytes(size_t payloadBytes) { return pageHeaderSize(kTestIdentity) + payloadBytes; }

// A pid that certainly belongs to no process: a child that has exited and been reaped.
long long deadPid() {
  pid_t child = ::fork();
  if (child == 0)
    ::_exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  return child;
}

// Coarse file timestamps: space out writes whose recency order a test relies on.
void tick() { std::this_thread::sleep_for(std::chrono::milliseconds(20)); }

TEST(DiskTier, PutWritesOneFileNamedByTheKeyAndGetReadsItBack) {
  ScratchDirectory directory;
  DiskTier tier(directory.path(), kTestIdentity, kLargeBudget);
  Page page = testPage(3, 5000);
  EXPECT_TRUE(tier.put(std::make_shared<const Page>(page)).empty());

  std::string hex = page.key.hex();
  fs::path expectedPath = directory.path() / hex.substr(0, 2) / (hex + ".page");
  EXPECT_EQ(tier.pagePath(page.key), expectedPath);
  ASSERT_TRUE(fs::is_regular_file(expectedPath));
  EXPECT_EQ(fs::file_size(expectedPath), fileBytes(5000));
  EXPECT_EQ(readFileBytes(expectedPath), encodePage(page, kTestIdentity));

  PagePtr read = tier.get(page.key);
  ASSERT_NE(read, nullptr);
  EXPECT_EQ(read->payload, page.payload);
  EXPECT_EQ(read->pageIndex, 3);
  EXPECT_EQ(read->tokens, 128);
  EXPECT_EQ(tier.get(testKey(4)), nullptr);

  TierStats stats = tier.stats();
  EXPECT_EQ(stats.name, "disk");
  EXPECT_EQ(stats.pages, 1u);
  EXPECT_EQ(stats.bytes, fileBytes(5000));
  EXPECT_EQ(stats.hits, 1u);
  EXPECT_EQ(stats.misses, 1u);
  EXPECT_EQ(stats.insertions, 1u);
  EXPECT_EQ(stats.corrupt, 0u);
}

TEST(DiskTier, ANewInstanceOnTheSameDirectoryFindsEarlierPages) {
  ScratchDirectory directory;
  {
    DiskTier writer(directory.path(), kTestIdentity, kLargeBudget);
    for (int64_t i = 0; i < 4; ++i)
      writer.put(testPagePtr(i, 1000 + 100 * i));
  }
  DiskTier reader(directory.path(), kTestIdentity, kLargeBudget);
  TierStats stats = reader.stats();
  EXPECT_EQ(stats.pages, 4u);
  EXPECT_EQ(stats.bytes, fileBytes(1000) + fileBytes(1100) + fileBytes(1200) + fileBytes(1300));
  for (int64_t i = 0; i < 4; ++i) {
    PagePtr page = reader.get(testKey(i));
    ASSERT_NE(page, nullptr) << "page " << i;
    EXPECT_EQ(page->payload, testPage(i, 1000 + 100 * i).payload);
  }
}

TEST(DiskTier, FindsPagesAnotherInstanceWroteAfterItOpened) {
  ScratchDirectory directory;
  DiskTier reader(directory.path(), kTestIdentity, kLargeBudget);
  DiskTier writer(directory.path(), kTestIdentity, kLargeBudget);
  writer.put(testPagePtr(0, 700));
  EXPECT_TRUE(reader.contains(testKey(0)));
  PagePtr page = reader.get(testKey(0));
  ASSERT_NE(page, nullptr);
  EXPECT_EQ(page->payload, testPage(0, 700).payload);
  EXPECT_EQ(reader.stats().pages, 1u);
}

TEST(DiskTier, AFlippedByteIsACountedMissAndTheFileIsRemoved) {
  ScratchDirectory directory;
  DiskTier tier(directory.path(), kTestIdentity, kLargeBudget);
  tier.put(testPagePtr(0, 4000));
  fs::path path = tier.pagePath(testKey(0));
  std::vector<uint8_t> bytes = readFileBytes(path);
  bytes[bytes.size() / 2] ^= 0x04;
  writeFileBytes(path, bytes);

  DiskTier reopened(directory.path(), kTestIdentity, kLargeBudget);
  EXPECT_EQ(reopened.get(testKey(0)), nullptr);
  TierStats stats = reopened.stats();
  EXPECT_EQ(stats.corrupt, 1u);
  EXPECT_EQ(stats.misses, 1u);
  EXPECT_EQ(stats.hits, 0u);
  EXPECT_EQ(stats.pages, 0u);
  EXPECT_EQ(stats.bytes, 0u);
  EXPECT_FALSE(fs::exists(path));
  EXPECT_NE(reopened.lastCorruptReason().find("checksum mismatch"), std::string::npos)
      << reopened.lastCorruptReason();
  EXPECT_NE(reopened.lastCorruptReason().find(path.string()), std::string::npos);
  // Recomputed and stored again, it is a hit.
  reopened.put(testPagePtr(0, 4000));
  EXPECT_NE(reopened.get(testKey(0)), nullptr);
}

TEST(DiskTier, ATruncatedFileIsACountedMiss) {
  ScratchDirectory directory;
  DiskTier tier(directory.path(), kTestIdentity, kLargeBudget);
  tier.put(testPagePtr(0, 4000));
  fs::path path = tier.pagePath(testKey(0));
  fs::resize_file(path, fs::file_size(path) / 2);
  EXPECT_EQ(tier.get(testKey(0)), nullptr);
  EXPECT_EQ(tier.stats().corrupt, 1u);
  EXPECT_FALSE(fs::exists(path));
  EXPECT_NE(tier.lastCorruptReason().find("truncated"), std::string::npos) << tier.lastCorruptReason();

  tier.put(testPagePtr(1, 4000));
  fs::resize_file(tier.pagePath(testKey(1)), 0); // an empty file under a page name
  EXPECT_EQ(tier.get(testKey(1)), nullptr);
  EXPECT_EQ(tier.stats().corrupt, 2u);
}

TEST(DiskTier, APageOfAnotherArtifactIsACountedMiss) {
  ScratchDirectory directory;
  Page page = testPage(0, 2000);
  {
    DiskTier other(directory.path(), "some-other-artifact", kLargeBudget);
    other.put(std::make_shared<const Page>(page)); // same key, foreign identity in the header
  }
  DiskTier tier(directory.path(), kTestIdentity, kLargeBudget);
  EXPECT_TRUE(tier.contains(page.key)); // presence alone does not validate
  EXPECT_EQ(tier.get(page.key), nullptr);
  EXPECT_EQ(tier.stats().corrupt, 1u);
  EXPECT_NE(tier.lastCorruptReason().find("another artifact"), std::string::npos) << tier.lastCorruptReason();
  EXPECT_FALSE(fs::exists(tier.pagePath(page.key)));
}

TEST(DiskTier, OrphanTemporaryFilesOfDeadWritersAreRemovedAtStart) {
  ScratchDirectory directory;
  std::string hex = testKey(0).hex();
  fs::path subdirectory = directory.path() / hex.substr(0, 2);
  fs::create_directories(subdirectory);
  long long dead = deadPid();
  std::vector<fs::path> orphans = {
      subdirectory / (hex + ".page.tmp." + std::to_string(dead) + ".0"),
      subdirectory / (hex + ".page.tmp." + std::to_string(dead) + ".17")};
  for (const fs::path &orphan : orphans)
    writeFileBytes(orphan, {1, 2, 3});
  // A live writer's temporary file (this process) and files of other schemes stay.
  fs::path live = subdirectory / (hex + ".page.tmp." + std::to_string(::getpid()) + ".5");
  std::vector<fs::path> foreign = {directory.path() / "notes.txt",
                                   directory.path() / (hex + ".page"), // not in its subdirectory
                                   subdirectory / "readme",
                                   subdirectory / (hex + ".page.tmp.x.1"),
                                   subdirectory / (hex.substr(0, 63) + ".page"),
                                   directory.path() / "zz" / (hex + ".page")};
  fs::create_directories(directory.path() / "zz");
  writeFileBytes(live, {4});
  for (const fs::path &path : foreign)
    writeFileBytes(path, {5});

  DiskTier tier(directory.path(), kTestIdentity, kLargeBudget);
  EXPECT_EQ(tier.stats().orphansRemoved, 2u);
  EXPECT_EQ(tier.stats().pages, 0u);
  for (const fs::path &orphan : orphans)
    EXPECT_FALSE(fs::exists(orphan)) << orphan;
  EXPECT_TRUE(fs::exists(live));
  for (const fs::path &path : foreign)
    EXPECT_TRUE(fs::exists(path)) << path;

  EXPECT_EQ(tier.clear(), 0u); // clear() also spares files that are not its own
  for (const fs::path &path : foreign)
    EXPECT_TRUE(fs::exists(path)) << path;
}

// A file of the page naming scheme that is not a page (another
// content-addressed store sharing the directory) is a user's file: the scan,
// the budget and clear() leave it alone, next to real pages that do go.
TEST(DiskTier, AUsersFileNamedLikeAPageIsNeverTouched) {
  ScratchDirectory directory;
  const std::string hex = testKey(7).hex();
  const fs::path lookalike = directory.path() / hex.substr(0, 2) / (hex + ".page");
  fs::create_directories(lookalike.parent_path());
  const std::string text = "my own notes, not a KV page";
  writeFileBytes(lookalike, std::vector<uint8_t>(text.begin(), text.end()));
  const fs::path tiny = directory.path() / "00" / ("00" + std::string(62, 'f') + ".page");
  fs::create_directories(tiny.parent_path());
  writeFileBytes(tiny, {'V', '4'}); // shorter than the magic

  {
    DiskTier tier(directory.path(), kTestIdentity, 1); // a budget no file fits
    EXPECT_EQ(tier.stats().pages, 0u);
    EXPECT_EQ(tier.stats().bytes, 0u);
    EXPECT_EQ(tier.stats().evictions, 0u);
  }
  DiskTier tier(directory.path(), kTestIdentity, kLargeBudget);
  EXPECT_EQ(tier.stats().pages, 0u);
  for (int64_t i = 0; i < 3; ++i)
    tier.put(testPagePtr(i, 300));
  DiskTier reopened(directory.path(), kTestIdentity, kLargeBudget);
  EXPECT_EQ(reopened.stats().pages, 3u);
  EXPECT_EQ(reopened.stats().bytes, 3 * fileBytes(300));
  EXPECT_EQ(reopened.clear(), 3u);
  EXPECT_FALSE(fs::exists(reopened.pagePath(testKey(0))));
  EXPECT_EQ(readFileBytes(lookalike), std::vector<uint8_t>(text.begin(), text.end()));
  EXPECT_TRUE(fs::exists(tiny));
}

// verify() reads every page: a flipped payload byte and a truncated page are
// corrupt, a page of another artifact is good (checked against the identity
// it names), a lookalike is foreign; only --remove-bad deletes, and only the
// corrupt pages.
TEST(DiskTier, VerifyChecksEveryPageAndRemovesOnlyCorruptOnesWhenAsked) {
  ScratchDirectory directory;
  {
    DiskTier writer(directory.path(), kTestIdentity, kLargeBudget);
    for (int64_t i = 0; i < 4; ++i)
      writer.put(testPagePtr(i, 400));
    DiskTier other(directory.path(), "another-artifact", kLargeBudget);
    other.put(testPagePtr(4, 400));
  }
  DiskTier tier(directory.path(), "", kLargeBudget);
  std::vector<uint8_t> flipped = readFileBytes(tier.pagePath(testKey(1)));
  flipped[flipped.size() - 10] ^= 0x40;
  writeFileBytes(tier.pagePath(testKey(1)), flipped);
  std::vector<uint8_t> truncated = readFileBytes(tier.pagePath(testKey(2)));
  truncated.resize(truncated.size() / 2);
  writeFileBytes(tier.pagePath(testKey(2)), truncated);
  const std::string hex = testKey(9).hex();
  const fs::path lookalike = directory.path() / hex.substr(0, 2) / (hex + ".page");
  fs::create_directories(lookalike.parent_path());
  writeFileBytes(lookalike, {'n', 'o', 't', 'e', 's'});

  const DiskTier::VerifyReport looked = tier.verify(/*removeBad=*/false);
  EXPECT_EQ(looked.good, 3u);
  EXPECT_EQ(looked.corrupt, 2u);
  EXPECT_EQ(looked.foreign, 1u);
  EXPECT_EQ(looked.removed, 0u);
  ASSERT_EQ(looked.problems.size(), 2u);
  EXPECT_TRUE(fs::exists(tier.pagePath(testKey(1))));

  const DiskTier::VerifyReport repaired = tier.verify(/*removeBad=*/true);
  EXPECT_EQ(repaired.corrupt, 2u);
  EXPECT_EQ(repaired.removed, 2u);
  EXPECT_FALSE(fs::exists(tier.pagePath(testKey(1))));
  EXPECT_FALSE(fs::exists(tier.pagePath(testKey(2))));
  EXPECT_EQ(tier.stats().pages, 3u);
  EXPECT_TRUE(fs::exists(lookalike));
  const DiskTier::VerifyReport after = tier.verify(/*removeBad=*/false);
  EXPECT_EQ(after.good, 3u);
  EXPECT_EQ(after.corrupt, 0u);
  EXPECT_EQ(after.foreign, 1u);
}

TEST(DiskTier, EvictsLeastRecentlyUsedFilesOverBudget) {
  ScratchDirectory directory;
  DiskTier tier(directory.path(), kTestIdentity, 3 * fileBytes(1000));
  for (int64_t i = 0; i < 3; ++i)
    tier.put(testPagePtr(i, 1000));
  ASSERT_NE(tier.get(testKey(0)), nullptr); // page 1 is now the least recently used
  tier.put(testPagePtr(3, 1000));
  EXPECT_FALSE(fs::exists(tier.pagePath(testKey(1))));
  for (int64_t i : {0, 2, 3})
    EXPECT_TRUE(fs::exists(tier.pagePath(testKey(i)))) << "page " << i;
  TierStats stats = tier.stats();
  EXPECT_EQ(stats.evictions, 1u);
  EXPECT_EQ(stats.pages, 3u);
  EXPECT_LE(stats.bytes, stats.byteBudget);

  // Too big to ever fit: not written, counted as evicted.
  tier.put(testPagePtr(9, 4000));
  EXPECT_FALSE(fs::exists(tier.pagePath(testKey(9))));
  EXPECT_EQ(tier.stats().evictions, 2u);
}

TEST(DiskTier, RecencySurvivesRestartsAndASmallerBudgetEvictsTheOldest) {
  ScratchDirectory directory;
  {
    DiskTier tier(directory.path(), kTestIdentity, kLargeBudget);
    for (int64_t i = 0; i < 3; ++i) {
      tier.put(testPagePtr(i, 1000));
      tick();
    }
    ASSERT_NE(tier.get(testKey(0)), nullptr); // the hit refreshes the file's time
    tick();
  }
  DiskTier smaller(directory.path(), kTestIdentity, 2 * fileBytes(1000));
  EXPECT_EQ(smaller.stats().evictions, 1u);
  EXPECT_FALSE(fs::exists(smaller.pagePath(testKey(1))));
  EXPECT_TRUE(fs::exists(smaller.pagePath(testKey(0))));
  EXPECT_TRUE(fs::exists(smaller.pagePath(testKey(2))));
}

TEST(DiskTier, EraseAndClear) {
  ScratchDirectory directory;
  DiskTier tier(directory.path(), kTestIdentity, kLargeBudget);
  for (int64_t i = 0; i < 5; ++i)
    tier.put(testPagePtr(i, 300));
  EXPECT_TRUE(tier.erase(testKey(0)));
  EXPECT_FALSE(tier.erase(testKey(0)));
  EXPECT_FALSE(fs::exists(tier.pagePath(testKey(0))));
  EXPECT_EQ(tier.clear(), 4u);
  EXPECT_EQ(tier.stats().pages, 0u);
  EXPECT_EQ(tier.stats().bytes, 0u);
  EXPECT_TRUE(fs::is_empty(directory.path())); // emptied subdirectories are removed too
  DiskTier reopened(directory.path(), kTestIdentity, kLargeBudget);
  EXPECT_EQ(reopened.stats().pages, 0u);
}

TEST(DiskTier, PuttingAKeyAlreadyStoredKeepsTheFile) {
  ScratchDirectory directory;
  DiskTier tier(directory.path(), kTestIdentity, kLargeBudget);
  tier.put(testPagePtr(0, 300));
  tier.put(testPagePtr(0, 300));
  EXPECT_EQ(tier.stats().insertions, 1u);
  EXPECT_EQ(tier.stats().pages, 1u);
  // Deleted behind its back: the next put writes it again.
  fs::remove(tier.pagePath(testKey(0)));
  tier.put(testPagePtr(0, 300));
  EXPECT_TRUE(fs::exists(tier.pagePath(testKey(0))));
  EXPECT_EQ(tier.stats().insertions, 2u);
}

TEST(DiskTier, IoFailuresAreOneLineErrorsNamingThePath) {
  ScratchDirectory directory;
  fs::path notADirectory = directory.path() / "plain-file";
  writeFileBytes(notADirectory, {1});
  try {
    DiskTier tier(notADirectory, kTestIdentity, kLargeBudget);
    FAIL() << "opened a regular file as a cache directory";
  } catch (const v4c::Error &error) {
    std::string message = error.what();
    EXPECT_NE(message.find(notADirectory.string()), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }

  // The page's subdirectory name is taken by a plain file: the write cannot happen.
  DiskTier tier(directory.path() / "cache", kTestIdentity, kLargeBudget);
  fs::path blocked = tier.pagePath(testKey(0)).parent_path();
  writeFileBytes(blocked, {1});
  try {
    tier.put(testPagePtr(0, 100));
    FAIL() << "wrote a page under a plain file";
  } catch (const v4c::Error &error) {
    std::string message = error.what();
    EXPECT_NE(message.find(blocked.string()), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
  EXPECT_EQ(tier.stats().pages, 0u);
}

} // namespace
} // namespace v4rt::kvcache
