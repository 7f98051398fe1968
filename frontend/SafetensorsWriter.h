// Writes .safetensors files (tiny test models, re-sharded checkpoints). The
// output is what SafetensorsFile::open accepts: header padded to 8 bytes,
// tensors packed back to back in the given order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace v4c {

struct TensorToWrite {
  std::string name;
  std::string dtype; // safetensors spelling: "F32", "BF16", "I64", ...
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes; // little-endian, row-major
};

// Throws v4c::Error when a tensor's bytes disagree with shape x dtype, a name
// repeats, or the file cannot be written.
void writeSafetensors(const std::string &path, const std::vector<TensorToWrite> &tensors);

// Convenience: an F32 tensor from floats.
TensorToWrite f32Tensor(const std::string &name, std::vector<int64_t> shape, const std::vector<float> &values);

} // namespace v4c
