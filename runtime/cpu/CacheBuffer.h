// One per-session cache slot on the CPU: rows of `width` floats.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace v4rt {

struct CacheBuffer {
  int64_t width = 0;
  int64_t rows = 0;        // rows currently valid (Entries) or allocated (Window, CompressState)
  std::vector<float> data; // rows * width

  float *row(int64_t r) { return data.data() + r * width; }
  const float *row(int64_t r) const { return data.data() + r * width; }
  void resizeRows(int64_t newRows) {
    rows = newRows;
    data.resize(static_cast<size_t>(newRows * width), 0.0f);
  }
};

} // namespace v4rt
