#include "tools/v4run/CacheCommand.h"

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>

#include "common/Error.h"
#include "runtime/kvcache/DiskTier.h"

namespace v4run {
namespace {

// Opening the tier indexes the pages and removes dead writers' temporaries;
// an empty identity is enough for stats and clear.
v4rt::kvcache::DiskTier openExisting(const std::string &directory) {
  std::error_code error;
  const std::filesystem::file_status status = std::filesystem::status(directory, error);
  v4c::check(std::filesystem::exists(status), "cache directory " + directory + " does not exist");
  v4c::check(std::filesystem::is_directory(status), "cache directory " + directory + " is not a directory");
  return v4rt::kvcache::DiskTier(directory, "", std::numeric_limits<uint64_t>::max());
}

} // namespace

int runCacheStats(const std::string &directory) {
  v4rt::kvcache::DiskTier tier = openExisting(directory);
  const v4rt::kvcache::TierStats stats = tier.stats();
  // Bytes per page show the window strategy: full pages carry the window
  // state, periodic:P ones only every P tokens, zero ones never. Stats list
  // files without reading them: damage shows in `cache verify` only.
  std::printf("directory: %s\npages: %llu\nbytes: %llu\nbytes per page: %llu\n"
              "corrupt: not checked (v4run cache verify reads every page)\norphans removed: %llu\n",
              directory.c_str(), static_cast<unsigned long long>(stats.pages),
              static_cast<unsigned long long>(stats.bytes),
              static_cast<unsigned long long>(stats.pages ? stats.bytes / stats.pages : 0),
              static_cast<unsigned long long>(stats.orphansRemoved));
  return 0;
}

int runCacheVerify(const std::string &directory, bool removeBad) {
  v4rt::kvcache::DiskTier tier = openExisting(directory);
  const v4rt::kvcache::DiskTier::VerifyReport report = tier.verify(removeBad);
  for (const std::string &problem : report.problems)
    std::printf("corrupt page: %s\n", problem.c_str());
  std::printf("directory: %s\npages: %llu\ngood: %llu\ncorrupt: %llu\nforeign: %llu (named like a page, "
              "not one: left alone)\nremoved: %llu\n",
              directory.c_str(), static_cast<unsigned long long>(report.good + report.corrupt),
              static_cast<unsigned long long>(report.good), static_cast<unsigned long long>(report.corrupt),
              static_cast<unsigned long long>(report.foreign), static_cast<unsigned long long>(report.removed));
  return report.corrupt > report.removed ? 2 : 0;
}

int runCacheClear(const std::string &directory) {
  v4rt::kvcache::DiskTier tier = openExisting(directory);
  const uint64_t removed = tier.clear();
  std::printf("removed %llu pages from %s\n", static_cast<unsigned long long>(removed),
              directory.c_str());
  return 0;
}

void printGenerateCacheSummary(const v4rt_cache_stats &stats, int64_t tokensReused, const std::string &swaCache) {
  std::printf("prefix hit: %lld tokens reused\n", static_cast<long long>(tokensReused));
  std::printf("window rebuild: %llu restored tokens run again (--swa-cache %s)\n",
              static_cast<unsigned long long>(stats.window_tokens_recomputed), swaCache.c_str());
  // Fields scripts parse come first, in their old order; newer ones follow.
  std::printf("kv cache: page %lld tokens; pages hit %llu, missed %llu, stored %llu; disk %llu pages, %llu bytes; "
              "corrupt %llu; host %llu pages, %llu bytes; store failures %llu\n",
              static_cast<long long>(stats.page_tokens), static_cast<unsigned long long>(stats.pages_hit),
              static_cast<unsigned long long>(stats.pages_missed), static_cast<unsigned long long>(stats.pages_stored),
              static_cast<unsigned long long>(stats.disk_pages), static_cast<unsigned long long>(stats.disk_bytes),
              static_cast<unsigned long long>(stats.disk_corrupt), static_cast<unsigned long long>(stats.host_pages),
              static_cast<unsigned long long>(stats.host_bytes),
              static_cast<unsigned long long>(stats.store_failures));
  if (stats.io_failures > 0 || stats.store_failures > 0)
    std::fprintf(stderr, "v4run: warning: %llu KV cache I/O failures, %llu pages not stored (pages recomputed)\n",
                 static_cast<unsigned long long>(stats.io_failures),
                 static_cast<unsigned long long>(stats.store_failures));
}

} // namespace v4run
