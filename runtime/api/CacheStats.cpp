#include "runtime/api/CacheStats.h"

namespace v4rt {

v4rt_cache_stats toApiCacheStats(const PrefixCacheStats &stats) {
  v4rt_cache_stats out{};
  out.page_tokens = stats.pageTokens;
  out.prefill_tokens_saved = stats.prefillTokensSaved;
  out.pages_hit = stats.pagesHit;
  out.pages_missed = stats.pagesMissed;
  out.pages_rejected = stats.pagesRejected;
  out.pages_stored = stats.pagesStored;
  out.window_tokens_recomputed = stats.windowTokensRecomputed;
  out.page_bytes_stored = stats.pageBytesStored;
  out.io_failures = stats.ioFailures;
  out.store_failures = stats.storeFailures;
  for (const kvcache::TierStats &tier : stats.tiers.tiers) {
    if (tier.name == "device") {
      out.device_pages = tier.pages;
      out.device_bytes = tier.bytes;
    } else if (tier.name == "host") {
      out.host_pages = tier.pages;
      out.host_bytes = tier.bytes;
      out.host_pinned = tier.pinned ? 1 : 0;
      out.host_pinned_bytes = tier.pinnedBytes;
      out.host_pin_failures = tier.pinFailures;
    } else if (tier.name == "disk") {
      out.disk_pages = tier.pages;
      out.disk_bytes = tier.bytes;
      out.disk_corrupt = tier.corrupt;
      out.disk_orphans_removed = tier.orphansRemoved;
    }
  }
  return out;
}

} // namespace v4rt
