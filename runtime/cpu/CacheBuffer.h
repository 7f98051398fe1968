// One per-session cache slot on the CPU: rows of `width` floats.
//
// Two storages behind one API (row, rows, width, resizeRows):
//  - contiguous (the default): `data` holds rows x width floats;
//  - chunked (useChunks): rows live in fixed-size chunks shared between
//    copies of the buffer. Entries caches are append-only, so a forked
//    session shares every chunk with its source and copies a chunk only when
//    it writes into one that is still shared (copy-on-write). Sessions size
//    chunks to one page's rows, so a page's rows are contiguous in one chunk.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/cpu/CacheStorage.h"

namespace v4rt {

struct CacheBuffer {
  int64_t width = 0;
  int64_t rows = 0;        // rows currently valid (Entries) or allocated (Window, CompressState)
  std::vector<float> data; // rows * width (contiguous storage only)
  int64_t chunkRows = 0;   // > 0: chunked storage, `chunks` holds the rows
  std::vector<std::shared_ptr<std::vector<float>>> chunks;
  // Chunked: each valid row's address, so reading a row (the kernels' hot
  // path) is one load rather than a division and two.
  std::vector<float *> rowAddresses;
  // Entries: rows [0, frozenRows) were restored from the prefix cache and are
  // kept while a session re-runs their tokens to rebuild its window state;
  // the compressor leaves them as they are (and appends after them).
  int64_t frozenRows = 0;
  // The slot's storage format: rows hold f32 values, but the kernels store
  // rows through storeCacheRow, which rounds them to this format. (Last, so
  // brace-initialised buffers {width, rows, data} stay valid.)
  CacheRowFormat format;

  // Switches an empty buffer to chunked storage of `rowsPerChunk` rows.
  void useChunks(int64_t rowsPerChunk) {
    chunkRows = rowsPerChunk;
    chunks.clear();
    rowAddresses.clear();
    data.clear();
    rows = 0;
  }

  // Writable row: a chunk still shared with another buffer is copied first.
  float *row(int64_t r) {
    if (chunkRows == 0)
      return data.data() + r * width;
    const int64_t c = r / chunkRows;
    std::shared_ptr<std::vector<float>> &chunk = chunks[static_cast<size_t>(c)];
    if (chunk.use_count() > 1) {
      chunk = std::make_shared<std::vector<float>>(*chunk);
      pointRowsAt(c * chunkRows, std::min(rows, (c + 1) * chunkRows));
    }
    return rowAddresses[static_cast<size_t>(r)];
  }
  const float *row(int64_t r) const {
    return chunkRows == 0 ? data.data() + r * width : rowAddresses[static_cast<size_t>(r)];
  }

  void resizeRows(int64_t newRows) {
    const int64_t oldRows = rows;
    rows = newRows;
    if (chunkRows == 0) {
      data.resize(static_cast<size_t>(newRows * width), 0.0f);
      return;
    }
    const size_t needed = static_cast<size_t>((newRows + chunkRows - 1) / chunkRows);
    chunks.resize(needed);
    for (std::shared_ptr<std::vector<float>> &chunk : chunks)
      if (!chunk)
        chunk = std::make_shared<std::vector<float>>(static_cast<size_t>(chunkRows * width), 0.0f);
    rowAddresses.resize(static_cast<size_t>(newRows));
    if (newRows > oldRows)
      pointRowsAt(oldRows, newRows);
  }

private:
  void pointRowsAt(int64_t first, int64_t end) {
    for (int64_t r = first; r < end; ++r)
      rowAddresses[static_cast<size_t>(r)] =
          chunks[static_cast<size_t>(r / chunkRows)]->data() + (r % chunkRows) * width;
  }
};

} // namespace v4rt
