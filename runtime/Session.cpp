#include "runtime/Session.h"

#include <algorithm>
#include <string>

#include "common/Error.h"
#include "runtime/PagePayload.h"
#include "runtime/PrefixCache.h"
#include "runtime/RestorePlan.h"

namespace v4rt {

namespace {
// Boundary snapshots a session keeps (the most recent ones): each holds every
// window and compressor slot, so this bounds a session's extra memory.
constexpr size_t kKeptSnapshots = 8;
} // namespace

Session::Session(const Model &model, PrefixCache *prefixCache)
    : model_(model), prefixCache_(prefixCache) {
  pageTokens_ = prefixCache ? prefixCache->pageTokens() : pageTokensFor(model.program().caches);
  for (const CacheSlot &slot : model.program().caches) {
    CacheBuffer buffer;
    buffer.width = slot.width;
    buffer.format = cacheRowFormat(slot); // kernels round rows stored into bf16/fp8 slots
    // Entries grow with the context in page-sized chunks that forks share;
    // fixed-size slots are allocated now.
    if (slot.kind == CacheKind::Entries)
      buffer.useChunks(pageTokens_ / slot.rate);
    buffer.resizeRows(slot.kind == CacheKind::Entries ? 0 : slot.rows);
    caches_.push_back(std::move(buffer));
  }
  arenaStorage_.resize(model.maxArenaBytes() + 64);
  const uintptr_t base = reinterpret_cast<uintptr_t>(arenaStorage_.data());
  arena_ = arenaStorage_.data() + ((64 - base % 64) % 64);
}

void Session::checkIds(const int32_t *ids, int64_t count) const {
  for (int64_t i = 0; i < count; ++i)
    if (ids[i] < 0 || ids[i] >= model_.vocabSize())
      throw v4c::Error("token id " + std::to_string(ids[i]) + " is out of range (vocab size " +
                       std::to_string(model_.vocabSize()) + ")");
}

int64_t Session::prefill(const int32_t *ids, int64_t count, float *logits, PrefillLogits rows) {
  checkIds(ids, count);
  if (count <= 0)
    return 0;
  const int64_t V = model_.vocabSize();
  int64_t restored = 0, saved = 0;
  // Allocated before any state changes: running out of memory here leaves
  // the session as it was.
  std::vector<float> lastChunk;
  if (logits && rows == PrefillLogits::LastRow)
    lastChunk.reserve(static_cast<size_t>(std::min(model_.prefillBucket().bucket->tokens, count) * V));
  if (prefixCache_ && rows == PrefillLogits::LastRow && position_ == 0) {
    const int64_t computedBefore = prefillTokensComputed_;
    try {
      restored = restorePrefix(ids, count);
    } catch (const std::exception &e) {
      // Back to the fresh state this call found; the prompt is computed.
      restoreBoundary(*this, 0, nullptr);
      restored = 0;
      prefillTokensComputed_ = computedBefore;
      recordCacheFailure(std::string("KV prefix not restored, prefilling instead: ") + e.what());
    }
    saved = restored - (prefillTokensComputed_ - computedBefore);
  }
  const BoundBucket &bucket = model_.prefillBucket();
  const int64_t chunk = bucket.bucket->tokens;
  const int64_t P = pageTokens_;
  for (int64_t done = restored; done < count;) {
    int64_t n = std::min(chunk, count - done);
    // End chunks on page boundaries so each page's snapshot can be taken.
    n = std::min(n, P - position_ % P);
    float *out = nullptr;
    if (logits && rows == PrefillLogits::AllRows)
      out = logits + done * V;
    else if (logits && done + n == count) {
      lastChunk.resize(static_cast<size_t>(n * V));
      out = lastChunk.data();
    }
    run(bucket, ids + done, n, out);
    prefillTokensComputed_ += n;
    notePageProgress(ids + done, n);
    done += n;
  }
  if (logits && rows == PrefillLogits::LastRow)
    std::copy(lastChunk.end() - V, lastChunk.end(), logits);
  return saved;
}

int64_t Session::restorePrefix(const int32_t *ids, int64_t count) {
  const PrefixCache::PromptPages cached = prefixCache_->fetchPrompt(ids, count);
  if (cached.pages.empty())
    return 0;
  restorePages(ids, cached.keys, cached.pages);
  takeSnapshot();
  return position_;
}

int64_t Session::rebuildStart(const std::vector<kvcache::PagePtr> &pages) const {
  return windowRebuildStart(pages, model_.program().caches, pageTokens_);
}

void Session::restorePages(const int32_t *ids, const std::vector<kvcache::PageKey> &keys,
                           const std::vector<kvcache::PagePtr> &pages) {
  const std::vector<CacheSlot> &slots = model_.program().caches;
  const int64_t P = pageTokens_, boundary = static_cast<int64_t>(pages.size()) * P;
  const int64_t start = rebuildStart(pages);
  for (size_t s = 0; s < slots.size(); ++s)
    if (slots[s].kind == CacheKind::Entries)
      caches_[s].resizeRows(0);
  for (const kvcache::PagePtr &page : pages)
    appendPageEntries(page->payload, slots, P, caches_);
  // The fixed-size state at `start`: a page's snapshot, or the empty state
  // (exact at 0; elsewhere wrong, but only until the rebuild has run over
  // windowRebuildTokens tokens).
  if (start > 0 && pageHasSnapshot(pages[static_cast<size_t>(start / P - 1)]->payload)) {
    restorePageSnapshot(pages[static_cast<size_t>(start / P - 1)]->payload, slots, P, caches_);
  } else {
    for (size_t s = 0; s < slots.size(); ++s)
      if (slots[s].kind != CacheKind::Entries)
        std::fill(caches_[s].data.begin(), caches_[s].data.end(), 0.0f);
  }
  // Run [start, boundary) again for the window state only: the restored
  // entries are what attention reads and stay as they are.
  struct FreezeEntries {
    std::vector<CacheBuffer> &caches;
    ~FreezeEntries() {
      for (CacheBuffer &cache : caches)
        cache.frozenRows = 0;
    }
  } frozen{caches_};
  for (size_t s = 0; s < slots.size(); ++s)
    if (slots[s].kind == CacheKind::Entries)
      caches_[s].frozenRows = caches_[s].rows;
  position_ = start;
  const BoundBucket &bucket = model_.prefillBucket();
  while (position_ < boundary) {
    const int64_t n = std::min({bucket.bucket->tokens, boundary - position_, P - position_ % P});
    run(bucket, ids + position_, n, nullptr);
  }
  prefillTokensComputed_ += boundary - start;
  tokens_.assign(ids, ids + boundary);
  lastKey_.assign(1, keys[pages.size() - 1]);
  pageIds_.clear();
  prefixCache_->recordRestore(boundary, boundary - start);
}

void Session::notePageProgress(const int32_t *ids, int64_t count) {
  tokens_.insert(tokens_.end(), ids, ids + count);
  const int64_t P = pageTokens_;
  if (position_ % P == 0)
    takeSnapshot(); // callers feed at most up to the next boundary
  if (!prefixCache_)
    return;
  pageIds_.insert(pageIds_.end(), ids, ids + count);
  if (position_ % P != 0 || static_cast<int64_t>(pageIds_.size()) != P)
    return; // callers feed at most up to the next boundary
  const kvcache::PageKey key =
      prefixCache_->pageKey(lastKey_.empty() ? nullptr : &lastKey_[0], pageIds_.data());
  lastKey_.assign(1, key);
  pageIds_.clear();
  storePage(key);
}

void Session::storePage(const kvcache::PageKey &key) {
  try {
    if (prefixCache_->contains(key))
      return;
    if (cacheFaultHook_)
      cacheFaultHook_("page");
    const int64_t P = pageTokens_;
    kvcache::Page page;
    page.key = key;
    page.pageIndex = position_ / P - 1;
    page.tokens = P;
    page.payload = encodePagePayload(model_.program().caches, caches_, page.pageIndex, P,
                                     prefixCache_->strategy());
    prefixCache_->store(std::move(page)); // counts its own I/O failures
  } catch (const std::exception &e) {
    recordCacheFailure(std::string("KV page not stored: ") + e.what());
  }
}

void Session::takeSnapshot() {
  try {
    if (cacheFaultHook_)
      cacheFaultHook_("snapshot");
    const std::vector<CacheSlot> &slots = model_.program().caches;
    auto snapshot = std::make_shared<StateSnapshot>(slots.size());
    for (size_t s = 0; s < slots.size(); ++s)
      if (slots[s].kind != CacheKind::Entries)
        (*snapshot)[s] = caches_[s].data;
    snapshots_[position_] = std::move(snapshot);
    while (snapshots_.size() > kKeptSnapshots)
      snapshots_.erase(snapshots_.begin());
  } catch (const std::exception &e) {
    recordCacheFailure(std::string("state snapshot not kept: ") + e.what());
  }
}

void Session::recordCacheFailure(const std::string &why) {
  if (prefixCache_)
    prefixCache_->recordStoreFailure(why);
}

std::unique_ptr<Session> Session::fork(int64_t position) const {
  checkRewindPosition(position, position_, "fork");
  auto child = std::make_unique<Session>(model_, prefixCache_);
  if (position < position_) {
    child->rewindFrom(*this, position);
    return child;
  }
  // Branching at the current position: the whole state is this one's (the
  // Entries chunks shared, the fixed-size slots copied).
  child->caches_ = caches_;
  child->position_ = position_;
  child->tokens_ = tokens_;
  child->snapshots_ = snapshots_;
  child->pageIds_ = pageIds_;
  child->lastKey_ = lastKey_;
  return child;
}

void Session::truncate(int64_t position) {
  checkRewindPosition(position, position_, "truncate");
  if (position != position_)
    rewindFrom(*this, position);
}

void Session::rewindFrom(const Session &source, int64_t position) {
  // Copied first: `source` may be this session, whose ids are about to shrink.
  const std::vector<int32_t> ids(source.tokens_.begin(), source.tokens_.begin() + position);
  const auto plan =
      planRestore(source.snapshots_, ids.data(), position, prefixCache_, model_.program().caches, pageTokens_);
  if (plan.usesPages()) {
    restorePages(ids.data(), plan.keys, plan.pages);
    if (&source != this)
      snapshots_ = source.snapshots_;
    snapshots_.erase(snapshots_.upper_bound(position_), snapshots_.end());
    takeSnapshot();
  } else {
    restoreBoundary(source, plan.boundary, plan.snapshot.get());
  }
  if (position > position_)
    prefill(ids.data() + position_, position - position_, nullptr, PrefillLogits::AllRows);
}

void Session::restoreBoundary(const Session &source, int64_t boundary,
                              const StateSnapshot *snapshot) {
  const std::vector<CacheSlot> &slots = model_.program().caches;
  for (size_t s = 0; s < slots.size(); ++s) {
    CacheBuffer &cache = caches_[s];
    if (slots[s].kind == CacheKind::Entries) {
      // Entries are append-only: the rows below the boundary are its rows,
      // shared chunk by chunk with the source (copied when written).
      if (&source != this)
        cache = source.caches_[s];
      cache.resizeRows(boundary / slots[s].rate);
    } else if (snapshot) {
      cache.data = (*snapshot)[s];
    } else {
      std::fill(cache.data.begin(), cache.data.end(), 0.0f); // a fresh session's state
    }
  }
  position_ = boundary;
  tokens_.assign(source.tokens_.begin(), source.tokens_.begin() + boundary);
  if (&source != this)
    snapshots_ = source.snapshots_;
  snapshots_.erase(snapshots_.upper_bound(boundary), snapshots_.end());
  pageIds_.clear();
  lastKey_.clear();
  if (prefixCache_ && boundary > 0)
    lastKey_.assign(1, prefixCache_->prefixKeys(tokens_.data(), boundary / pageTokens_).back());
}

void Session::decode(int32_t id, float *logits) {
  checkIds(&id, 1);
  run(model_.decodeBucket(), &id, 1, logits);
  notePageProgress(&id, 1);
}

void Session::completeBatchedDecode(int32_t id) {
  position_ += 1; // run() advances it for a single session's plan
  notePageProgress(&id, 1);
}

void Session::run(const BoundBucket &bound, const int32_t *ids, int64_t count, float *logits) {
  const Bucket &bucket = *bound.bucket;
  positions_.resize(count);
  for (int64_t i = 0; i < count; ++i)
    positions_[i] = static_cast<int32_t>(position_ + i);
  // Logits of every row are produced by the plan; callers that want none
  // still need somewhere to put them.
  std::vector<float> scratch;
  if (!logits) {
    scratch.resize(static_cast<size_t>(count * model_.vocabSize()));
    logits = scratch.data();
  }
  const Program &program = model_.program();
  auto resolve = [&](const ArgRef &arg) -> void * {
    switch (arg.kind) {
    case ArgKind::Arena:
      return arena_ + arg.offset;
    case ArgKind::Weight:
      return const_cast<uint8_t *>(program.weights[arg.index].data);
    case ArgKind::Cache:
      return &caches_[arg.index];
    case ArgKind::Input:
      return program.inputs[arg.index].name == "ids" ? const_cast<int32_t *>(ids)
                                                     : positions_.data();
    case ArgKind::Output:
      return logits;
    }
    return nullptr;
  };
  for (const BoundStep &step : bound.steps) {
    KernelArgs args(*step.step, step.floatAttrs);
    args.tokens = count;
    args.pool = &model_.pool();
    for (const ArgRef &arg : step.step->ins)
      args.ins.push_back(resolve(arg));
    for (const ArgRef &arg : step.step->outs)
      args.outs.push_back(resolve(arg));
    step.fn(args);
    if (stepHook_)
      stepHook_(bound, static_cast<size_t>(&step - bound.steps.data()), args);
  }
  (void)bucket;
  position_ += count;
}

} // namespace v4rt
