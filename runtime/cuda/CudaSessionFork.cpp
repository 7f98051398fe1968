// CudaSession's fork and truncate: the GPU counterpart of runtime/Session.cpp's.
//
// Both restore the nearest state at or below the target position and prefill
// the tokens between it and the target again:
//   - a page boundary the session kept a snapshot of: the Entries rows below
//     it (append-only, so the boundary's rows are the source's rows) plus the
//     snapshot's fixed-size slots (window rings, compressor states);
//   - a later page boundary the prefix cache holds, when that leaves fewer
//     tokens to run (restorePages, as a fresh session's prompt);
//   - the empty state at 0.
// On the CPU, forks share the Entries rows copy-on-write in page-sized
// chunks. Here a session's slots are one contiguous device buffer each
// (KvSlots, moved whole by preemption), so the fork gets its own and the rows
// are copied device to device on the model's stream: the same bytes, no
// recomputation, one copy per slot.
//
// Snapshots live in pinned host memory, not device memory: they survive
// preemption, need no share of the DeviceKvPool budget and are shared by a
// session and its forks without copies (immutable once taken).
#include <algorithm>
#include <string>

#include "common/Error.h"
#include "runtime/PagePayload.h"
#include "runtime/PrefixCache.h"
#include "runtime/RestorePlan.h"
#include "runtime/cuda/CudaSession.h"

