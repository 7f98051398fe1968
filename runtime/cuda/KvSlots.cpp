#include "runtime/cuda/KvSlots.h"

#include <algorithm>

#include "common/Error.h"
#include "runtime/cuda/LaunchParams.h"

namespace v4rt::cuda {

KvSlots::KvSlots(const DriverApi &api, CUstream stream, const std::vector<CacheSlot> &slots, int64_t maxContext,
                 DeviceKvPool &pool, std::string name)
    : api_(api), stream_(stream), slots_(slots), pool_(pool), name_(std::move(name)) {
  for (const CacheSlot &slot : slots) {
    rows_.push_back(cacheSlotRows(slot, maxContext));
    const uint64_t bytes = cacheSlotBytes(slot, maxContext);
    rowBytes_.push_back(rows_.back() > 0 ? bytes / static_cast<uint64_t>(rows_.back()) : 0);
    totalBytes_ += bytes;
  }
  pool_.add(*this);
}

KvSlots::~KvSlots() {
  api_.cuStreamSynchronize(stream_); // nothing may still use the slots
  pool_.remove(*this);
}

CUdeviceptr KvSlots::address(size_t slot) const {
  v4c::check(resident_, name_ + ": cache slots used while preempted (call ensureResident first)");
  return device_.at(slot).get();
}

uint64_t KvSlots::liveSlotBytes(size_t slot) const {
  const CacheSlot &cache = slots_[slot];
  int64_t rows = rows_[slot];
  if (cache.kind == CacheKind::Entries)
    rows = std::min<int64_t>(rows, std::max<int64_t>(0, liveTokens_) / cache.rate);
  return static_cast<uint64_t>(rows) * rowBytes_[slot];
}

uint64_t KvSlots::liveBytes() const {
  uint64_t total = 0;
  for (size_t s = 0; s < slots_.size(); ++s)
    total += liveSlotBytes(s);
  return total;
}

void KvSlots::copyRows(size_t slot, int64_t rows, CUdeviceptr target) const {
  v4c::check(rows >= 0 && rows <= rows_.at(slot), name_ + ": copying " + std::to_string(rows) + " rows of cache slot \"" +
                                                      slots_[slot].name + "\", which has " +
                                                      std::to_string(rows_[slot]));
  const uint64_t bytes = static_cast<uint64_t>(rows) * rowBytes_[slot];
  if (bytes == 0)
    return;
  const std::string what = name_ + ": copying cache slot \"" + slots_[slot].name + "\"";
  if (resident_) {
    checkCuda(api_, api_.cuMemcpyDtoDAsync(target, device_[slot].get(), bytes, stream_), "cuMemcpyDtoDAsync", what);
    return;
  }
  if (!hasHostCopy_) {
    checkCuda(api_, api_.cuMemsetD8Async(target, 0, bytes, stream_), "cuMemsetD8Async", what);
    return;
  }
  v4c::check(bytes <= copiedBytes_[slot], what + ": " + std::to_string(rows) +
                                              " rows asked, more than the live rows of the preempted session");
  uint64_t offset = 0;
  for (size_t s = 0; s < slot; ++s)
    offset += copiedBytes_[s];
  checkCuda(api_, api_.cuMemcpyHtoDAsync(target, hostCopy_.data() + offset, bytes, stream_), "cuMemcpyHtoDAsync",
            what + " from its host copy");
}

void KvSlots::zeroRows(size_t slot, int64_t firstRow, int64_t endRow) const {
  firstRow = std::max<int64_t>(0, firstRow);
  endRow = std::min(endRow, rows_.at(slot));
  if (endRow <= firstRow || rowBytes_[slot] == 0)
    return;
  checkCuda(api_,
            api_.cuMemsetD8Async(address(slot) + static_cast<uint64_t>(firstRow) * rowBytes_[slot], 0,
                                 static_cast<uint64_t>(endRow - firstRow) * rowBytes_[slot], stream_),
            "cuMemsetD8Async", name_ + ": clearing cache slot \"" + slots_[slot].name + "\"");
}

uint64_t KvSlots::swapIn() {
  v4c::check(!resident_, name_ + ": swapped in twice");
  size_t freeBytes = 0, totalBytes = 0;
  checkCuda(api_, api_.cuMemGetInfo(&freeBytes, &totalBytes), "cuMemGetInfo");
  if (freeBytes < totalBytes_)
    throw DeviceMemoryShortage(name_ + " needs " + formatBytes(totalBytes_) + " of device memory for its KV cache, " +
                               formatBytes(freeBytes) + " are free");
  std::vector<DeviceBuffer> buffers;
  buffers.reserve(slots_.size());
  for (size_t s = 0; s < slots_.size(); ++s) {
    const uint64_t bytes = rows_[s] * rowBytes_[s];
    buffers.emplace_back(api_, bytes, name_ + " cache slot \"" + slots_[s].name + "\"");
    // Rows past the live ones read as a fresh session's: zeros, as on the CPU.
    if (bytes)
      checkCuda(api_, api_.cuMemsetD8Async(buffers.back().get(), 0, bytes, stream_), "cuMemsetD8Async",
                name_ + " cache slot \"" + slots_[s].name + "\"");
  }
  uint64_t moved = 0;
  if (hasHostCopy_) {
    uint64_t offset = 0;
    for (size_t s = 0; s < slots_.size(); ++s) {
      const uint64_t bytes = copiedBytes_[s];
      if (bytes)
        checkCuda(api_, api_.cuMemcpyHtoDAsync(buffers[s].get(), hostCopy_.data() + offset, bytes, stream_),
                  "cuMemcpyHtoDAsync", name_ + ": swapping in cache slot \"" + slots_[s].name + "\"");
      offset += bytes;
    }
    moved = offset;
  }
  checkCuda(api_, api_.cuStreamSynchronize(stream_), "cuStreamSynchronize", name_ + ": swapping in");
  hostCopy_ = PinnedBuffer();
  hasHostCopy_ = false;
  device_ = std::move(buffers);
  resident_ = true;
  ++generation_;
  return moved;
}

uint64_t KvSlots::swapOut() {
  v4c::check(resident_, name_ + ": swapped out while not resident");
  std::vector<uint64_t> copiedBytes(slots_.size(), 0);
  uint64_t total = 0;
  for (size_t s = 0; s < slots_.size(); ++s)
    total += copiedBytes[s] = liveSlotBytes(s);
  // A failed pinned allocation throws here, having changed nothing.
  PinnedBuffer hostCopy(api_, total, name_ + ": pinned host copy of preempted cache slots");
  // A refused submission leaves the earlier copies queued into hostCopy: they
  // finish before it is freed. The slots stay resident and unchanged.
  const DrainOnUnwind drain(api_, stream_);
  uint64_t offset = 0;
  for (size_t s = 0; s < slots_.size(); ++s) {
    if (copiedBytes[s])
      checkCuda(api_, api_.cuMemcpyDtoHAsync(hostCopy.data() + offset, device_[s].get(), copiedBytes[s], stream_),
                "cuMemcpyDtoHAsync", name_ + ": swapping out cache slot \"" + slots_[s].name + "\"");
    offset += copiedBytes[s];
  }
  // The copies (and every launch before them) must finish before the memory goes.
  checkCuda(api_, api_.cuStreamSynchronize(stream_), "cuStreamSynchronize", name_ + ": swapping out");
  hostCopy_ = std::move(hostCopy);
  copiedBytes_ = std::move(copiedBytes);
  device_.clear();
  resident_ = false;
  hasHostCopy_ = true;
  return total;
}

} // namespace v4rt::cuda
