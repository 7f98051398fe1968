#include "runtime/PrefixCache.h"

#include <algorithm>

#include "common/Error.h"
#include "runtime/kvcache/DiskTier.h"
#include "runtime/kvcache/MemoryTier.h"
#include "runtime/kvcache/PageKey.h"

namespace v4rt {

SwaCacheStrategy parseSwaCacheStrategy(const std::string &text) {
  if (text == "full")
    return SwaCacheStrategy::Full;
  if (text == "zero")
    return SwaCacheStrategy::Zero;
  const std::string prefix = "periodic:";
  if (text.rfind(prefix, 0) == 0) {
    const std::string digits = text.substr(prefix.size());
    int64_t period = 0;
    const bool numeric = !digits.empty() && digits.size() <= 12 &&
                         digits.find_first_not_of("0123456789") == std::string::npos;
    if (numeric)
      period = std::stoll(digits);
    if (period <= 0)
      throw v4c::Error("--swa-cache " + text +
                       ": the period must be a positive number of tokens (e.g. periodic:1024)");
    return SwaCacheStrategy::periodic(period);
  }
  throw v4c::Error("--swa-cache " + text + ": unknown strategy (want full, periodic:P or zero)");
}

int64_t windowRebuildStart(const std::vector<kvcache::PagePtr> &pages, const std::vector<CacheSlot> &slots,
                           int64_t pageTokens) {
  const int64_t P = pageTokens, boundary = static_cast<int64_t>(pages.size()) * P;
  int64_t lastSnapshot = 0; // the empty state at 0 is exact too
  for (size_t i = pages.size(); i-- > 0;)
    if (pageHasSnapshot(pages[i]->payload)) {
      lastSnapshot = static_cast<int64_t>(i + 1) * P;
      break;
    }
  const int64_t fromEmptyWindow = std::max<int64_t>(0, boundary - windowRebuildTokens(slots)) / P * P;
  return std::max(lastSnapshot, fromEmptyWindow);
}

PrefixCache::PrefixCache(const Model &model, const PrefixCacheOptions &options)
    : PrefixCache(model.identity(), model.program().caches, options) {}

PrefixCache::PrefixCache(std::string artifactIdentity, std::vector<CacheSlot> slots,
                         const PrefixCacheOptions &options, std::unique_ptr<kvcache::PageTier> deviceTier)
    : options_(options), identity_(std::move(artifactIdentity)), slots_(std::move(slots)),
      pageTokens_(pageTokensFor(slots_)) {
  // Snapshots sit on page boundaries: a period is a whole number of pages.
  const SwaCacheStrategy &strategy = options.strategy;
  if (strategy.kind == SwaCacheKind::Periodic &&
      (strategy.period <= 0 || strategy.period % pageTokens_ != 0)) {
    const int64_t suggested = pageTokens_ * std::max<int64_t>(1, strategy.period / pageTokens_);
    throw v4c::Error("--swa-cache " + strategy.name() +
                     ": the period must be a multiple of the page size, " +
                     std::to_string(pageTokens_) + " tokens for this model (e.g. periodic:" +
                     std::to_string(suggested) + ")");
  }
  kvcache::TieredCacheOptions tiers;
  tiers.hostBytes = options.hostBytes;
  tiers.diskDirectory = options.directory;
  tiers.diskBytes = options.diskBytes;
  if (deviceTier) {
    std::vector<std::unique_ptr<kvcache::PageTier>> stack;
    stack.push_back(std::move(deviceTier));
    if (tiers.hostBytes > 0)
      stack.push_back(std::make_unique<kvcache::MemoryTier>("host", tiers.hostBytes, options.payloadAllocator));
    if (!tiers.diskDirectory.empty())
      stack.push_back(std::make_unique<kvcache::DiskTier>(tiers.diskDirectory, identity_, tiers.diskBytes,
                                                               options.payloadAllocator));
    cache_ = std::make_unique<kvcache::TieredPageCache>(std::move(stack), pageTokens_);
  } else {
    tiers.payloadAllocator = options.payloadAllocator;
    cache_ = kvcache::TieredPageCache::create(tiers, identity_, pageTokens_);
  }
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

PrefixCache::PromptPages PrefixCache::fetchPrompt(const int32_t *ids, int64_t count) {
  PromptPages cached;
  const int64_t reusable = (count - 1) / pageTokens_;
  if (reusable == 0)
    return cached;
  cached.keys = prefixKeys(ids, reusable);
  cached.pages = fetch(cached.keys);
  return cached;
}

std::vector<kvcache::PagePtr> PrefixCache::fetch(const std::vector<kvcache::PageKey> &keys) {
  std::vector<kvcache::PagePtr> pages;
  kvcache::PageTier *disk = cache_->findTier("disk");
  try {
    const uint64_t corruptBefore = disk ? disk->stats().corrupt : 0;
    pages = cache_->fetchPrefix(keys);
    if (disk && disk->stats().corrupt > corruptBefore)
      dropDamagedPagesAfter(*disk, keys, pages.size() + 1);
  } catch (const std::exception &e) {
    warn(std::string("KV cache lookup failed, prefilling instead: ") + e.what());
    pages.clear();
  }
  uint64_t rejected = 0;
  for (size_t i = 0; i < pages.size(); ++i) {
    const int64_t index = static_cast<int64_t>(i);
    if (!checkPagePayload(pages[i]->payload, slots_, index, pageTokens_).empty() ||
        pages[i]->tokens != pageTokens_) {
      rejected = 1;
      pages.resize(i);
      // A page of another schema or payload version would shadow the one the
      // session is about to compute (stores skip held keys): drop it.
      try {
        for (size_t t = 0; t < cache_->tierCount(); ++t)
          cache_->tier(t).erase(keys[i]);
      } catch (const std::exception &e) {
        warn(std::string("KV page of another schema not removed: ") + e.what());
      }
      break;
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  counters_.pagesHit += pages.size();
  counters_.pagesMissed += keys.size() - pages.size();
  counters_.pagesRejected += rejected;
  return pages;
}

void PrefixCache::dropDamagedPagesAfter(kvcache::PageTier &disk, const std::vector<kvcache::PageKey> &keys,
                                        size_t first) {
  // Reading a page validates it, and the disk tier deletes a damaged file
  // (counted corrupt); good pages are only read.
  for (size_t i = first; i < keys.size(); ++i)
    disk.get(keys[i]);
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
    std::lock_guard<std::mutex> lock(mutex_);
    ++counters_.storeFailures;
    return;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  ++counters_.pagesStored;
  counters_.pageBytesStored += shared->payload.size();
}

void PrefixCache::recordRestore(int64_t tokensRestored, int64_t tokensRecomputed) {
  std::lock_guard<std::mutex> lock(mutex_);
  counters_.prefillTokensSaved += static_cast<uint64_t>(tokensRestored - tokensRecomputed);
  counters_.windowTokensRecomputed += static_cast<uint64_t>(tokensRecomputed);
}

void PrefixCache::recordStoreFailure(const std::string &why) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++counters_.storeFailures;
  lastWarning_ = why;
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
