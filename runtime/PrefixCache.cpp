#include "runtime/PrefixCache.h"

#include "common/Error.h"
#include "runtime/kvcache/PageKey.h"

namespace v4rt {

SwaCacheStrategy parseSwaCacheStrategy(const std::string &text) {
  if (text == "full")
    return SwaCacheStrategy::Full;
  if (text == "zero" || text.rfind("periodic:", 0) == 0)
    throw v4c::Error("--swa-cache " + text + ": not supported yet (use full)");
  throw v4c::Error("--swa-cache " + text + ": unknown strategy (want full, periodic:P or zero)");
}

PrefixCache::PrefixCache(const Model &model, const PrefixCacheOptions &options)
    : options_(options), identity_(model.identity()), slots_(model.program().caches),
      pageTokens_(pageTokensFor(model.program().caches)) {
  kvcache::TieredCacheOptions tiers;
  tiers.hostBytes = options.hostBytes;
  tiers.diskDirectory = options.directory;
  tiers.diskBytes = options.diskBytes;
  cache_ = kvcache::TieredPageCache::create(tiers, identity_, pageTokens_);
  if (cache_->tierCount() > 1)
    writeThroughDisk_ = cache_->findTier("disk");
  counters_.pageTokens = pageTokens_;
}

kvcache::PageKey PrefixCache::pageKey(const kvcache::PageKey *previous, const int32_t *ids) const {
  return kvcache::chainKey(previous, ids, static_cast<size_t>(pageTokens_), identity_,
                           options_.tenantSalt);
}

std::vector<kvcache::PageKey> PrefixCache::prefixKeys(const int32_t *ids, int64_t pages) const {
  return kvcache::prefixKeys(ids, static_cast<size_t>(pages * pageTokens_),
                             static_cast<size_t>(pageTokens_), identity_, options_.tenantSalt);
}

std::vector<kvcache::PagePtr> PrefixCache::fetch(const std::vector<kvcache::PageKey> &keys) {
  std::vector<kvcache::PagePtr> pages;
  try {
    pages = cache_->fetchPrefix(keys);
  } catch (const std::exception &e) {
    warn(std::string("KV cache lookup failed, prefilling instead: ") + e.what());
    pages.clear();
  }
  uint64_t rejected = 0;
  for (size_t i = 0; i < pages.size(); ++i) {
    if (!checkPagePayload(pages[i]->payload, slots_, static_cast<int64_t>(i), pageTokens_,
                          options_.strategy)
             .empty() ||
        pages[i]->tokens != pageTokens_) {
      rejected = 1;
      pages.resize(i);
      break;
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  counters_.pagesHit += pages.size();
  counters_.pagesMissed += keys.size() - pages.size();
  counters_.pagesRejected += rejected;
  return pages;
}

bool PrefixCache::contains(const kvcache::PageKey &key) const { return cache_->contains(key); }

void PrefixCache::store(kvcache::Page page) {
  auto shared = std::make_shared<const kvcache::Page>(std::move(page));
  try {
    cache_->insert(shared);
    if (writeThroughDisk_)
      writeThroughDisk_->put(shared);
  } catch (const std::exception &e) {
    warn(std::string("KV page not stored: ") + e.what());
    return;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  ++counters_.pagesStored;
}

void PrefixCache::recordTokensSaved(int64_t tokens) {
  std::lock_guard<std::mutex> lock(mutex_);
  counters_.prefillTokensSaved += static_cast<uint64_t>(tokens);
}

void PrefixCache::warn(const std::string &message) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++counters_.ioFailures;
  lastWarning_ = message;
}

PrefixCacheStats PrefixCache::stats() const {
  PrefixCacheStats stats;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stats = counters_;
  }
  stats.tiers = cache_->stats();
  return stats;
}

std::string PrefixCache::lastWarning() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return lastWarning_;
}

uint64_t PrefixCache::clear() { return cache_->clear(); }

} // namespace v4rt
