// An in-memory LRU of pages with a byte budget: the host tier. On the CUDA
// backend its payloads live in page-locked memory (a pinned
// PayloadAllocator), so the device tier and sessions copy pages straight
// between device memory and the tier's bytes.
#pragma once

#include <memory>
#include <mutex>

#include "runtime/kvcache/PageLru.h"
#include "runtime/kvcache/PageTier.h"

namespace v4rt::kvcache {

class MemoryTier : public PageTier {
public:
  // `name` is "host"; bytes counted are payload bytes. With `allocator`, a
  // page put here whose payload lies elsewhere is re-homed into it (one
  // copy; the caller's page is untouched, holders keep theirs); when the
  // allocator has no block left the page stays where it is and counts as a
  // pin failure. Without one, pages are held as given (the CPU backend).
  MemoryTier(std::string name, uint64_t byteBudget, std::shared_ptr<PayloadAllocator> allocator = nullptr);

  const std::string &name() const override { return name_; }
  std::vector<PagePtr> put(PagePtr page) override;
  PagePtr get(const PageKey &key) override;
  bool contains(const PageKey &key) const override;
  bool erase(const PageKey &key) override;
  uint64_t clear() override;
  TierStats stats() const override;

  // Keys from most to least recently used (for tests and diagnostics).
  std::vector<PageKey> keysByRecency() const;
  const std::shared_ptr<PayloadAllocator> &allocator() const { return allocator_; }

private:
  struct KeyOfPage {
    const PageKey &operator()(const PagePtr &page) const { return page->key; }
  };
  // `page`, or a copy whose payload is a block of allocator_.
  PagePtr placed(PagePtr page);
  // Whether the payload is a block of allocator_ (counted in pinnedBytes_).
  bool placedHere(const Page &page) const;
  void forgetBytes(const Page &page);

  const std::string name_;
  const uint64_t byteBudget_;
  const std::shared_ptr<PayloadAllocator> allocator_;
  mutable std::mutex mutex_;
  PageLru<PagePtr, KeyOfPage> lru_;
  TierStats counters_; // hits, misses, insertions, evictions, pinFailures; the rest in stats()
  uint64_t bytes_ = 0;
  uint64_t pinnedBytes_ = 0;
};

} // namespace v4rt::kvcache
