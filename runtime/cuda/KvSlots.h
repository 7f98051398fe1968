// One session's KV cache slots as a KvResident of the model's DeviceKvPool:
// device buffers (Program::caches order, each sized for the session's
// maximum context) while resident; while preempted, a pinned host copy of
// the live rows only (Entries rows below the live position, every row of the
// fixed-size slots) and no device memory.
//
// Every swap-in allocates new buffers, so the slots' device addresses change:
// `generation()` counts swap-ins, and whoever cached an address (launch
// parameter tables, a captured decode graph) rebuilds it when it changed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/artifact/Program.h"
#include "runtime/cuda/DeviceKvPool.h"
#include "runtime/cuda/DeviceObjects.h"

namespace v4rt::cuda {

class KvSlots final : public KvResident {
public:
  // Registers with `pool` (throws when the slots can never fit it); nothing
  // is allocated until the pool first acquires them.
  KvSlots(const DriverApi &api, CUstream stream, const std::vector<CacheSlot> &slots, int64_t maxContext,
          DeviceKvPool &pool, std::string name);
  ~KvSlots() override;
  KvSlots(const KvSlots &) = delete;
  KvSlots &operator=(const KvSlots &) = delete;

  // Swaps in (preempting others) when needed; true when the addresses changed.
  bool ensureResident() { return pool_.acquire(*this); }
  bool isResident() const { return resident_; }
  // Device address of slot `slot`; throws when not resident.
  CUdeviceptr address(size_t slot) const;
  // Rows allocated for slot `slot` and the bytes of one row.
  int64_t rows(size_t slot) const { return rows_.at(slot); }
  uint64_t rowBytes(size_t slot) const { return rowBytes_.at(slot); }
  size_t size() const { return rows_.size(); }
  // Swap-ins so far (0: never resident).
  uint64_t generation() const { return generation_; }
  // Tokens whose state the slots hold: a swap moves Entries rows below
  // liveTokens / rate only.
  void setLiveTokens(int64_t tokens) { liveTokens_ = tokens; }
  // Bytes a swap moves now.
  uint64_t liveBytes() const;
  // Copies the first `rows` rows of slot `slot` to device memory at `target`
  // (async on the stream; a fork's source): device to device while resident,
  // else from the pinned host copy of a preempted session (its live rows
  // only), else (never resident) zeros, a fresh slot's rows.
  void copyRows(size_t slot, int64_t rows, CUdeviceptr target) const;
  // Zeroes rows [firstRow, endRow) of slot `slot` (async; resident only):
  // rows a truncated session dropped read as a fresh session's again.
  void zeroRows(size_t slot, int64_t firstRow, int64_t endRow) const;
  DeviceKvPool &pool() const { return pool_; }

  uint64_t residentBytes() const override { return totalBytes_; }
  uint64_t swapIn() override;
  uint64_t swapOut() override;
  std::string describe() const override { return name_; }

private:
  uint64_t liveSlotBytes(size_t slot) const;

  const DriverApi &api_;
  CUstream stream_;
  const std::vector<CacheSlot> &slots_;
  DeviceKvPool &pool_;
  std::string name_;
  std::vector<int64_t> rows_;
  std::vector<uint64_t> rowBytes_;
  uint64_t totalBytes_ = 0;
  std::vector<DeviceBuffer> device_; // empty while not resident
  PinnedBuffer hostCopy_;            // the live rows while preempted
  std::vector<uint64_t> copiedBytes_; // per slot: bytes in hostCopy_, in slot order
  bool resident_ = false;
  bool hasHostCopy_ = false;
  uint64_t generation_ = 0;
  int64_t liveTokens_ = 0;
};

} // namespace v4rt::cuda
