// Where a fork or truncate to a position restarts from: one decision for both
// backends (Session::rewindFrom, CudaSession::rewindFrom), which differ only
// in how they hold a boundary snapshot (host state vs pinned buffer).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/Error.h"
#include "runtime/PrefixCache.h"

namespace v4rt {

// A fork or truncate position must be one the session holds: 0..held.
inline void checkRewindPosition(int64_t position, int64_t held, const char *operation) {
  if (position < 0 || position > held)
    throw v4c::Error(std::string(operation) + " position " + std::to_string(position) +
                     " is out of range: the session holds " + std::to_string(held) + " tokens (use 0.." +
                     std::to_string(held) + ")");
}

template <typename SnapshotPtr>
struct RestorePlan {
  // The latest kept snapshot at or below the position (0 and null: none, the
  // empty state).
  int64_t boundary = 0;
  SnapshotPtr snapshot;
  // Non-empty: the prefix cache's pages of the ids (from page 0), which leave
  // fewer tokens to run than the snapshot; restore these instead.
  std::vector<kvcache::PageKey> keys;
  std::vector<kvcache::PagePtr> pages;

  bool usesPages() const { return !pages.empty(); }
};

// `ids` holds at least `position` tokens; `snapshots` maps page boundaries to
// the state there. The pages win only when their window rebuild starts after
// the snapshot's boundary.
template <typename SnapshotPtr>
RestorePlan<SnapshotPtr> planRestore(const std::map<int64_t, SnapshotPtr> &snapshots, const int32_t *ids,
                                     int64_t position, PrefixCache *prefixCache,
                                     const std::vector<CacheSlot> &slots, int64_t pageTokens) {
  RestorePlan<SnapshotPtr> plan;
  auto after = snapshots.upper_bound(position);
  if (after != snapshots.begin()) {
    --after;
    plan.boundary = after->first;
    plan.snapshot = after->second;
  }
  // The prefix cache may hold a later boundary of these very ids.
  const int64_t P = pageTokens;
  if (!prefixCache || position / P <= plan.boundary / P)
    return plan;
  std::vector<kvcache::PageKey> keys = prefixCache->prefixKeys(ids, position / P);
  std::vector<kvcache::PagePtr> pages = prefixCache->fetch(keys);
  if (!pages.empty() && windowRebuildStart(pages, slots, P) > plan.boundary) {
    plan.keys = std::move(keys);
    plan.pages = std::move(pages);
  }
  return plan;
}

} // namespace v4rt
