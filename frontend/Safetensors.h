// A read-only, memory-mapped .safetensors file whose header has been fully
// validated: every tensor's bytes lie inside the data section, tensors neither
// overlap nor leave gaps, and shape x dtype size equals the byte range.
#pragma once

#include "runtime/artifact/Program.h"

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace v4c {

struct TensorView {
  std::string name;
  v4rt::DType dtype = v4rt::DType::F32;
  std::vector<int64_t> shape;
  const uint8_t *data = nullptr; // into the mapping; valid while the file lives
  size_t nbytes = 0;
  std::string file;              // path of the .safetensors file
  std::string dtypeName;         // as written in the header ("F8_E4M3", "I8", ...)

  int64_t numel() const;
};

class SafetensorsFile {
public:
  // Maps and validates `path`. Throws v4c::Error("<path>: <problem>").
  static std::unique_ptr<SafetensorsFile> open(const std::string &path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile &) = delete;
  SafetensorsFile &operator=(const SafetensorsFile &) = delete;

  const std::string &path() const { return path_; }
  // In the header's order.
  const std::vector<TensorView> &tensors() const { return tensors_; }
  const TensorView *find(const std::string &name) const;
  // The optional "__metadata__" string map.
  const std::unordered_map<std::string, std::string> &metadata() const { return metadata_; }

private:
  SafetensorsFile() = default;

  std::string path_;
  void *mapping_ = nullptr;
  size_t mappedBytes_ = 0;
  std::vector<TensorView> tensors_;
  std::unordered_map<std::string, size_t> index_;
  std::unordered_map<std::string, std::string> metadata_;
};

// Element size of a safetensors dtype as stored.
size_t elementSize(v4rt::DType dtype);

// Exact decode of F32 / BF16 / F16 / F8_E4M3 to float.
std::vector<float> toF32(const TensorView &tensor);
// I32 / I64 to int32, checking every value fits.
std::vector<int32_t> toI32(const TensorView &tensor);

// Scalar decoders (exact), shared with tests and the CPU reference paths.
float bf16ToFloat(uint16_t bits);
float f16ToFloat(uint16_t bits);
float f8e4m3ToFloat(uint8_t bits);

} // namespace v4c
