#include "runtime/artifact/ArtifactWriter.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "common/Error.h"
#include "runtime/artifact/ArtifactFormat.h"
#include "runtime/artifact/Manifest.h"
#include "runtime/artifact/ProgramCheck.h"
#include "runtime/artifact/WeightLayout.h"

namespace v4rt {
namespace {

using namespace artifact;

std::string systemError(const std::string &what) {
  return what + ": " + std::strerror(errno);
}

// Owns the temp file until it is renamed into place; on any early exit it
// unmaps, closes and deletes it.
class TempFile {
public:
  explicit TempFile(std::string finalPath)
      : finalPath_(std::move(finalPath)),
        tempPath_(finalPath_ + ".tmp." + std::to_string(::getpid())) {
    fd_ = ::open(tempPath_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0)
      throw v4c::Error(systemError(tempPath_ + ": cannot create"));
  }
  TempFile(const TempFile &) = delete;
  TempFile &operator=(const TempFile &) = delete;
  ~TempFile() {
    unmap();
    if (fd_ >= 0)
      ::close(fd_);
    if (!committed_)
      ::unlink(tempPath_.c_str());
  }

  // Sizes the file (a sparse hole), reserves real blocks for the byte ranges
  // we will write -- so a full disk is an error here, not a SIGBUS on a
  // mapped store later -- and maps it writable.
  uint8_t *map(uint64_t size, const std::vector<std::pair<uint64_t, uint64_t>> &usedRanges) {
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0)
      throw v4c::Error(systemError(tempPath_ + ": cannot size to " + std::to_string(size) + " bytes"));
    for (const auto &[offset, length] : usedRanges) {
      if (length == 0)
        continue;
      int status = ::posix_fallocate(fd_, static_cast<off_t>(offset), static_cast<off_t>(length));
      if (status != 0)
        throw v4c::Error(tempPath_ + ": cannot reserve " + std::to_string(length) +
                         " bytes: " + std::strerror(status));
    }
    void *base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (base == MAP_FAILED)
      throw v4c::Error(systemError(tempPath_ + ": cannot map"));
    base_ = static_cast<uint8_t *>(base);
    size_ = size;
    return base_;
  }

  // Flushes everything to disk, then atomically replaces `finalPath`.
  void commit() {
    if (::msync(base_, size_, MS_SYNC) != 0)
      throw v4c::Error(systemError(tempPath_ + ": cannot flush"));
    unmap();
    if (::fsync(fd_) != 0)
      throw v4c::Error(systemError(tempPath_ + ": cannot fsync"));
    ::close(fd_);
    fd_ = -1;
    if (::rename(tempPath_.c_str(), finalPath_.c_str()) != 0)
      throw v4c::Error(systemError(finalPath_ + ": cannot rename the finished artifact into place"));
    committed_ = true;
    syncDirectory();
  }

private:
  void unmap() {
    if (base_)
      ::munmap(base_, size_);
    base_ = nullptr;
  }

  // Makes the rename itself durable. Best effort: the artifact is complete
  // either way.
  void syncDirectory() {
    std::string directory = ".";
    if (size_t slash = finalPath_.rfind('/'); slash != std::string::npos)
      directory = slash == 0 ? "/" : finalPath_.substr(0, slash);
    int dirFd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirFd >= 0) {
      ::fsync(dirFd);
      ::close(dirFd);
    }
  }

  std::string finalPath_;
  std::string tempPath_;
  int fd_ = -1;
  uint8_t *base_ = nullptr;
  uint64_t size_ = 0;
  bool committed_ = false;
};

} // namespace

void writeArtifact(const std::string &path, Program program, const WeightSource &source,
                   const WriteOptions &options) {
  try {
    // Sizes first: checkProgram bounds Weight arguments by the weight sizes.
    layoutWeights(program.weights, 0);
    if (options.validate)
      checkProgram(program);
    for (size_t i = 0; i < program.weights.size(); ++i)
      v4c::check(program.weights[i].data || source || program.weights[i].size == 0 ||
                     program.weights[i].isDummy(),
                 "weight \"" + program.weights[i].name +
                     "\" has no data pointer and no weight source was given");

    // The manifest stores the weight offsets, which depend on where the blob
    // starts, which depends on the manifest's size. Every scalar is encoded
    // (ForceDefaults), so the size is fixed by the structure alone: measure
    // it with placeholder offsets, lay out, then encode for real.
    const uint64_t manifestSize = encodeManifest(program).size();
    v4c::check(manifestSize < (uint64_t{1} << 31),
               "the manifest needs " + std::to_string(manifestSize) +
                   " bytes; flatbuffers allow at most 2 GiB (move large data to weights)");
    const uint64_t blobOffset =
        std::max(alignUp(kHeaderSize + manifestSize, kWeightAlignment),
                 alignUp(options.minBlobOffset, kWeightAlignment));
    const uint64_t fileSize = layoutWeights(program.weights, blobOffset);

    std::vector<std::pair<uint64_t, uint64_t>> usedRanges{{0, kHeaderSize + manifestSize}};
    for (const Weight &weight : program.weights)
      if (!weight.isDummy())
        usedRanges.emplace_back(weight.offset, weight.size);
    TempFile file(path);
    uint8_t *base = file.map(fileSize, usedRanges);

    for (size_t i = 0; i < program.weights.size(); ++i) {
      Weight &weight = program.weights[i];
      if (weight.isDummy()) { // generated at load time from its recipe
        weight.checksum = 0;
        continue;
      }
      uint8_t *destination = base + weight.offset;
      if (weight.data)
        std::memcpy(destination, weight.data, weight.size);
      else if (weight.size > 0)
        source(i, destination, weight.size);
      weight.checksum = XXH3_64bits(destination, weight.size);
    }

    const std::vector<uint8_t> manifest = encodeManifest(program);
    v4c::check(manifest.size() == manifestSize,
               "internal error: manifest size changed from " + std::to_string(manifestSize) +
                   " to " + std::to_string(manifest.size()) + " bytes after layout");
    std::memcpy(base + kHeaderSize, manifest.data(), manifest.size());

    FileHeader header;
    header.manifestSize = static_cast<uint32_t>(manifestSize);
    header.blobOffset = blobOffset;
    header.fileSize = fileSize;
    header.manifestSha256 = sha256(manifest.data(), manifest.size());
    encodeHeader(header, base);
    file.commit();
  } catch (const v4c::Error &error) {
    throw v4c::Error(path + ": cannot write artifact: " + error.what());
  }
}

} // namespace v4rt
