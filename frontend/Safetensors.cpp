// safetensors: 8-byte little-endian header length N, N bytes of JSON, then the
// data section. Untrusted input: every number in the header is checked before
// a pointer is formed from it.
#include "frontend/Safetensors.h"

#include "common/Error.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace v4c {
namespace {

using json = nlohmann::json;
using v4rt::DType;

constexpr uint64_t kMaxHeaderBytes = 100ull * 1000 * 1000; // as the safetensors spec

struct DTypeInfo {
  const char *name;
  DType dtype;
};

// Byte-sized dtypes without a v4rt equivalent travel as raw U8 (their real
// name stays in TensorView::dtypeName, e.g. the F8_E8M0 block scales).
const DTypeInfo kDTypes[] = {
    {"F32", DType::F32},         {"BF16", DType::BF16}, {"F16", DType::F16}, {"F8_E4M3", DType::F8E4M3},
    {"I64", DType::I64},         {"I32", DType::I32},   {"U8", DType::U8},   {"I8", DType::U8},
    {"BOOL", DType::U8},         {"F8_E8M0", DType::U8},
};

class FileHandle {
public:
  explicit FileHandle(int fd) : fd_(fd) {}
  ~FileHandle() {
    if (fd_ >= 0)
      ::close(fd_);
  }
  int get() const { return fd_; }

private:
  int fd_;
};

struct Entry {
  std::string name;
  uint64_t begin = 0;
  uint64_t end = 0;
};

uint64_t readLittleEndian64(const uint8_t *bytes) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i)
    value = (value << 8) | bytes[i];
  return value;
}

std::string shapeText(const std::vector<int64_t> &shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    text += (i ? "," : "") + std::to_string(shape[i]);
  return text + "]";
}

// Parses one header entry into `view` (data pointer still unset) and its
// byte range. `fail` throws with the file and tensor named.
template <typename Fail>
Entry parseEntry(const std::string &name, const json &info, uint64_t dataBytes, TensorView &view,
                 const Fail &fail) {
  if (!info.is_object())
    fail("entry is not an object");
  for (const char *key : {"dtype", "shape", "data_offsets"})
    if (!info.contains(key))
      fail(std::string("missing \"") + key + "\"");

  const json &dtype = info.at("dtype");
  if (!dtype.is_string())
    fail("\"dtype\" must be a string, got " + dtype.dump());
  view.dtypeName = dtype.get<std::string>();
  const DTypeInfo *known = nullptr;
  for (const DTypeInfo &candidate : kDTypes)
    if (view.dtypeName == candidate.name)
      known = &candidate;
  if (!known)
    fail("unknown dtype \"" + view.dtypeName + "\"");
  view.dtype = known->dtype;

  const json &shape = info.at("shape");
  if (!shape.is_array())
    fail("\"shape\" must be a list, got " + shape.dump());
  int64_t elements = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    const json &dim = shape[i];
    // nlohmann parses non-negative integers as unsigned, negative ones as signed.
    const bool valid = dim.is_number_unsigned() && dim.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX);
    if (!valid)
      fail("dimension " + std::to_string(i) + " is " + dim.dump() + "; dimensions must be non-negative integers");
    const int64_t extent = dim.get<int64_t>();
    view.shape.push_back(extent);
    if (__builtin_mul_overflow(elements, extent, &elements))
      fail("shape " + shape.dump() + " has more elements than fit in 64 bits");
  }
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(static_cast<uint64_t>(elements), static_cast<uint64_t>(elementSize(view.dtype)), &bytes) ||
      bytes > static_cast<uint64_t>(SIZE_MAX))
    fail("shape " + shape.dump() + " x " + view.dtypeName + " overflows the byte count");

  const json &offsets = info.at("data_offsets");
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned())
    fail("\"data_offsets\" must be two non-negative integers, got " + offsets.dump());
  Entry entry{name, offsets[0].get<uint64_t>(), offsets[1].get<uint64_t>()};
  if (entry.begin > entry.end || entry.end > dataBytes)
    fail("data_offsets " + offsets.dump() + " are not a range inside the data section of " +
         std::to_string(dataBytes) + " bytes");
  if (entry.end - entry.begin != bytes)
    fail("shape " + shapeText(view.shape) + " x " + view.dtypeName + " (" + std::to_string(elementSize(view.dtype)) +
         " bytes) = " + std::to_string(bytes) + " bytes but data_offsets cover " +
         std::to_string(entry.end - entry.begin));
  view.nbytes = static_cast<size_t>(bytes);
  return entry;
}

