// `v4run cache stats DIR` and `v4run cache clear DIR`: inspect or empty a KV
// page directory without loading any artifact.
#pragma once

#include <string>

namespace v4run {

int runCacheStats(const std::string &directory);
int runCacheClear(const std::string &directory);

} // namespace v4run
