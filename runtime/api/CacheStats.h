// The C API's view of a prefix cache's counters (what v4rt_model_cache_stats
// fills in): one conversion for the API and for v4run's summaries.
#pragma once

#include "runtime/PrefixCache.h"
#include "runtime/api/v4rt.h"

namespace v4rt {

v4rt_cache_stats toApiCacheStats(const PrefixCacheStats &stats);

} // namespace v4rt
