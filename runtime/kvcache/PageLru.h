// The least-recently-used bookkeeping of the in-memory page tiers: entries
// in recency order, indexed by page key. MemoryTier keeps host pages in it,
// the CUDA backend's DeviceTier device allocations; each tier adds its byte
// budget and locking around it (PageLru itself is not thread-safe).
#pragma once

#include <cstdint>
#include <list>
#include <unordered_map>
#include <utility>

#include "runtime/kvcache/PageKey.h"
#include "runtime/kvcache/PageTier.h"

namespace v4rt::kvcache {

// KeyOf{}(entry) is the entry's PageKey.
template <typename Entry, typename KeyOf> class PageLru {
public:
  using List = std::list<Entry>; // front: most recently used

  bool empty() const { return list_.empty(); }
  uint64_t size() const { return index_.size(); }
  const List &byRecency() const { return list_; }

  // The entry of `key`, or null.
  Entry *find(const PageKey &key) {
    auto found = index_.find(key);
    return found == index_.end() ? nullptr : &*found->second;
  }
  const Entry *find(const PageKey &key) const {
    auto found = index_.find(key);
    return found == index_.end() ? nullptr : &*found->second;
  }
  bool contains(const PageKey &key) const { return index_.count(key) != 0; }

  // Makes the entry of `key` the most recently used; false when absent.
  bool refresh(const PageKey &key) {
    auto found = index_.find(key);
    if (found == index_.end())
      return false;
    list_.splice(list_.begin(), list_, found->second);
    return true;
  }
  // A tier's get: the entry made most recently used, counting a hit or a
  // miss in `counters`; null when absent.
  Entry *touch(const PageKey &key, TierStats &counters) {
    if (!refresh(key)) {
      ++counters.misses;
      return nullptr;
    }
    ++counters.hits;
    return &list_.front();
  }

  // Adds an entry whose key is not held yet, as the most recently used.
  void pushFront(Entry entry) {
    list_.push_front(std::move(entry));
    index_[KeyOf{}(list_.front())] = list_.begin();
  }
  // The least recently used entry (the tier must not be empty), and its removal.
  Entry &oldest() { return list_.back(); }
  void popOldest() {
    index_.erase(KeyOf{}(list_.back()));
    list_.pop_back();
  }
  bool erase(const PageKey &key) {
    auto found = index_.find(key);
    if (found == index_.end())
      return false;
    list_.erase(found->second);
    index_.erase(found);
    return true;
  }
  // Removes every entry; returns how many there were.
  uint64_t clear() {
    const uint64_t removed = index_.size();
    list_.clear();
    index_.clear();
    return removed;
  }

private:
  List list_;
  std::unordered_map<PageKey, typename List::iterator, PageKeyHash> index_;
};

} // namespace v4rt::kvcache
