// kill -9 of a writer mid-write: the next process never sees a partial page.
#include "runtime/kvcache/DiskTier.h"

#include <chrono>
#include <csignal>
#include <thread>

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/kvcache/KvCacheTestSupport.h"

namespace v4rt::kvcache {
namespace {

namespace fs = std::filesystem;
using test::kTestIdentity;
using test::ScratchDirectory;
using test::testKey;
using test::testPage;
using test::testPagePtr;

constexpr size_t kPayloadBytes = 8u << 20; // big pages keep the writer inside write() most of the time
constexpr int64_t kMaxPages = 40;

struct SchemeFiles {
  size_t pages = 0;           // files with a final page name
  size_t temporaries = 0;     // files with a temporary name
  size_t incompletePages = 0; // final-named files shorter than a whole page (must never be seen)
};

SchemeFiles countFiles(const fs::path &directory) {
  SchemeFiles files;
  for (const auto &entry : fs::recursive_directory_iterator(directory)) {
    std::string name = entry.path().filename().string();
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".page") == 0) {
      ++files.pages;
      std::error_code vanished;
      uintmax_t size = fs::file_size(entry.path(), vanished);
      files.incompletePages += !vanished && size < pageHeaderSize(kTestIdentity) + kPayloadBytes;
    }
    else if (name.find(".page.tmp.") != std::string::npos)
      ++files.temporaries;
  }
  return files;
}

// The child writes pages until killed; it never returns.
[[noreturn]] void writeForever(const fs::path &directory, uint32_t seed) {
  try {
    DiskTier tier(directory, kTestIdentity, 1ull << 40);
    for (int64_t i = 0; i < kMaxPages; ++i)
      tier.put(testPagePtr(i, kPayloadBytes, seed));
  } catch (...) {
    ::_exit(2);
  }
  ::_exit(0);
}

// Kills the writer once it has completed `pagesFirst` pages and is in the
// middle of another (its temporary file exists). Returns whether a
// temporary file was left behind.
bool killMidWrite(const fs::path &directory, uint32_t seed, size_t pagesFirst) {
  pid_t child = ::fork();
  if (child == 0)
    writeForever(directory, seed);
  EXPECT_GT(child, 0);
  // Kill as soon as a write is seen in progress: a temporary file, or (with a
  // broken scheme that writes in place) a page file still growing.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    SchemeFiles files = countFiles(directory);
    if (files.pages - files.incompletePages >= pagesFirst && (files.temporaries > 0 || files.incompletePages > 0))
      break;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the writer finished before the kill";
  return countFiles(directory).temporaries > 0;
}

TEST(DiskTierCrash, KillNineMidWriteLeavesNoPartialPage) {
  ScratchDirectory directory;
  const uint32_t seed = 11;
  int roundsWithOrphans = 0;
  for (int round = 0; round < 3; ++round) {
    bool leftTemporary = killMidWrite(directory.path(), seed, 2 + static_cast<size_t>(round));
    roundsWithOrphans += leftTemporary;
    SchemeFiles before = countFiles(directory.path());
    EXPECT_EQ(before.incompletePages, 0u) << "a partial page is visible under its final name";

    // The "next process": open the directory and read everything back.
    DiskTier tier(directory.path(), kTestIdentity, 1ull << 40);
    TierStats stats = tier.stats();
    EXPECT_EQ(stats.orphansRemoved, before.temporaries);
    EXPECT_EQ(countFiles(directory.path()).temporaries, 0u);
    EXPECT_EQ(stats.pages, before.pages);
    size_t intact = 0;
    for (int64_t i = 0; i < kMaxPages; ++i) {
      PagePtr page = tier.get(testKey(i, seed));
      if (!page)
        continue;
      ASSERT_EQ(page->payload.size(), kPayloadBytes) << "page " << i;
      ASSERT_TRUE(page->payload == testPage(i, kPayloadBytes, seed).payload) << "page " << i;
      ++intact;
    }
    EXPECT_EQ(intact, before.pages); // every complete-named file is a whole page
    EXPECT_GE(intact, 2u);
    EXPECT_EQ(tier.stats().corrupt, 0u);
  }
  EXPECT_GE(roundsWithOrphans, 1) << "no kill landed mid-write; the test proved nothing";
}

} // namespace
} // namespace v4rt::kvcache
