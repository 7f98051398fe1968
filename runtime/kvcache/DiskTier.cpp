#include "runtime/kvcache/DiskTier.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <functional>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/Error.h"

namespace v4rt::kvcache {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kPageSuffix = ".page";
constexpr std::string_view kTempInfix = ".page.tmp.";

[[noreturn]] void fail(const std::string &what, const fs::path &path, int error) {
  throw v4c::Error(what + " " + path.string() + ": " + std::strerror(error));
}

bool isLowerHex(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool isDigits(std::string_view text) {
  return !text.empty() && text.size() <= 18 &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// "<64 hex>.page" -> its key.
std::optional<PageKey> pageFileKey(std::string_view name) {
  if (name.size() != 64 + kPageSuffix.size() || name.substr(64) != kPageSuffix ||
      !isLowerHex(name.substr(0, 64)))
    return std::nullopt;
  return PageKey::fromHex(name.substr(0, 64));
}

// "<64 hex>.page.tmp.<pid>.<counter>" -> the writer's pid.
std::optional<long long> tempFileWriter(std::string_view name) {
  if (name.size() <= 64 + kTempInfix.size() || name.substr(64, kTempInfix.size()) != kTempInfix ||
      !isLowerHex(name.substr(0, 64)))
    return std::nullopt;
  std::string_view rest = name.substr(64 + kTempInfix.size());
  size_t dot = rest.find('.');
  if (dot == std::string_view::npos || !isDigits(rest.substr(0, dot)) || !isDigits(rest.substr(dot + 1)))
    return std::nullopt;
  return std::stoll(std::string(rest.substr(0, dot)));
}

// A writer is alive when its pid exists (conservative: a reused pid keeps an
// orphan until a later start). Our own pid counts as alive: another DiskTier
// in this process may be writing into the same directory right now.
bool writerAlive(long long pid) {
  if (pid <= 0 || pid > 0x7fffffff)
    return false;
  if (pid == static_cast<long long>(::getpid()))
    return true;
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

bool isSubdirectoryName(std::string_view name) { return name.size() == 2 && isLowerHex(name); }

void fsyncDirectory(const fs::path &path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    fail("cannot open KV cache directory", path, errno);
  if (::fsync(fd) != 0) {
    int error = errno;
    ::close(fd);
    fail("cannot fsync KV cache directory", path, error);
  }
  ::close(fd);
}

void removeFile(const fs::path &path, const char *what) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    fail(what, path, errno);
}

// Lookalike: named like a page but without the page magic (a user's file, or
// a page truncated below its magic): visited only when asked, never touched.
enum class SchemeFile { Page, Temp, Lookalike };

// A file named like a page is one of ours only if it starts with the page
// magic: a user's own "<64 hex>.page" file (another content-addressed store
// sharing the directory) is never indexed, evicted or cleared.
bool startsWithPageMagic(const fs::path &path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return false;
  char magic[sizeof kPageMagic];
  ssize_t got;
  do
    got = ::read(fd, magic, sizeof magic);
  while (got < 0 && errno == EINTR);
  ::close(fd);
  return got == static_cast<ssize_t>(sizeof magic) && std::memcmp(magic, kPageMagic, sizeof magic) == 0;
}

// Calls `visit` for every file of this tier's naming scheme under `directory`
// (regular files only, never following links; page files only when they
// start with the page magic, lookalikes too if `withLookalikes`); nothing
// else is looked at.
void forEachSchemeFile(const fs::path &directory,
                       const std::function<void(const fs::path &, SchemeFile, const struct stat &)> &visit,
                       bool withLookalikes = false) {
  std::error_code error;
  for (fs::directory_iterator top(directory, error), end; !error && top != end; top.increment(error)) {
    std::string subName = top->path().filename().string();
    if (!isSubdirectoryName(subName) || top->symlink_status().type() != fs::file_type::directory)
      continue;
    std::error_code subError;
    for (fs::directory_iterator file(top->path(), subError); !subError && file != end;
         file.increment(subError)) {
      std::string name = file->path().filename().string();
      if (name.compare(0, 2, subName) != 0)
        continue; // a scheme file always lives in the subdirectory of its first two digits
      bool isPage = pageFileKey(name).has_value();
      if (!isPage && !tempFileWriter(name))
        continue;
      struct stat info;
      if (::lstat(file->path().c_str(), &info) != 0 || !S_ISREG(info.st_mode))
        continue; // vanished meanwhile, or not a plain file: not ours
      if (isPage && !startsWithPageMagic(file->path())) {
        if (withLookalikes)
          visit(file->path(), SchemeFile::Lookalike, info);
        continue; // named like a page, but not a page file
      }
      visit(file->path(), isPage ? SchemeFile::Page : SchemeFile::Temp, info);
    }
    if (subError)
      fail("cannot list KV cache directory", top->path(), subError.value());
  }
  if (error)
    fail("cannot list KV cache directory", directory, error.value());
}

std::atomic<uint64_t> temporaryCounter{0};

// A page file's bytes, in `allocator`'s blocks (the heap when null); nullopt
// when the file is gone (another process evicted or cleared it). A file that
// shrinks while being read keeps what was read: decoding reports it truncated.
std::optional<PageBytes> readPageFile(const fs::path &path, const std::shared_ptr<PayloadAllocator> &allocator) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT)
      return std::nullopt;
    fail("cannot open KV page file", path, errno);
  }
  struct stat info;
  if (::fstat(fd, &info) != 0) {
    int error = errno;
    ::close(fd);
    fail("cannot stat KV page file", path, error);
  }
  PageBytes bytes = PageBytes::allocate(allocator, static_cast<size_t>(info.st_size));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t result = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (result < 0 && errno == EINTR)
      continue;
    if (result < 0) {
      int error = errno;
      ::close(fd);
      fail("cannot read KV page file", path, error);
    }
    if (result == 0)
      break;
    done += static_cast<size_t>(result);
  }
  ::close(fd);
  if (done < bytes.size())
    bytes = PageBytes(std::vector<uint8_t>(bytes.data(), bytes.data() + done));
  return bytes;
}


} // namespace

