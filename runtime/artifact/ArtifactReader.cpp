#include "runtime/artifact/ArtifactReader.h"

#include <cerrno>
#include <cstring>
#include <new>
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
using std::to_string;

[[noreturn]] void fail(const std::string &message) { throw v4c::Error(message); }

// Validates the fixed header against the real file size. All arithmetic is
// done so that no sum can wrap: the header's numbers are untrusted.
FileHeader checkHeader(const uint8_t *bytes, uint64_t actualSize) {
  const FileHeader header = decodeHeader(bytes);
  if (header.formatVersion != kFormatVersion)
    fail("artifact format version " + to_string(header.formatVersion) +
         " is not supported by this runtime (supports " + to_string(kFormatVersion) + ")");
  if (header.fileSize > actualSize)
    fail("truncated: header says " + to_string(header.fileSize) + " bytes, file has " +
         to_string(actualSize));
  if (header.fileSize < actualSize)
    fail("header says " + to_string(header.fileSize) + " bytes but the file has " +
         to_string(actualSize) + " (trailing data or a corrupted header)");
  const uint64_t manifestEnd = kHeaderSize + header.manifestSize; // u32 + 64: no wrap
  if (manifestEnd > actualSize)
    fail("truncated: the manifest needs bytes up to " + to_string(manifestEnd) +
         ", file has " + to_string(actualSize));
  if (header.blobOffset % kWeightAlignment != 0 || header.blobOffset < manifestEnd ||
      header.blobOffset > actualSize)
    fail("corrupted header: blob offset " + to_string(header.blobOffset) +
         " must be 4096-aligned, after the manifest (" + to_string(manifestEnd) +
         ") and inside the file (" + to_string(actualSize) + " bytes)");
  return header;
}

} // namespace

std::unique_ptr<Artifact> Artifact::open(const std::string &path, const OpenOptions &options) {
  std::unique_ptr<Artifact> artifact(new Artifact());
  artifact->path_ = path;
  try {
    artifact->load(options);
  } catch (const v4c::Error &error) {
    throw v4c::Error(path + ": " + error.what());
  }
  return artifact;
}

std::string readArtifactTarget(const std::string &path) {
  OpenOptions options;
  options.verifyChecksums = false;
  return Artifact::open(path, options)->program().target;
}

Artifact::~Artifact() {
  if (mapping_)
    ::munmap(const_cast<uint8_t *>(mapping_), fileSize_);
}

void Artifact::load(const OpenOptions &options) {
  int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    fail(std::string("cannot open: ") + std::strerror(errno));
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    int saved = errno;
    ::close(fd);
    fail(std::string("cannot stat: ") + std::strerror(saved));
  }
  if (!S_ISREG(info.st_mode)) {
    ::close(fd);
    fail("not a regular file");
  }
  const uint64_t actualSize = static_cast<uint64_t>(info.st_size);
  if (actualSize < kHeaderSize) {
    // Short files: say "bad magic" only when the bytes we have disagree.
    uint8_t prefix[sizeof(kMagic)] = {};
    ssize_t got = ::pread(fd, prefix, sizeof(prefix), 0);
    ::close(fd);
    if (got == static_cast<ssize_t>(sizeof(kMagic)) && !hasMagic(prefix))
      fail("not a v4c artifact (bad magic)");
    fail("truncated: file has " + to_string(actualSize) + " bytes, less than the " +
         to_string(kHeaderSize) + "-byte header");
  }
  void *base = ::mmap(nullptr, actualSize, PROT_READ, MAP_SHARED, fd, 0);
  int savedErrno = errno;
  ::close(fd); // the mapping keeps the file alive
  if (base == MAP_FAILED)
    fail(std::string("cannot map: ") + std::strerror(savedErrno));
  mapping_ = static_cast<const uint8_t *>(base);
  fileSize_ = actualSize;

  if (!hasMagic(mapping_))
    fail("not a v4c artifact (bad magic)");
  const FileHeader header = checkHeader(mapping_, actualSize);

  const uint8_t *manifest = mapping_ + kHeaderSize;
  const Sha256 digest = sha256(manifest, header.manifestSize);
  if (digest != header.manifestSha256)
    fail("manifest checksum mismatch (file corrupted?)");
  identity_ = toHex(digest);

  program_ = decodeManifest(manifest, header.manifestSize);
  checkProgram(program_);
  checkWeightLayout(program_.weights, header.blobOffset, actualSize);

  for (Weight &weight : program_.weights) {
    if (weight.isDummy()) { // no bytes in the file: generated here or by the backend
      weight.data = nullptr;
      if (options.generateDummyWeights) {
        const uint64_t elements = weight.size / dtypeSize(weight.dtype);
        uint64_t *values = nullptr;
        try {
          values = new uint64_t[(weight.size + 7) / 8];
        } catch (const std::bad_alloc &) {
          fail("weight \"" + weight.name + "\": cannot allocate " + to_string(weight.size) +
               " bytes of host memory for its dummy values");
        }
        auto &storage = dummyStorage_.emplace_back(values);
        const uint32_t index = static_cast<uint32_t>(&weight - program_.weights.data());
        if (!fillDummyHost(storage.get(), elements, static_cast<uint32_t>(weight.dtype), program_.dummySeed, index,
                           weight.dummy))
          fail("weight \"" + weight.name + "\": dummy recipe cannot fill " + dtypeName(weight.dtype));
        weight.data = reinterpret_cast<const uint8_t *>(storage.get());
      }
      continue;
    }
    weight.data = mapping_ + weight.offset;
    if (options.verifyChecksums && XXH3_64bits(weight.data, weight.size) != weight.checksum)
      fail("weight \"" + weight.name + "\" checksum mismatch (file corrupted?)");
  }
}

} // namespace v4rt
