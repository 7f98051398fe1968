#include "runtime/kvcache/TieredPageCache.h"

#include <set>

#include "common/Error.h"
#include "runtime/kvcache/DiskTier.h"
#include "runtime/kvcache/MemoryTier.h"

namespace v4rt::kvcache {

uint64_t CacheStats::totalBytes() const {
  uint64_t total = 0;
  for (const TierStats &tier : tiers)
    total += tier.bytes;
  return total;
}

TieredPageCache::TieredPageCache(std::vector<std::unique_ptr<PageTier>> tiers, int64_t pageTokens)
    : tiers_(std::move(tiers)), pageTokens_(pageTokens) {
  v4c::check(!tiers_.empty(), "a tiered page cache needs at least one tier");
  v4c::check(pageTokens_ > 0, "page tokens must be positive, got " + std::to_string(pageTokens_));
  std::set<std::string> names;
  for (const auto &tier : tiers_) {
    v4c::check(tier != nullptr, "a tiered page cache was given a null tier");
    v4c::check(names.insert(tier->name()).second, "two cache tiers are named '" + tier->name() + "'");
  }
  counters_.pageTokens = pageTokens_;
}

std::unique_ptr<TieredPageCache> TieredPageCache::create(const TieredCacheOptions &options,
                                                         const std::string &artifactIdentity,
                                                         int64_t pageTokens) {
  std::vector<std::unique_ptr<PageTier>> tiers;
  if (options.hostBytes > 0)
    tiers.push_back(std::make_unique<MemoryTier>("host", options.hostBytes, options.payloadAllocator));
  if (!options.diskDirectory.empty())
    tiers.push_back(std::make_unique<DiskTier>(options.diskDirectory, artifactIdentity, options.diskBytes,
                                               options.payloadAllocator));
  v4c::check(!tiers.empty(), "the KV cache has no tier: give a host budget or a cache directory");
  return std::make_unique<TieredPageCache>(std::move(tiers), pageTokens);
}

void TieredPageCache::placeAt(size_t level, PagePtr page) {
  std::vector<PagePtr> evicted = tiers_[level]->put(std::move(page));
  for (PagePtr &victim : evicted) {
    if (level + 1 < tiers_.size()) {
      ++counters_.demotions;
      placeAt(level + 1, std::move(victim));
    } else {
      ++counters_.dropped;
    }
  }
}

PagePtr TieredPageCache::lookupLocked(const PageKey &key) {
  ++counters_.lookups;
  for (size_t level = 0; level < tiers_.size(); ++level) {
    PagePtr page = tiers_[level]->get(key);
    if (!page)
      continue;
    ++counters_.hits;
    if (level > 0) {
      ++counters_.promotions;
      if (!tiers_[level]->keepsPromotedPages())
        tiers_[level]->erase(key);
      placeAt(0, page);
    }
    return page;
  }
  ++counters_.misses;
  return nullptr;
}

PagePtr TieredPageCache::lookup(const PageKey &key) {
  std::lock_guard<std::mutex> lock(mutex_);
  return lookupLocked(key);
}

void TieredPageCache::insert(PagePtr page) {
  v4c::check(page != nullptr, "TieredPageCache::insert: null page");
  std::lock_guard<std::mutex> lock(mutex_);
  placeAt(0, std::move(page));
}

bool TieredPageCache::contains(const PageKey &key) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto &tier : tiers_)
    if (tier->contains(key))
      return true;
  return false;
}

size_t TieredPageCache::longestPrefix(const std::vector<PageKey> &keys) const {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t present = 0;
  for (const PageKey &key : keys) {
    bool found = false;
    for (const auto &tier : tiers_)
      if ((found = tier->contains(key)))
        break;
    if (!found)
      break;
    ++present;
  }
  return present;
}

std::vector<PagePtr> TieredPageCache::fetchPrefix(const std::vector<PageKey> &keys) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<PagePtr> pages;
  for (const PageKey &key : keys) {
    PagePtr page = lookupLocked(key);
    if (!page)
      break;
    pages.push_back(std::move(page));
  }
  return pages;
}

uint64_t TieredPageCache::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  uint64_t removed = 0;
  for (const auto &tier : tiers_)
    removed += tier->clear();
  return removed;
}

CacheStats TieredPageCache::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  CacheStats stats = counters_;
  for (const auto &tier : tiers_)
    stats.tiers.push_back(tier->stats());
  return stats;
}

PageTier *TieredPageCache::findTier(const std::string &name) {
  for (const auto &tier : tiers_)
    if (tier->name() == name)
      return tier.get();
  return nullptr;
}

} // namespace v4rt::kvcache