DiskTier::DiskTier(fs::path directory, std::string artifactIdentity, uint64_t byteBudget,
                   std::shared_ptr<PayloadAllocator> allocator)
    : directory_(std::move(directory)), identity_(std::move(artifactIdentity)), byteBudget_(byteBudget),
      allocator_(std::move(allocator)) {
  std::error_code error;
  fs::create_directories(directory_, error);
  if (error)
    fail("cannot create KV cache directory", directory_, error.value());
  if (!fs::is_directory(directory_, error))
    throw v4c::Error("KV cache path " + directory_.string() + " is not a directory");
  std::lock_guard<std::mutex> lock(mutex_);
  scanDirectory();
  evictOverBudget(); // the budget may be smaller than the last process's
}

fs::path DiskTier::pagePath(const PageKey &key) const {
  std::string hex = key.hex();
  return directory_ / hex.substr(0, 2) / (hex + std::string(kPageSuffix));
}

void DiskTier::scanDirectory() {
  struct Found {
    PageKey key;
    uint64_t bytes;
    struct timespec modified;
  };
  std::vector<Found> pages;
  forEachSchemeFile(directory_, [&](const fs::path &path, SchemeFile kind, const struct stat &info) {
    std::string name = path.filename().string();
    if (kind == SchemeFile::Temp) {
      if (!writerAlive(*tempFileWriter(name)))
        removeOrphan(path);
      return;
    }
    pages.push_back({*pageFileKey(name), static_cast<uint64_t>(info.st_size), info.st_mtim});
  });
  std::sort(pages.begin(), pages.end(), [](const Found &a, const Found &b) {
    return a.modified.tv_sec != b.modified.tv_sec ? a.modified.tv_sec < b.modified.tv_sec
                                                  : a.modified.tv_nsec < b.modified.tv_nsec;
  });
  for (const Found &page : pages) // oldest first, so the newest ends at the front
    track(page.key, page.bytes);
}

