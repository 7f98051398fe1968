// The disk tier: a directory of page files that outlives the process.
//
// Layout: DIR/ab/abcdef...(64 hex).page, one file per key (the first two hex
// digits pick a subdirectory). A page is written to
// DIR/ab/<hex>.page.tmp.<pid>.<counter>, fsynced, renamed into place and the
// subdirectory fsynced, so a file with the final name is always complete; a
// crash leaves at most a temporary file, removed by the next DiskTier opened
// on the directory. Content is validated on every read (Page.h): a damaged,
// truncated or foreign file is deleted, counted as corrupt and reported as a
// miss. Only files of this naming scheme are ever touched, and of those named
// like a page only the ones that start with the page magic (Page.h) are
// indexed, evicted or cleared, so no sweep deletes a user's file (only a
// file at the exact path of a key being read is taken for a damaged page).
//
// Bytes counted are file sizes (header + payload). Real I/O failures (cannot
// create, write, rename or list) throw v4c::Error naming the path.
#pragma once

#include <filesystem>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/kvcache/PageTier.h"

namespace v4rt::kvcache {

class DiskTier : public PageTier {
public:
  // Creates `directory` if needed, removes orphan temporary files of dead
  // writers and indexes the pages already there (modification time = LRU
  // order). Pages are written and validated with `artifactIdentity`; an empty
  // identity is fine for stats() and clear() only uses (e.g. `v4run cache`).
  // Pages read back are placed in `allocator`'s memory (null: the heap; the
  // CUDA backend's pinned memory, so promoting them to the device is a DMA).
  DiskTier(std::filesystem::path directory, std::string artifactIdentity, uint64_t byteBudget,
           std::shared_ptr<PayloadAllocator> allocator = nullptr);

  const std::string &name() const override { return name_; }
  // Writes the page durably, then deletes least recently used files while
  // over budget. Returns none: the disk is the bottom tier.
  std::vector<PagePtr> put(PagePtr page) override;
  // Reads and validates the file. Also finds pages other processes wrote
  // after this tier was opened.
  PagePtr get(const PageKey &key) override;
  bool contains(const PageKey &key) const override;
  bool erase(const PageKey &key) override;
  // Deletes every page file of this scheme in the directory (any identity)
  // and the temporary files of dead writers.
  uint64_t clear() override;
  TierStats stats() const override;
  bool keepsPromotedPages() const override { return true; }

  const std::filesystem::path &directory() const { return directory_; }
  std::filesystem::path pagePath(const PageKey &key) const;
  // Why the last corrupt page was rejected (empty if none was).
  std::string lastCorruptReason() const;

  // `v4run cache verify`: every page file read whole and checked (header,
  // checksums, key, length) against the artifact identity it names, so any
  // artifact's pages verify. Files named like a page without the page magic
  // are counted foreign and never touched.
  struct VerifyReport {
    uint64_t good = 0, corrupt = 0, foreign = 0, removed = 0;
    std::vector<std::string> problems; // "path: reason", one per corrupt page
  };
  // removeBad: deletes the corrupt page files (only those: they start with
  // the page magic).
  VerifyReport verify(bool removeBad);

private:
  using LruList = std::list<PageKey>; // front: most recently used
  struct Entry {
    uint64_t bytes = 0;
    LruList::iterator recency;
  };

  void scanDirectory();
  void removeOrphan(const std::filesystem::path &path);
  void writeDurably(const PageKey &key, const std::vector<uint8_t> &bytes);
  void track(const PageKey &key, uint64_t bytes); // as most recently used
  void forget(const PageKey &key);
  void evictOverBudget();
  // Adds a page file another process wrote since the scan; false if none.
  bool adoptFromDisk(const PageKey &key);

  const std::string name_ = "disk";
  const std::filesystem::path directory_;
  const std::string identity_;
  const uint64_t byteBudget_;
  const std::shared_ptr<PayloadAllocator> allocator_;
  mutable std::mutex mutex_;
  LruList lru_;
  std::unordered_map<PageKey, Entry, PageKeyHash> index_;
  TierStats counters_;
  uint64_t bytes_ = 0;
  std::string lastCorruptReason_;
};

} // namespace v4rt::kvcache