namespace v4rt::cuda {
namespace {

bool isEntries(const CacheSlot &slot) { return slot.kind == CacheKind::Entries; }

// Bytes of slot `s` as allocated: what a snapshot holds of a fixed-size slot.
uint64_t slotBytes(const KvSlots &slots, size_t s) { return static_cast<uint64_t>(slots.rows(s)) * slots.rowBytes(s); }

} // namespace

std::unique_ptr<CudaSession> CudaSession::fork(int64_t position) const {
  checkUsable();
  checkRewindPosition(position, position_, "fork");
  auto child = std::make_unique<CudaSession>(model_, options_);
  if (position == position_)
    child->copyStateFrom(*this);
  else
    child->rewindFrom(*this, position);
  return child;
}

void CudaSession::truncate(int64_t position) {
  checkUsable();
  checkRewindPosition(position, position_, "truncate");
  if (position == position_)
    return;
  try {
    rewindFrom(*this, position);
  } catch (const std::exception &e) {
    failure_ = e.what(); // part restored: neither the old state nor the new one
    throw;
  }
}

uint64_t CudaSession::snapshotBytes() const {
  const std::vector<CacheSlot> &slots = model_.program().caches;
  uint64_t bytes = 0;
  for (size_t s = 0; s < slots.size(); ++s)
    if (!isEntries(slots[s]))
      bytes += slotBytes(*slots_, s);
  return bytes;
}

void CudaSession::takeSnapshot() {
  // The most recent ones only (CudaSessionOptions::keptSnapshots, 8 as on
  // the CPU): each holds every fixed-size slot.
  const size_t kept = static_cast<size_t>(std::max(0, options_.keptSnapshots));
  if (kept == 0 || snapshots_.count(position_))
    return; // none kept; or the same ids up to here, the same state
  std::shared_ptr<PinnedBuffer> snapshot;
  while (snapshots_.size() >= kept) {
    // The oldest goes; its memory is reused unless a fork still holds it
    // (the copy into it queues behind any earlier use on the stream).
    auto oldest = snapshots_.begin();
    if (!snapshot && oldest->second.use_count() == 1)
      snapshot = std::move(oldest->second);
    snapshots_.erase(oldest);
  }
  const DriverApi &api = model_.api();
  // Best-effort, like the prefix cache: without this snapshot a fork or
  // truncate restores from an earlier boundary and prefills more.
  try {
    if (!snapshot)
      snapshot = std::make_shared<PinnedBuffer>(api, snapshotBytes(), "window snapshot of a CUDA session");
    const std::vector<CacheSlot> &slots = model_.program().caches;
    uint64_t offset = 0;
    for (size_t s = 0; s < slots.size(); ++s) {
      if (isEntries(slots[s]))
        continue;
      const uint64_t bytes = slotBytes(*slots_, s);
      if (bytes)
        checkCuda(api, api.cuMemcpyDtoHAsync(snapshot->data() + offset, slots_->address(s), bytes, model_.stream()),
                  "cuMemcpyDtoHAsync", "snapshot of cache slot " + slots[s].name + " at " + std::to_string(position_));
      offset += bytes;
    }
  } catch (const std::exception &e) {
    skipCacheFailure(e); // waits for the copies already queued into `snapshot` before it goes
    return;
  }
  snapshots_[position_] = std::move(snapshot);
}

void CudaSession::copyStateFrom(const CudaSession &source) {
  // Resident first: that may preempt `source`, whose rows then come from its host copy.
  ensureResident();
  const std::vector<CacheSlot> &slots = model_.program().caches;
  for (size_t s = 0; s < slots.size(); ++s)
    source.slots_->copyRows(s, isEntries(slots[s]) ? source.position_ / slots[s].rate : slots_->rows(s),
                            slots_->address(s));
  checkCuda(model_.api(), model_.api().cuStreamSynchronize(model_.stream()), "cuStreamSynchronize",
            "forking a CUDA session at " + std::to_string(source.position_));
  position_ = source.position_;
  slots_->setLiveTokens(position_);
  tokens_ = source.tokens_;
  snapshots_ = source.snapshots_;
  lastKey_ = source.lastKey_;
}

void CudaSession::rewindFrom(const CudaSession &source, int64_t position) {
  const DriverApi &api = model_.api();
  // Nothing queued may still use a snapshot this drops (a decode's copy into one).
  checkCuda(api, api.cuStreamSynchronize(model_.stream()), "cuStreamSynchronize", "before a fork or truncate");
  // Copied first: `source` may be this session, whose ids are about to shrink.
  const std::vector<int32_t> ids(source.tokens_.begin(), source.tokens_.begin() + position);
  const int64_t previousPosition = position_;
  const auto plan =
      planRestore(source.snapshots_, ids.data(), position, prefixCache_, model_.program().caches, pageTokens_);
  bool restoredPages = false;
  if (plan.usesPages()) {
    const auto inherited = source.snapshots_;
    try {
      restorePages(ids.data(), plan.keys, plan.pages); // Entries rows of the pages, fixed slots rebuilt
      restoredPages = true;
    } catch (const std::exception &e) {
      skipPageFailure(e); // the cached pages failed: the kept snapshot (or 0) below serves instead
    }
    if (restoredPages) {
      clearEntries(position_, previousPosition);
      snapshots_ = inherited;
      snapshots_.erase(snapshots_.upper_bound(position_), snapshots_.end());
      takeSnapshot();
    }
  }
  if (!restoredPages) {
    restoreBoundary(source, plan.boundary, plan.snapshot.get());
    clearEntries(plan.boundary, previousPosition);
  }
  if (position > position_)
    prefill(ids.data() + position_, position - position_, nullptr);
  checkCuda(api, api.cuStreamSynchronize(model_.stream()), "cuStreamSynchronize",
            "restoring a CUDA session to " + std::to_string(position));
}

void CudaSession::restoreBoundary(const CudaSession &source, int64_t boundary, const PinnedBuffer *snapshot) {
  // Resident first: that may preempt `source`, whose rows then come from its host copy.
  ensureResident();
  const DriverApi &api = model_.api();
  const std::vector<CacheSlot> &slots = model_.program().caches;
  uint64_t offset = 0;
  for (size_t s = 0; s < slots.size(); ++s) {
    if (isEntries(slots[s])) {
      // Append-only: the rows below the boundary are the boundary's rows.
      if (&source != this)
        source.slots_->copyRows(s, boundary / slots[s].rate, slots_->address(s));
      continue;
    }
    const uint64_t bytes = slotBytes(*slots_, s);
    if (bytes == 0)
      continue;
    if (snapshot)
      checkCuda(api, api.cuMemcpyHtoDAsync(slots_->address(s), snapshot->data() + offset, bytes, model_.stream()),
                "cuMemcpyHtoDAsync", "restoring the snapshot at " + std::to_string(boundary) + " of cache slot " +
                                         slots[s].name);
    else
      slots_->zeroRows(s, 0, slots_->rows(s)); // a fresh session's state
    offset += bytes;
  }
  position_ = boundary;
  slots_->setLiveTokens(position_);
  if (&source == this)
    tokens_.resize(static_cast<size_t>(boundary));
  else
    tokens_.assign(source.tokens_.begin(), source.tokens_.begin() + boundary);
  if (&source != this)
    snapshots_ = source.snapshots_;
  snapshots_.erase(snapshots_.upper_bound(boundary), snapshots_.end());
  frozenTokens_ = 0;
  rekeyPages(boundary);
}

void CudaSession::clearEntries(int64_t fromTokens, int64_t toTokens) {
  const std::vector<CacheSlot> &slots = model_.program().caches;
  for (size_t s = 0; s < slots.size(); ++s)
    if (isEntries(slots[s]))
      slots_->zeroRows(s, fromTokens / slots[s].rate, (toTokens + slots[s].rate - 1) / slots[s].rate);
}

void CudaSession::rekeyPages(int64_t boundary) {
  // A boundary is a page end: the next page starts empty, chained to the key
  // of the page before it (the ids decide it, whichever session computed them).
  lastKey_.clear();
  if (prefixCache_ && boundary > 0)
    lastKey_.assign(1, prefixCache_->prefixKeys(tokens_.data(), boundary / pageTokens_).back());
}

} // namespace v4rt::cuda
