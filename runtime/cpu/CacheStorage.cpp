// KV cache row formats (see CacheStorage.h).
#include "runtime/cpu/CacheStorage.h"

#include <cstring>
#include <string>
#include <vector>

#include "common/Error.h"
#include "runtime/cpu/CacheBuffer.h"
#include "runtime/cpu/Quantization.h"

namespace v4rt {
namespace {

int64_t scaleGroups(int64_t channels) { return quant::ceilDiv(channels, kCacheScaleGroup); }

// Per-thread scratch for one row's codes and scales (rows are a few hundred
// channels; the kernels store rows from one thread at a time per cache).
struct RowScratch {
  std::vector<uint8_t> codes, scales;
  void reserve(int64_t width) {
    if (static_cast<int64_t>(codes.size()) < width) {
      codes.resize(static_cast<size_t>(width));
      scales.resize(static_cast<size_t>(scaleGroups(width)));
    }
  }
};

// The e4m3 part of an fp8 row: DeepSeek's act_quant with ue8m0 scales, one
// per kCacheScaleGroup channels (a partial last group has its own amax).
void quantizeNope(const float *row, int64_t nope, uint8_t *codes, uint8_t *scales) {
  if (nope > 0)
    quant::quantizeActivations(row, 1, nope, kCacheScaleGroup, codes, scales);
}

float dequantizeNope(const uint8_t *codes, const uint8_t *scales, int64_t c) {
  return quant::decodeE4M3(codes[c]) * quant::decodeUe8m0(scales[c / kCacheScaleGroup]);
}

} // namespace

CacheRowFormat cacheRowFormat(const CacheSlot &slot) {
  CacheRowFormat format{slot.dtype, slot.ropeWidth};
  const std::string where = "cache slot " + slot.name + ": ";
  switch (slot.dtype) {
  case DType::F32:
  case DType::BF16:
    v4c::check(slot.ropeWidth == 0, where + "rope width " + std::to_string(slot.ropeWidth) +
                                        " is only meaningful for an f8e4m3 slot");
    break;
  case DType::F8E4M3:
    v4c::check(slot.ropeWidth >= 0 && slot.ropeWidth < slot.width,
               where + "rope width " + std::to_string(slot.ropeWidth) + " is outside [0, width " +
                   std::to_string(slot.width) + ")");
    break;
  default:
    throw v4c::Error(where + "stores " + cacheDTypeName(slot.dtype) +
                     "; the CPU backend stores cache rows as f32, bf16 or f8e4m3");
  }
  // The compressor's state is a running pool that the kernels update in
  // place: it is never rounded, so it must be declared f32.
  v4c::check(slot.kind != CacheKind::CompressState || slot.dtype == DType::F32,
             where + "compressor state must be f32 (it is a running pool, not stored kv), got " +
                 cacheDTypeName(slot.dtype));
  return format;
}

const char *cacheDTypeName(DType dtype) {
  switch (dtype) {
  case DType::F32:
    return "fp32";
  case DType::BF16:
    return "bf16";
  case DType::F8E4M3:
    return "fp8";
  case DType::F16:
    return "f16";
  case DType::I32:
    return "i32";
  case DType::I64:
    return "i64";
  case DType::U8:
    return "u8";
  }
  return "an unknown dtype";
}

uint16_t encodeBf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) // NaN: keep it a (quiet) NaN
    return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  // Round to nearest, ties to even: add 0x7FFF plus the kept part's lowest bit.
  bits += 0x7FFFu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

float decodeBf16(uint16_t bits) {
  const uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float value;
  std::memcpy(&value, &wide, sizeof value);
  return value;
}