void DiskTier::removeOrphan(const fs::path &path) {
  removeFile(path, "cannot remove orphan KV page temporary file");
  ++counters_.orphansRemoved;
}

void DiskTier::writeDurably(const PageKey &key, const std::vector<uint8_t> &bytes) {
  fs::path finalPath = pagePath(key);
  fs::path subdirectory = finalPath.parent_path();
  if (::mkdir(subdirectory.c_str(), 0755) == 0)
    fsyncDirectory(directory_); // make the new subdirectory's entry durable too
  else if (errno != EEXIST)
    fail("cannot create KV cache directory", subdirectory, errno);

  fs::path temporary = finalPath;
  temporary += ".tmp." + std::to_string(::getpid()) + "." + std::to_string(temporaryCounter++);
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0)
    fail("cannot create KV page file", temporary, errno);
  auto abandon = [&](const char *what, int error) {
    ::close(fd);
    ::unlink(temporary.c_str());
    fail(what, temporary, error);
  };
  size_t written = 0;
  while (written < bytes.size()) {
    ssize_t result = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (result < 0 && errno == EINTR)
      continue;
    if (result <= 0)
      abandon("cannot write KV page file", result < 0 ? errno : EIO);
    written += static_cast<size_t>(result);
  }
  if (::fsync(fd) != 0)
    abandon("cannot fsync KV page file", errno);
  if (::close(fd) != 0) {
    int error = errno;
    ::unlink(temporary.c_str());
    fail("cannot close KV page file", temporary, error);
  }
  if (::rename(temporary.c_str(), finalPath.c_str()) != 0) {
    int error = errno;
    ::unlink(temporary.c_str());
    fail("cannot rename KV page file into place at", finalPath, error);
  }
  fsyncDirectory(subdirectory);
}

void DiskTier::track(const PageKey &key, uint64_t bytes) {
  lru_.push_front(key);
  index_[key] = Entry{bytes, lru_.begin()};
  bytes_ += bytes;
}

void DiskTier::forget(const PageKey &key) {
  auto found = index_.find(key);
  if (found == index_.end())
    return;
  bytes_ -= found->second.bytes;
  lru_.erase(found->second.recency);
  index_.erase(found);
}

void DiskTier::evictOverBudget() {
  while (bytes_ > byteBudget_ && !lru_.empty()) {
    PageKey oldest = lru_.back();
    removeFile(pagePath(oldest), "cannot delete evicted KV page file");
    forget(oldest);
    ++counters_.evictions;
  }
}

bool DiskTier::adoptFromDisk(const PageKey &key) {
  struct stat info;
  if (::stat(pagePath(key).c_str(), &info) != 0 || !S_ISREG(info.st_mode))
    return false;
  track(key, static_cast<uint64_t>(info.st_size));
  return true;
}

std::vector<PagePtr> DiskTier::put(PagePtr page) {
  v4c::check(page != nullptr, "DiskTier::put: null page");
  std::lock_guard<std::mutex> lock(mutex_);
  if (index_.count(page->key) || adoptFromDisk(page->key)) {
    // Same key, same content: keep the file, refresh its recency (here and
    // for later processes) -- unless another process deleted it meanwhile.
    if (::utimensat(AT_FDCWD, pagePath(page->key).c_str(), nullptr, 0) == 0) {
      lru_.splice(lru_.begin(), lru_, index_.at(page->key).recency);
      return {};
    }
    forget(page->key);
  }
  std::vector<uint8_t> bytes = encodePage(*page, identity_);
  if (bytes.size() > byteBudget_) {
    ++counters_.evictions; // could never fit: dropped, as if evicted at once
    return {};
  }
  writeDurably(page->key, bytes);
  ++counters_.insertions;
  track(page->key, bytes.size());
  evictOverBudget();
  return {};
}

