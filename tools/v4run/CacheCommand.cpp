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
  v4c::check(std::filesystem::is_directory(directory),
             "cache directory " + directory + " does not exist");
  return v4rt::kvcache::DiskTier(directory, "", std::numeric_limits<uint64_t>::max());
}

} // namespace

int runCacheStats(const std::string &directory) {
  v4rt::kvcache::DiskTier tier = openExisting(directory);
  const v4rt::kvcache::TierStats stats = tier.stats();
  // Bytes per page show the window strategy: full pages carry the window
  // state, periodic:P ones only every P tokens, zero ones never.
  std::printf("directory: %s\npages: %llu\nbytes: %llu\nbytes per page: %llu\ncorrupt: %llu\n"
              "orphans removed: %llu\n",
              directory.c_str(), static_cast<unsigned long long>(stats.pages),
              static_cast<unsigned long long>(stats.bytes),
              static_cast<unsigned long long>(stats.pages ? stats.bytes / stats.pages : 0),
              static_cast<unsigned long long>(stats.corrupt),
              static_cast<unsigned long long>(stats.orphansRemoved));
  return 0;
}

int runCacheClear(const std::string &directory) {
  v4rt::kvcache::DiskTier tier = openExisting(directory);
  const uint64_t removed = tier.clear();
  std::printf("removed %llu pages from %s\n", static_cast<unsigned long long>(removed),
              directory.c_str());
  return 0;
}

} // namespace v4run
