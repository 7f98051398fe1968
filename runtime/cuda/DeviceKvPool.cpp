#include "runtime/cuda/DeviceKvPool.h"

#include <algorithm>
#include <cstdio>

#include "common/Error.h"

namespace v4rt::cuda {

std::string formatBytes(uint64_t bytes) {
  char text[64];
  if (bytes >= (1ull << 30))
    std::snprintf(text, sizeof text, "%.2f GiB", static_cast<double>(bytes) / (1ull << 30));
  else if (bytes >= (1ull << 20))
    std::snprintf(text, sizeof text, "%.2f MiB", static_cast<double>(bytes) / (1ull << 20));
  else
    std::snprintf(text, sizeof text, "%llu bytes", static_cast<unsigned long long>(bytes));
  return text;
}

uint64_t defaultDeviceKvBytes(uint64_t freeBytes) {
  constexpr uint64_t kHeadroom = 256ull << 20;
  const uint64_t share = freeBytes / 10 * 9;
  return share > kHeadroom ? share - kHeadroom : 0;
}

const DeviceKvPool::Entry *DeviceKvPool::find(const KvResident &resident) const {
  for (const Entry &entry : entries_)
    if (entry.resident == &resident)
      return &entry;
  return nullptr;
}

DeviceKvPool::Entry &DeviceKvPool::entryFor(const KvResident &resident) {
  const Entry *entry = find(resident);
  v4c::check(entry != nullptr, "device KV pool: " + resident.describe() + " is not registered");
  return *const_cast<Entry *>(entry);
}

void DeviceKvPool::add(KvResident &resident) {
  v4c::check(find(resident) == nullptr, "device KV pool: " + resident.describe() + " registered twice");
  const uint64_t bytes = resident.residentBytes();
  if (bytes > budget_)
    throw v4c::Error(resident.describe() + " needs " + formatBytes(bytes) +
                     " of KV cache slots, more than the whole device KV pool (" + formatBytes(budget_) +
                     "): raise --device-kv-bytes or lower --max-context");
  Entry entry;
  entry.resident = &resident;
  entries_.push_back(entry); // least recently used until it first runs
  ++stats_.registered;
}

void DeviceKvPool::remove(KvResident &resident) {
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->resident != &resident)
      continue;
    if (it->isResident)
      stats_.bytesInUse -= resident.residentBytes();
    entries_.erase(it);
    --stats_.registered;
    return;
  }
}

void DeviceKvPool::evict(Entry &victim) {
  stats_.bytesMoved += victim.resident->swapOut();
  victim.isResident = false;
  victim.preempted = true;
  stats_.bytesInUse -= victim.resident->residentBytes();
  ++stats_.preemptions;
}

bool DeviceKvPool::acquire(KvResident &resident) {
  Entry &entry = entryFor(resident);
  auto position = std::find_if(entries_.begin(), entries_.end(),
                               [&](const Entry &e) { return e.resident == &resident; });
  entries_.splice(entries_.begin(), entries_, position); // most recently used
  if (entry.isResident)
    return false;
  const uint64_t bytes = resident.residentBytes();
  // Oldest first: walk from the back, skipping pinned and absent residents.
  auto oldestUnpinned = [&]() -> Entry * {
    for (auto it = entries_.rbegin(); it != entries_.rend(); ++it)
      if (it->resident != &resident && it->isResident && it->pins == 0)
        return &*it;
    return nullptr;
  };
  while (stats_.bytesInUse + bytes > budget_) {
    Entry *victim = oldestUnpinned();
    if (!victim) {
      uint64_t pinned = 0;
      for (const Entry &e : entries_)
        pinned += e.pins > 0 ? 1 : 0;
      throw v4c::Error("device KV pool exhausted: " + resident.describe() + " needs " + formatBytes(bytes) +
                       ", " + formatBytes(budget_ - std::min(budget_, stats_.bytesInUse)) + " of " +
                       formatBytes(budget_) + " are free and the " + std::to_string(pinned) +
                       " pinned sessions cannot be preempted (raise --device-kv-bytes or batch fewer sessions)");
    }
    evict(*victim);
  }
  const bool wasPreempted = entry.preempted;
  // The budget is a promise about free device memory; when the device has
  // less (other processes, fragmentation), make room the same way.
  for (;;) {
    try {
      stats_.bytesMoved += resident.swapIn();
      break;
    } catch (const DeviceMemoryShortage &shortage) {
      Entry *victim = oldestUnpinned();
      if (!victim)
        throw v4c::Error(std::string(shortage.what()) + "; nothing left to preempt (lower --device-kv-bytes)");
      evict(*victim);
    }
  }
  entry.isResident = true;
  entry.preempted = false;
  stats_.bytesInUse += bytes;
  stats_.peakBytesInUse = std::max(stats_.peakBytesInUse, stats_.bytesInUse);
  if (wasPreempted)
    ++stats_.swapIns;
  return true;
}

bool DeviceKvPool::isResident(const KvResident &resident) const {
  const Entry *entry = find(resident);
  return entry && entry->isResident;
}

void DeviceKvPool::pin(KvResident &resident) {
  Entry &entry = entryFor(resident);
  v4c::check(entry.isResident, "device KV pool: " + resident.describe() + " is pinned while not resident");
  ++entry.pins;
}

void DeviceKvPool::unpin(KvResident &resident) {
  Entry &entry = entryFor(resident);
  v4c::check(entry.pins > 0, "device KV pool: " + resident.describe() + " is unpinned more often than pinned");
  --entry.pins;
}

bool DeviceKvPool::isPinned(const KvResident &resident) const {
  const Entry *entry = find(resident);
  return entry && entry->pins > 0;
}

DeviceKvPoolStats DeviceKvPool::stats() const {
  DeviceKvPoolStats stats = stats_;
  stats.byteBudget = budget_;
  stats.resident = 0;
  for (const Entry &entry : entries_)
    stats.resident += entry.isResident ? 1 : 0;
  return stats;
}

std::vector<const KvResident *> DeviceKvPool::residentsByRecency() const {
  std::vector<const KvResident *> residents;
  for (const Entry &entry : entries_)
    if (entry.isResident)
      residents.push_back(entry.resident);
  return residents;
}

KvPinScope::~KvPinScope() {
  for (KvResident *resident : pinned_)
    pool_.unpin(*resident);
}

void KvPinScope::add(KvResident &resident) {
  pool_.acquire(resident);
  pool_.pin(resident);
  pinned_.push_back(&resident);
}

} // namespace v4rt::cuda
