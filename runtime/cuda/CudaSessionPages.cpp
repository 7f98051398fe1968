// CudaSession's prefix reuse: pages exported from and imported into the
// device cache slots in runtime/PagePayload.h's format. A device slot's rows
// are the slot's stored format (docs/cuda-compile.md), byte for byte the
// payload's sections, so a page is a few contiguous copies per slot.
#include <algorithm>
#include <cstring>
#include <limits>

#include "common/Error.h"
#include "runtime/PagePayload.h"
#include "runtime/PrefixCache.h"
#include "runtime/cuda/CudaSession.h"
#include "runtime/cuda/DeviceTier.h"

namespace v4rt::cuda {
namespace {

bool isEntries(const CacheSlot &slot) { return slot.kind == CacheKind::Entries; }

// Device offset of an Entries slot's first row of page `pageIndex`.
uint64_t pageRowOffset(const CacheSlot &slot, int64_t pageIndex, int64_t pageTokens, uint64_t rowBytes) {
  return static_cast<uint64_t>(pageIndex * (pageTokens / slot.rate)) * rowBytes;
}

} // namespace

int64_t CudaSession::tokensToNextSnapshot() const {
  if (!prefixCache_)
    return std::numeric_limits<int64_t>::max();
  const SwaCacheStrategy strategy = prefixCache_->strategy();
  if (strategy.kind == SwaCacheKind::Zero)
    return std::numeric_limits<int64_t>::max();
  const int64_t every = strategy.kind == SwaCacheKind::Full ? pageTokens_ : strategy.period;
  return every - position_ % every;
}

int64_t CudaSession::chunkToPageBoundary(int64_t count) const {
  const int64_t end = position_ + count, lastBoundary = end - end % pageTokens_;
  return lastBoundary > position_ ? lastBoundary - position_ : count;
}

void CudaSession::notePageProgress(const int32_t *ids, int64_t count) {
  tokens_.insert(tokens_.end(), ids, ids + count);
  // A run that ends on a page boundary leaves the fixed-size state there for
  // fork / truncate (prefill chunks end on the last boundary they cross).
  if (position_ % pageTokens_ == 0)
    takeSnapshot();
  if (!prefixCache_)
    return;
  // Every page these ids completed (restores end on page boundaries, so
  // tokens_ holds each page's ids whole).
  const int64_t P = pageTokens_;
  for (int64_t page = (position_ - count) / P; (page + 1) * P <= position_; ++page)
    exportPage(page);
}

void CudaSession::exportPage(int64_t pageIndex) {
  const int64_t P = pageTokens_;
  const kvcache::PageKey key = prefixCache_->pageKey(lastKey_.empty() ? nullptr : &lastKey_[0], tokens_.data() + pageIndex * P);
  lastKey_.assign(1, key); // the chain goes on whether or not this page is stored
  // Best-effort: the session already advanced past this page, so a failure
  // here (payload memory, a refused copy, a tier) only leaves it uncached.
  try {
    if (!prefixCache_->contains(key))
      storePage(pageIndex, key);
  } catch (const std::exception &e) {
    skipPageFailure(e);
  }
}

void CudaSession::skipCacheFailure(const std::exception &error) {
  // Queued copies may still use what the failed step allocated; and a lost
  // context is the session's failure, not the cache's.
  checkCuda(model_.api(), model_.api().cuStreamSynchronize(model_.stream()), "cuStreamSynchronize",
            std::string("after a failed KV cache step (") + error.what() + ")");
  ++cacheFailures_;
  lastCacheFailure_ = error.what();
}

void CudaSession::skipPageFailure(const std::exception &error) {
  skipCacheFailure(error);
  prefixCache_->recordStoreFailure(error.what()); // the cache's counters show it too
}

void CudaSession::resetToEmpty() {
  for (size_t s = 0; s < slots_->size(); ++s)
    slots_->zeroRows(s, 0, slots_->rows(s)); // a fresh session's zeros
  position_ = 0;
  slots_->setLiveTokens(0);
  frozenTokens_ = 0;
  tokens_.clear();
  lastKey_.clear();
  snapshots_.clear();
}

void CudaSession::storePage(int64_t pageIndex, const kvcache::PageKey &key) {
  const int64_t P = pageTokens_;
  const std::vector<CacheSlot> &slots = model_.program().caches;
  const SwaCacheStrategy strategy = prefixCache_->strategy();
  const int64_t pageEnd = (pageIndex + 1) * P;
  const bool withSnapshot = strategy.keepsSnapshotAt(pageEnd);
  // Chunks stop at every snapshot boundary, so the fixed-size slots hold
  // the state at this page's end exactly when it needs one.
  v4c::check(!withSnapshot || pageEnd == position_,
             "internal: page " + std::to_string(pageIndex) + " needs a window snapshot at " +
                 std::to_string(pageEnd) + " but the session is at " + std::to_string(position_));
  const DriverApi &api = model_.api();
  // The payload is built in place: each slot's rows copied from the device
  // straight to their offset (pinned memory with the CUDA prefix cache's
  // allocator: a direct DMA), then the header written around them.
  kvcache::Page page;
  page.key = key;
  page.pageIndex = pageIndex;
  page.tokens = P;
  page.payload = kvcache::PageBytes::allocate(prefixCache_->payloadAllocator(),
                                              pagePayloadSize(slots, P, withSnapshot));
  const DrainOnUnwind drain(api, model_.stream()); // before `page` goes, if a copy below fails
  for (size_t s = 0; s < slots.size(); ++s) {
    if (!isEntries(slots[s]) && !withSnapshot)
      continue;
    const uint64_t sectionBytes = pageSectionBytes(slots[s], P);
    const CUdeviceptr source =
        slots_->address(s) + (isEntries(slots[s]) ? pageRowOffset(slots[s], pageIndex, P, slots_->rowBytes(s)) : 0);
    if (sectionBytes)
      checkCuda(api,
                api.cuMemcpyDtoHAsync(page.payload.data() + pageSectionOffset(slots, s, P, withSnapshot), source,
                                      sectionBytes, model_.stream()),
                "cuMemcpyDtoHAsync", "exporting page " + std::to_string(pageIndex) + " of cache slot " + slots[s].name);
  }
  writePagePayloadHeader(slots, pageIndex, P, strategy, page.payload.data());
  checkCuda(api, api.cuStreamSynchronize(model_.stream()), "cuStreamSynchronize",
            "exporting page " + std::to_string(pageIndex) + " (set V4_CUDA_SYNC=1 to name the failing kernel)");
  prefixCache_->store(std::move(page));
}

int64_t CudaSession::restorePrefix(const int32_t *ids, int64_t count) {
  const PrefixCache::PromptPages cached = prefixCache_->fetchPrompt(ids, count);
  if (cached.pages.empty())
    return 0;
  const int64_t computedBefore = prefillTokensComputed_;
  try {
    restorePages(ids, cached.keys, cached.pages);
  } catch (const std::exception &e) {
    // Best-effort: the prompt is prefilled whole instead, from a fresh state.
    skipPageFailure(e);
    resetToEmpty();
    prefillTokensComputed_ = computedBefore;
    return 0;
  }
  takeSnapshot();
  return position_;
}

void CudaSession::restorePages(const int32_t *ids, const std::vector<kvcache::PageKey> &keys,
                               const std::vector<kvcache::PagePtr> &pages) {
  const std::vector<CacheSlot> &slots = model_.program().caches;
  const DriverApi &api = model_.api();
  const CUstream stream = model_.stream();
  const int64_t P = pageTokens_, boundary = static_cast<int64_t>(pages.size()) * P;
  const int64_t start = windowRebuildStart(pages, slots, P);
  ensureResident();
  // The pages' payloads are the caller's, released as an error unwinds.
  const DrainOnUnwind drain(api, stream);
  auto *deviceTier = dynamic_cast<DeviceTier *>(prefixCache_->findTier("device"));
  // Entries rows of every page, where they lie in the slots.
  for (size_t i = 0; i < pages.size(); ++i) {
    const kvcache::PageBytes &payload = pages[i]->payload;
    const CUdeviceptr onDevice = deviceTier ? deviceTier->devicePayload(keys[i]) : 0;
    for (size_t s = 0; s < slots.size(); ++s) {
      if (!isEntries(slots[s]))
        continue;
      const uint64_t bytes = pageSectionBytes(slots[s], P);
      const uint8_t *section = pageSection(payload, slots, s, P);
      const CUdeviceptr target =
          slots_->address(s) + pageRowOffset(slots[s], static_cast<int64_t>(i), P, slots_->rowBytes(s));
      if (bytes == 0)
        continue;
      if (onDevice)
        checkCuda(api, api.cuMemcpyDtoDAsync(target, onDevice + (section - payload.data()), bytes, stream),
                  "cuMemcpyDtoDAsync", "restoring page " + std::to_string(i) + " of cache slot " + slots[s].name);
      else // pinned host-tier pages: a direct DMA; heap ones (disk) are staged by the driver.
           // Either way the pages outlive the sync below.
        checkCuda(api, api.cuMemcpyHtoDAsync(target, section, bytes, stream), "cuMemcpyHtoDAsync",
                  "restoring page " + std::to_string(i) + " of cache slot " + slots[s].name);
    }
  }
  // The fixed-size state at `start`: a page's snapshot, or the empty state
  // (exact at 0; elsewhere wrong only until the rebuild has run over
  // windowRebuildTokens tokens).
  const kvcache::PagePtr snapshotPage =
      start > 0 && pageHasSnapshot(pages[static_cast<size_t>(start / P - 1)]->payload)
          ? pages[static_cast<size_t>(start / P - 1)]
          : nullptr;
  for (size_t s = 0; s < slots.size(); ++s) {
    if (isEntries(slots[s]))
      continue;
    const uint64_t bytes = pageSectionBytes(slots[s], P);
    if (bytes == 0)
      continue;
    if (snapshotPage)
      checkCuda(api,
                api.cuMemcpyHtoDAsync(slots_->address(s), pageSection(snapshotPage->payload, slots, s, P), bytes,
                                      stream),
                "cuMemcpyHtoDAsync", "restoring the window snapshot of cache slot " + slots[s].name);
    else
      checkCuda(api, api.cuMemsetD8Async(slots_->address(s), 0, bytes, stream), "cuMemsetD8Async",
                "clearing cache slot " + slots[s].name);
  }
  // Run [start, boundary) again for the window state only: the restored
  // entries are what attention reads, and the compressor keeps them (dyn[1]).
  struct Unfreeze {
    int64_t &frozen;
    ~Unfreeze() { frozen = 0; }
  } unfreeze{frozenTokens_};
  frozenTokens_ = boundary;
  position_ = start;
  slots_->setLiveTokens(boundary);
  const DeviceBucket &bucket = model_.prefillBucket();
  while (position_ < boundary) {
    const int64_t n = std::min(bucket.bucket->tokens, boundary - position_);
    stageInputs(bucket, ids + position_, n);
    launchSteps(bucket, n);
    position_ += n;
  }
  checkCuda(api, api.cuStreamSynchronize(stream), "cuStreamSynchronize",
            "restoring " + std::to_string(pages.size()) + " cached pages");
  prefillTokensComputed_ += boundary - start;
  tokens_.assign(ids, ids + boundary);
  lastKey_.assign(1, keys[pages.size() - 1]);
  prefixCache_->recordRestore(boundary, boundary - start);
}

} // namespace v4rt::cuda