PagePtr DiskTier::get(const PageKey &key) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!index_.count(key) && !adoptFromDisk(key)) {
    ++counters_.misses;
    return nullptr;
  }
  fs::path path = pagePath(key);
  std::optional<PageBytes> bytes = readPageFile(path, allocator_);
  if (!bytes) {
    forget(key); // deleted by another process (its eviction or clear)
    ++counters_.misses;
    return nullptr;
  }
  const size_t done = bytes->size();
  DecodedPage decoded = decodePage(std::move(*bytes), identity_, key);
  if (!decoded) {
    lastCorruptReason_ = path.string() + ": " + decoded.reason;
    removeFile(path, "cannot delete corrupt KV page file");
    forget(key);
    ++counters_.corrupt;
    ++counters_.misses;
    return nullptr;
  }
  ++counters_.hits;
  Entry &entry = index_.at(key);
  bytes_ = bytes_ - entry.bytes + done; // the file may differ from what the scan saw
  entry.bytes = done;
  lru_.splice(lru_.begin(), lru_, entry.recency);
  ::utimensat(AT_FDCWD, path.c_str(), nullptr, 0); // recency for the next process's scan
  return std::make_shared<const Page>(std::move(*decoded.page));
}

bool DiskTier::contains(const PageKey &key) const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (index_.count(key))
    return true;
  struct stat info;
  return ::stat(pagePath(key).c_str(), &info) == 0 && S_ISREG(info.st_mode);
}

bool DiskTier::erase(const PageKey &key) {
  std::lock_guard<std::mutex> lock(mutex_);
  fs::path path = pagePath(key);
  bool existed = index_.count(key) != 0;
  if (::unlink(path.c_str()) == 0)
    existed = true;
  else if (errno != ENOENT)
    fail("cannot delete KV page file", path, errno);
  forget(key);
  return existed;
}

uint64_t DiskTier::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  uint64_t removed = 0;
  forEachSchemeFile(directory_, [&](const fs::path &path, SchemeFile kind, const struct stat &) {
    if (kind == SchemeFile::Page) {
      removeFile(path, "cannot delete KV page file");
      ++removed;
    } else if (!writerAlive(*tempFileWriter(path.filename().string()))) {
      removeOrphan(path);
    }
  });
  // Empty subdirectories go too; rmdir refuses any that still hold other files.
  std::error_code error;
  for (fs::directory_iterator top(directory_, error), end; !error && top != end; top.increment(error))
    if (isSubdirectoryName(top->path().filename().string()) &&
        top->symlink_status().type() == fs::file_type::directory)
      ::rmdir(top->path().c_str());
  lru_.clear();
  index_.clear();
  bytes_ = 0;
  return removed;
}

TierStats DiskTier::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  TierStats stats = counters_;
  stats.name = name_;
  stats.pages = index_.size();
  stats.bytes = bytes_;
  stats.byteBudget = byteBudget_;
  return stats;
}

std::string DiskTier::lastCorruptReason() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return lastCorruptReason_;
}

DiskTier::VerifyReport DiskTier::verify(bool removeBad) {
  std::lock_guard<std::mutex> lock(mutex_);
  VerifyReport report;
  forEachSchemeFile(
      directory_,
      [&](const fs::path &path, SchemeFile kind, const struct stat &) {
        if (kind == SchemeFile::Lookalike) {
          ++report.foreign;
          return;
        }
        if (kind != SchemeFile::Page)
          return;
        const PageKey key = *pageFileKey(path.filename().string());
        const std::optional<PageBytes> bytes = readPageFile(path, nullptr);
        if (!bytes)
          return; // removed by another process since the scan
        // Any artifact's page is checked against the identity it names:
        // everything else (version, header and payload checksums, key,
        // length) must hold.
        const DecodedPage decoded = decodePage(bytes->data(), bytes->size(), pageNamedIdentity(bytes->data(), bytes->size()), key);
        if (decoded) {
          ++report.good;
          return;
        }
        ++report.corrupt;
        report.problems.push_back(path.string() + ": " + decoded.reason);
        if (removeBad) {
          removeFile(path, "cannot delete corrupt KV page file");
          forget(key);
          ++report.removed;
        }
      },
      /*withLookalikes=*/true);
  return report;
}

} // namespace v4rt::kvcache
