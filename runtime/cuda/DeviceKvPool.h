// The device memory budget for sessions' KV cache slots on one CudaModel.
//
// Every CudaSession's cache slots are a KvResident: device memory while the
// session is resident, a pinned host copy while it is preempted. A resident
// that needs its slots (DeviceKvPool::acquire) gets room within the budget by
// preempting the least-recently-used residents that are not pinned (a
// batched decode step pins its sessions); a preempted one is swapped back in
// by the next acquire. Nothing here launches kernels: the pool is the policy
// (budget, LRU, pins, counters), the residents move their own bytes.
//
// Not thread-safe: a model's sessions run on its one stream, one call at a
// time (CudaModel.h).
#pragma once

#include <cstdint>
#include <list>
#include <string>
#include <vector>

#include "common/Error.h"

namespace v4rt::cuda {

// Thrown by KvResident::swapIn when the device has less free memory than the
// resident needs (the budget is larger than what is really free): the pool
// then preempts another resident and tries again.
class DeviceMemoryShortage : public v4c::Error {
public:
  using v4c::Error::Error;
};

class KvResident {
public:
  virtual ~KvResident() = default;
  // Device bytes the resident holds while resident (its whole slots).
  virtual uint64_t residentBytes() const = 0;
  // Allocates the device memory and fills it: zeros the first time, the
  // host copy after a swapOut. Returns the bytes copied back. Throws
  // DeviceMemoryShortage (having changed nothing) when the device lacks the memory.
  virtual uint64_t swapIn() = 0;
  // Copies the device state to host memory and frees the device memory;
  // returns the bytes copied. Called by the pool only on a resident,
  // unpinned resident.
  virtual uint64_t swapOut() = 0;
  // "session 3" in errors.
  virtual std::string describe() const = 0;
};

struct DeviceKvPoolStats {
  uint64_t byteBudget = 0;
  uint64_t bytesInUse = 0;        // bytes of the resident residents
  uint64_t peakBytesInUse = 0;
  uint64_t registered = 0;        // residents alive (resident or preempted)
  uint64_t resident = 0;          // of which resident now
  uint64_t preemptions = 0;       // swap-outs the budget forced
  uint64_t swapIns = 0;           // acquires of a preempted resident
  uint64_t bytesMoved = 0;        // device <-> host bytes of swaps, both ways
};

class DeviceKvPool {
public:
  explicit DeviceKvPool(uint64_t byteBudget) : budget_(byteBudget) {}
  DeviceKvPool(const DeviceKvPool &) = delete;
  DeviceKvPool &operator=(const DeviceKvPool &) = delete;

  uint64_t byteBudget() const { return budget_; }

  // A new resident (not resident yet). Throws the one-line error when its
  // bytes can never fit the budget.
  void add(KvResident &resident);
  // Forgets a resident (its device memory is being freed by its owner).
  void remove(KvResident &resident);

  // Makes `resident` resident (swapIn) and most recently used, preempting
  // least-recently-used unpinned residents (swapOut) until it fits; returns
  // true when it was not resident before (its device addresses are new).
  // Throws a one-line error when pinned residents leave no room.
  bool acquire(KvResident &resident);
  bool isResident(const KvResident &resident) const;

  // A pinned resident is never preempted (pins nest). Only a resident one
  // can be pinned.
  void pin(KvResident &resident);
  void unpin(KvResident &resident);
  bool isPinned(const KvResident &resident) const;

  DeviceKvPoolStats stats() const;
  // Residents from most to least recently used (resident ones only).
  std::vector<const KvResident *> residentsByRecency() const;

private:
  struct Entry {
    KvResident *resident = nullptr;
    bool isResident = false;
    bool preempted = false; // swapped out and not back yet
    int pins = 0;
  };
  Entry &entryFor(const KvResident &resident);
  const Entry *find(const KvResident &resident) const;
  void evict(Entry &victim);

  const uint64_t budget_;
  std::list<Entry> entries_; // front: most recently used
  DeviceKvPoolStats stats_;
};

// Keeps a set of residents resident for a scope (a batched decode step):
// acquires and pins each in turn, so a later one cannot preempt an earlier
// one; unpins them all on destruction.
class KvPinScope {
public:
  explicit KvPinScope(DeviceKvPool &pool) : pool_(pool) {}
  ~KvPinScope();
  KvPinScope(const KvPinScope &) = delete;
  KvPinScope &operator=(const KvPinScope &) = delete;
  void add(KvResident &resident);

private:
  DeviceKvPool &pool_;
  std::vector<KvResident *> pinned_;
};

// The default budget: 90% of the device memory free after the model's
// weights and arenas, less 256 MiB of headroom for graphs and the driver.
uint64_t defaultDeviceKvBytes(uint64_t freeBytes);

std::string formatBytes(uint64_t bytes);

} // namespace v4rt::cuda