void roundCacheRows(const CacheRowFormat &format, const float *src, int64_t count, int64_t width,
                    float *dst) {
  const int64_t total = count * width;
  switch (format.dtype) {
  case DType::F32:
    if (dst != src)
      std::memmove(dst, src, sizeof(float) * total);
    return;
  case DType::BF16:
    for (int64_t i = 0; i < total; ++i)
      dst[i] = roundToBf16(src[i]);
    return;
  case DType::F8E4M3: {
    thread_local RowScratch scratch;
    scratch.reserve(width);
    const int64_t nope = width - format.ropeWidth;
    for (int64_t r = 0; r < count; ++r) {
      const float *in = src + r * width;
      float *out = dst + r * width;
      quantizeNope(in, nope, scratch.codes.data(), scratch.scales.data());
      for (int64_t c = 0; c < nope; ++c)
        out[c] = dequantizeNope(scratch.codes.data(), scratch.scales.data(), c);
      for (int64_t c = nope; c < width; ++c)
        out[c] = roundToBf16(in[c]);
    }
    return;
  }
  default:
    throw v4c::Error(std::string("cache rows cannot be stored as ") + cacheDTypeName(format.dtype));
  }
}

void storeCacheRow(CacheBuffer &cache, int64_t row, const float *values) {
  roundCacheRows(cache.format, values, 1, cache.width, cache.row(row));
}

size_t cacheRowBytes(const CacheRowFormat &format, int64_t width) {
  switch (format.dtype) {
  case DType::F32:
    return sizeof(float) * static_cast<size_t>(width);
  case DType::BF16:
    return sizeof(uint16_t) * static_cast<size_t>(width);
  case DType::F8E4M3: {
    const int64_t nope = width - format.ropeWidth;
    return static_cast<size_t>(nope + scaleGroups(nope) + 2 * format.ropeWidth);
  }
  default:
    throw v4c::Error(std::string("cache rows cannot be stored as ") + cacheDTypeName(format.dtype));
  }
}

void encodeCacheRows(const CacheRowFormat &format, const float *rows, int64_t count, int64_t width,
                     uint8_t *out) {
  const size_t rowBytes = cacheRowBytes(format, width);
  for (int64_t r = 0; r < count; ++r, out += rowBytes) {
    const float *row = rows + r * width;
    switch (format.dtype) {
    case DType::F32:
      std::memcpy(out, row, rowBytes);
      break;
    case DType::BF16:
      for (int64_t c = 0; c < width; ++c) {
        const uint16_t bits = encodeBf16(row[c]);
        std::memcpy(out + 2 * c, &bits, sizeof bits);
      }
      break;
    default: { // F8E4M3 (cacheRowBytes rejected the rest)
      const int64_t nope = width - format.ropeWidth;
      uint8_t *scales = out + nope;
      uint8_t *rope = scales + scaleGroups(nope);
      quantizeNope(row, nope, out, scales);
      for (int64_t c = nope; c < width; ++c) {
        const uint16_t bits = encodeBf16(row[c]);
        std::memcpy(rope + 2 * (c - nope), &bits, sizeof bits);
      }
    }
    }
  }
}

void decodeCacheRows(const CacheRowFormat &format, const uint8_t *bytes, int64_t count, int64_t width,
                     float *rows) {
  const size_t rowBytes = cacheRowBytes(format, width);
  for (int64_t r = 0; r < count; ++r, bytes += rowBytes) {
    float *row = rows + r * width;
    switch (format.dtype) {
    case DType::F32:
      std::memcpy(row, bytes, rowBytes);
      break;
    case DType::BF16:
      for (int64_t c = 0; c < width; ++c) {
        uint16_t bits;
        std::memcpy(&bits, bytes + 2 * c, sizeof bits);
        row[c] = decodeBf16(bits);
      }
      break;
    default: {
      const int64_t nope = width - format.ropeWidth;
      const uint8_t *scales = bytes + nope;
      const uint8_t *rope = scales + scaleGroups(nope);
      for (int64_t c = 0; c < nope; ++c)
        row[c] = dequantizeNope(bytes, scales, c);
      for (int64_t c = nope; c < width; ++c) {
        uint16_t bits;
        std::memcpy(&bits, rope + 2 * (c - nope), sizeof bits);
        row[c] = decodeBf16(bits);
      }
    }
    }
  }
}

} // namespace v4rt
