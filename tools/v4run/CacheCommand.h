// What v4run says about a KV page cache: `v4run cache stats|verify|clear DIR`
// (a page directory, no artifact loaded) and the summary lines a generate
// with a cache prints after its ids.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/api/v4rt.h"

namespace v4run {

int runCacheStats(const std::string &directory);
// Reads every page file (header, checksums, key) and prints how many are
// good, corrupt and foreign (named like a page, not one: never touched).
// removeBad deletes the corrupt ones. Exit 2 when corrupt pages remain.
int runCacheVerify(const std::string &directory, bool removeBad);
int runCacheClear(const std::string &directory);

// "prefix hit: N tokens reused", the window rebuild line and the "kv cache:"
// line (every tier in use, store failures), then a warning on stderr for I/O
// or store failures. `tokensReused`: summed over the sessions of a batch.
void printGenerateCacheSummary(const v4rt_cache_stats &stats, int64_t tokensReused, const std::string &swaCache);

} // namespace v4run
