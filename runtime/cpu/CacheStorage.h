// How a KV cache slot stores its rows: f32, bf16, or V4's fp8 row (e4m3 codes
// with one ue8m0 scale per 64 channels, the last ropeWidth channels bf16).
//
// The CPU backend keeps every row as f32 values, but a narrow slot only ever
// holds values its format can represent: storeCacheRow is the one place a
// row is rounded, so attention and the indexer read exactly what a GPU cache
// in that format would hold. Pages on disk hold the real bytes
// (encodeCacheRows / decodeCacheRows, cacheRowBytes); docs/quantization.md,
// "KV cache", has the formats and the measured error.
#pragma once

#include <cstddef>
#include <cstdint>

#include "runtime/artifact/Program.h"

namespace v4rt {

struct CacheBuffer;

// e4m3 channels per ue8m0 scale: DeepSeek-V4 quantizes kv rows with
// act_quant(kv[..., :-rope_dim], 64) (448 = 7 groups at head_dim 512).
inline constexpr int64_t kCacheScaleGroup = 64;

struct CacheRowFormat {
  DType dtype = DType::F32; // F32, BF16 or F8E4M3
  int64_t ropeWidth = 0;    // F8E4M3: the last ropeWidth channels are stored bf16

  bool isF32() const { return dtype == DType::F32; }
  bool operator==(const CacheRowFormat &other) const {
    return dtype == other.dtype && ropeWidth == other.ropeWidth;
  }
};

// The format of a program's cache slot. Throws v4c::Error for one the CPU
// backend cannot store (compressor state must be f32; rope width out of range).
CacheRowFormat cacheRowFormat(const CacheSlot &slot);

// The --kv-cache spelling of a cache dtype: "fp32", "bf16", "fp8" (others:
// their lower-case dtype name).
const char *cacheDTypeName(DType dtype);

// bf16 round to nearest even (NaN stays NaN) and its 16-bit pattern.
uint16_t encodeBf16(float value);
float decodeBf16(uint16_t bits);
inline float roundToBf16(float value) { return decodeBf16(encodeBf16(value)); }

// Rounds `count` rows of `width` values to what `format` stores; src may
// equal dst.
void roundCacheRows(const CacheRowFormat &format, const float *src, int64_t count, int64_t width,
                    float *dst);

// Writes row `row` of `cache` from f32 values, rounded to the cache's format.
void storeCacheRow(CacheBuffer &cache, int64_t row, const float *values);

// Bytes one row of `width` channels takes in the format: f32 4*width, bf16
// 2*width, fp8 (width - rope) e4m3 codes + ceil((width - rope)/64) ue8m0
// scales + 2*rope bf16.
size_t cacheRowBytes(const CacheRowFormat &format, int64_t width);

// Row bytes in that layout (codes, then scales, then the bf16 rope part).
// Encoding rows a store has rounded and decoding them gives the same floats.
void encodeCacheRows(const CacheRowFormat &format, const float *rows, int64_t count, int64_t width,
                     uint8_t *out);
void decodeCacheRows(const CacheRowFormat &format, const uint8_t *bytes, int64_t count, int64_t width,
                     float *rows);

} // namespace v4rt
