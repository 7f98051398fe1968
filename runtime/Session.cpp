#include "runtime/Session.h"

#include <algorithm>
#include <string>

#include "common/Error.h"
#include "runtime/PagePayload.h"
#include "runtime/PrefixCache.h"

namespace v4rt {

Session::Session(const Model &model, PrefixCache *prefixCache)
    : model_(model), prefixCache_(prefixCache) {
  for (const CacheSlot &slot : model.program().caches) {
    CacheBuffer buffer;
    buffer.width = slot.width;
    // Entries grow with the context; fixed-size slots are allocated now.
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
  int64_t reused = 0;
  if (prefixCache_ && rows == PrefillLogits::LastRow && position_ == 0)
    reused = restorePrefix(ids, count);
  const BoundBucket &bucket = model_.prefillBucket();
  const int64_t chunk = bucket.bucket->tokens;
  const int64_t P = prefixCache_ ? prefixCache_->pageTokens() : 0;
  std::vector<float> lastChunk;
  for (int64_t done = reused; done < count;) {
    int64_t n = std::min(chunk, count - done);
    // End chunks on page boundaries so each page's snapshot can be taken.
    if (P > 0)
      n = std::min(n, P - position_ % P);
    float *out = nullptr;
    if (logits && rows == PrefillLogits::AllRows)
      out = logits + done * V;
    else if (logits && done + n == count) {
      lastChunk.resize(static_cast<size_t>(n * V));
      out = lastChunk.data();
    }
    run(bucket, ids + done, n, out);
    notePageProgress(ids + done, n);
    done += n;
  }
  if (logits && rows == PrefillLogits::LastRow)
    std::copy(lastChunk.end() - V, lastChunk.end(), logits);
  return reused;
}

int64_t Session::restorePrefix(const int32_t *ids, int64_t count) {
  const int64_t P = prefixCache_->pageTokens();
  // Keep at least the last token to run, so its logits exist.
  const int64_t reusable = (count - 1) / P;
  if (reusable == 0)
    return 0;
  const std::vector<kvcache::PageKey> keys = prefixCache_->prefixKeys(ids, reusable);
  const std::vector<kvcache::PagePtr> pages = prefixCache_->fetch(keys);
  if (pages.empty())
    return 0;
  const std::vector<CacheSlot> &slots = model_.program().caches;
  for (const kvcache::PagePtr &page : pages)
    appendPageEntries(page->payload, slots, P, caches_);
  restorePageSnapshot(pages.back()->payload, slots, P, caches_);
  const int64_t restored = static_cast<int64_t>(pages.size()) * P;
  position_ = restored;
  lastKey_.assign(1, keys[pages.size() - 1]);
  pageIds_.clear();
  prefixCache_->recordTokensSaved(restored);
  return restored;
}

void Session::notePageProgress(const int32_t *ids, int64_t count) {
  if (!prefixCache_)
    return;
  const int64_t P = prefixCache_->pageTokens();
  pageIds_.insert(pageIds_.end(), ids, ids + count);
  if (position_ % P != 0 || static_cast<int64_t>(pageIds_.size()) != P)
    return; // callers feed at most up to the next boundary
  const kvcache::PageKey key =
      prefixCache_->pageKey(lastKey_.empty() ? nullptr : &lastKey_[0], pageIds_.data());
  lastKey_.assign(1, key);
  pageIds_.clear();
  if (prefixCache_->contains(key))
    return;
  kvcache::Page page;
  page.key = key;
  page.pageIndex = position_ / P - 1;
  page.tokens = P;
  page.payload = encodePagePayload(model_.program().caches, caches_, page.pageIndex, P,
                                   prefixCache_->strategy());
  prefixCache_->store(std::move(page));
}

void Session::decode(int32_t id, float *logits) {
  checkIds(&id, 1);
  run(model_.decodeBucket(), &id, 1, logits);
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
  }
  (void)bucket;
  position_ += count;
}

} // namespace v4rt