// The data section must be covered exactly once: sorted by offset, each
// tensor starts where the previous one ended.
void checkCoverage(std::vector<Entry> entries, uint64_t dataBytes, const std::string &path) {
  std::sort(entries.begin(), entries.end(), [](const Entry &a, const Entry &b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t cursor = 0;
  const Entry *previous = nullptr;
  for (const Entry &entry : entries) {
    if (entry.begin < cursor)
      throw Error(path + ": tensors \"" + previous->name + "\" and \"" + entry.name + "\" overlap (bytes [" +
                  std::to_string(entry.begin) + ", " + std::to_string(cursor) + ") of the data section)");
    if (entry.begin > cursor)
      throw Error(path + ": bytes [" + std::to_string(cursor) + ", " + std::to_string(entry.begin) +
                  ") of the data section belong to no tensor (gap before \"" + entry.name + "\")");
    cursor = entry.end;
    previous = &entry;
  }
  if (cursor != dataBytes)
    throw Error(path + ": bytes [" + std::to_string(cursor) + ", " + std::to_string(dataBytes) +
                ") of the data section belong to no tensor (gap at the end)");
}

} // namespace

int64_t TensorView::numel() const {
  int64_t count = 1;
  for (int64_t extent : shape)
    count *= extent;
  return count;
}

size_t elementSize(DType dtype) {
  switch (dtype) {
  case DType::F32:
  case DType::I32:
    return 4;
  case DType::BF16:
  case DType::F16:
    return 2;
  case DType::F8E4M3:
  case DType::U8:
    return 1;
  case DType::I64:
    return 8;
  }
  return 0;
}

std::unique_ptr<SafetensorsFile> SafetensorsFile::open(const std::string &path) {
  FileHandle fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0)
    throw Error(path + ": cannot open: " + std::strerror(errno));
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0)
    throw Error(path + ": cannot stat: " + std::strerror(errno));
  if (!S_ISREG(info.st_mode))
    throw Error(path + ": not a regular file");
  const uint64_t fileBytes = static_cast<uint64_t>(info.st_size);
  if (fileBytes < 8)
    throw Error(path + ": file is " + std::to_string(fileBytes) +
                " bytes, shorter than the 8-byte header length");

  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  void *mapping = ::mmap(nullptr, fileBytes, PROT_READ, MAP_PRIVATE, fd.get(), 0);
  if (mapping == MAP_FAILED)
    throw Error(path + ": cannot mmap: " + std::strerror(errno));
  file->mapping_ = mapping;
  file->mappedBytes_ = fileBytes;
  const uint8_t *base = static_cast<const uint8_t *>(mapping);

  const uint64_t headerBytes = readLittleEndian64(base);
  if (headerBytes > kMaxHeaderBytes)
    throw Error(path + ": header length " + std::to_string(headerBytes) + " exceeds the 100 MB limit");
  if (headerBytes > fileBytes - 8)
    throw Error(path + ": header length " + std::to_string(headerBytes) + " runs past the end of the file (" +
                std::to_string(fileBytes) + " bytes)");
  const uint64_t dataBytes = fileBytes - 8 - headerBytes;
  const uint8_t *data = base + 8 + headerBytes;

  json header = json::parse(base + 8, base + 8 + headerBytes, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded())
    throw Error(path + ": header is not valid JSON");
  if (!header.is_object())
    throw Error(path + ": header is not a JSON object");

  std::vector<Entry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string &name = it.key();
    if (name == "__metadata__") {
      if (!it.value().is_object())
        throw Error(path + ": \"__metadata__\" must be an object");
      for (auto meta = it.value().begin(); meta != it.value().end(); ++meta)
        if (meta.value().is_string())
          file->metadata_[meta.key()] = meta.value().get<std::string>();
      continue;
    }
    auto fail = [&](const std::string &problem) {
      throw Error(path + ": tensor \"" + name + "\": " + problem);
    };
    TensorView view;
    view.name = name;
    view.file = path;
    Entry entry = parseEntry(name, it.value(), dataBytes, view, fail);
    view.data = data + entry.begin;
    file->index_[name] = file->tensors_.size();
    file->tensors_.push_back(std::move(view));
    entries.push_back(std::move(entry));
  }
  checkCoverage(std::move(entries), dataBytes, path);
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (mapping_)
    ::munmap(mapping_, mappedBytes_);
}

const TensorView *SafetensorsFile::find(const std::string &name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

float bf16ToFloat(uint16_t bits) {
  const uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float value;
  std::memcpy(&value, &wide, sizeof value);
  return value;
}

float f16ToFloat(uint16_t bits) {
  const float sign = (bits & 0x8000) ? -1.0f : 1.0f;
  const int exponent = (bits >> 10) & 0x1f;
  const int mantissa = bits & 0x3ff;
  if (exponent == 0)
    return sign * std::ldexp(static_cast<float>(mantissa), -24); // subnormal
  if (exponent == 31)
    return mantissa ? std::numeric_limits<float>::quiet_NaN() : sign * std::numeric_limits<float>::infinity();
  return sign * std::ldexp(static_cast<float>(mantissa | 0x400), exponent - 25);
}

// e4m3fn: bias 7, no infinities, S.1111.111 is NaN.
float f8e4m3ToFloat(uint8_t bits) {
  const float sign = (bits & 0x80) ? -1.0f : 1.0f;
  const int exponent = (bits >> 3) & 0xf;
  const int mantissa = bits & 0x7;
  if (exponent == 0xf && mantissa == 0x7)
    return std::numeric_limits<float>::quiet_NaN();
  if (exponent == 0)
    return sign * std::ldexp(static_cast<float>(mantissa), -9);
  return sign * std::ldexp(static_cast<float>(mantissa | 0x8), exponent - 10);
}

std::vector<float> toF32(const TensorView &tensor) {
  const size_t count = tensor.nbytes / elementSize(tensor.dtype);
  std::vector<float> out(count);
  const uint8_t *bytes = tensor.data;
  switch (tensor.dtype) {
  case DType::F32:
    if (count)
      std::memcpy(out.data(), bytes, count * sizeof(float));
    return out;
  case DType::BF16:
  case DType::F16:
    for (size_t i = 0; i < count; ++i) {
      uint16_t bits;
      std::memcpy(&bits, bytes + 2 * i, sizeof bits);
      out[i] = tensor.dtype == DType::BF16 ? bf16ToFloat(bits) : f16ToFloat(bits);
    }
    return out;
  case DType::F8E4M3:
    for (size_t i = 0; i < count; ++i)
      out[i] = f8e4m3ToFloat(bytes[i]);
    return out;
  default:
    throw Error(tensor.file + ": tensor \"" + tensor.name + "\" has dtype " + tensor.dtypeName +
                "; a floating-point tensor (F32, BF16, F16, F8_E4M3) is needed here");
  }
}

std::vector<int32_t> toI32(const TensorView &tensor) {
  const size_t count = tensor.nbytes / elementSize(tensor.dtype);
  std::vector<int32_t> out(count);
  if (tensor.dtype == DType::I32) {
    if (count)
      std::memcpy(out.data(), tensor.data, count * sizeof(int32_t));
    return out;
  }
  if (tensor.dtype != DType::I64)
    throw Error(tensor.file + ": tensor \"" + tensor.name + "\" has dtype " + tensor.dtypeName +
                "; an integer tensor (I32, I64) is needed here");
  for (size_t i = 0; i < count; ++i) {
    int64_t value;
    std::memcpy(&value, tensor.data + 8 * i, sizeof value);
    if (value < INT32_MIN || value > INT32_MAX)
      throw Error(tensor.file + ": tensor \"" + tensor.name + "\": element " + std::to_string(i) + " (" +
                  std::to_string(value) + ") does not fit in int32");
    out[i] = static_cast<int32_t>(value);
  }
  return out;
}

} // namespace v4c
