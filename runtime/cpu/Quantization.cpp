// e4m3 / e2m1 / ue8m0 numerics and block (de)quantization (see Quantization.h).
#include "runtime/cpu/Quantization.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>

#include "common/Error.h"

namespace v4rt::quant {

namespace {

constexpr uint8_t kE4M3NaN = 0x7F;
constexpr uint8_t kE4M3MaxCode = 0x7E; // 1.75 * 2^8 = 448

// The magnitudes e2m1 codes 0..7 stand for.
constexpr std::array<float, 8> kE2M1Magnitudes = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};

float decodeE4M3Slow(uint8_t code) {
  const float sign = (code & 0x80) ? -1.0f : 1.0f;
  const int exponent = (code >> 3) & 0xF;
  const int mantissa = code & 0x7;
  if (exponent == 0xF && mantissa == 0x7)
    return std::numeric_limits<float>::quiet_NaN();
  if (exponent == 0) // subnormal: m * 2^-9
    return sign * std::ldexp(static_cast<float>(mantissa), -9);
  return sign * std::ldexp(1.0f + mantissa / 8.0f, exponent - 7);
}

} // namespace

uint8_t encodeE4M3(float value) {
  if (std::isnan(value))
    return kE4M3NaN;
  const uint8_t sign = std::signbit(value) ? 0x80 : 0x00;
  const float magnitude = std::fabs(value);
  if (magnitude >= kE4M3Max) // saturate (also +-inf): the FN format has no infinity
    return sign | kE4M3MaxCode;
  if (magnitude < std::ldexp(1.0f, -6)) {
    // Subnormal range: steps of 2^-9. nearbyint rounds half to even, and
    // q == 8 is exactly the code of the smallest normal 2^-6.
    const auto q = static_cast<uint8_t>(std::nearbyint(std::ldexp(magnitude, 9)));
    return sign | q;
  }
  int exponent = 0;
  const float fraction = std::frexp(magnitude, &exponent); // magnitude = fraction * 2^exponent, fraction in [0.5, 1)
  exponent -= 1;                                          // magnitude = (2 * fraction) * 2^exponent
  // (2f - 1) * 8 is exact in float; nearbyint rounds its half-way cases to even.
  auto mantissa = static_cast<int>(std::nearbyint((2.0f * fraction - 1.0f) * 8.0f));
  if (mantissa == 8) {
    mantissa = 0;
    ++exponent;
  }
  // magnitude < 448 keeps (exponent, mantissa) <= (8, 6): never the NaN code.
  return sign | static_cast<uint8_t>(((exponent + 7) << 3) | mantissa);
}

float decodeE4M3(uint8_t code) { return e4m3Table()[code]; }

uint8_t encodeE2M1(float value) {
  if (std::isnan(value))
    throw v4c::Error("e2m1 cannot represent NaN");
  const uint8_t sign = std::signbit(value) ? 0x8 : 0x0;
  const float magnitude = std::min(std::fabs(value), kE2M1Max); // saturate at 6
  // Nearest magnitude; a tie goes to the even code (even mantissa bit).
  uint8_t best = 0;
  float bestDistance = std::numeric_limits<float>::infinity();
  for (uint8_t code = 0; code < 8; ++code) {
    const float distance = std::fabs(magnitude - kE2M1Magnitudes[code]);
    if (distance < bestDistance || (distance == bestDistance && code % 2 == 0)) {
      best = code;
      bestDistance = distance;
    }
  }
  return sign | best;
}

float decodeE2M1(uint8_t code) { return e2m1Table()[code & 0xF]; }

float formatMax(Format format) { return format == Format::E4M3 ? kE4M3Max : kE2M1Max; }

uint8_t encode(Format format, float value) {
  return format == Format::E4M3 ? encodeE4M3(value) : encodeE2M1(value);
}

float decode(Format format, uint8_t code) {
  return format == Format::E4M3 ? decodeE4M3(code) : decodeE2M1(code);
}

uint8_t chooseUe8m0(float amax, float maxValue) {
  if (!(amax > 0.0f) || !std::isfinite(amax))
    return 127; // s = 1: an all-zero block (a non-finite one is rejected by the caller)
  // Smallest integer e with amax / 2^e <= maxValue; frexp gives a first guess,
  // the loops make it exact regardless of rounding in the ratio.
  int exponent = 0;
  std::frexp(amax / maxValue, &exponent);
  while (exponent > -127 && std::ldexp(maxValue, exponent - 1) >= amax)
    --exponent;
  while (std::ldexp(maxValue, exponent) < amax)
    ++exponent;
  exponent = std::clamp(exponent, -127, 127);
  return static_cast<uint8_t>(exponent + 127);
}

float decodeUe8m0(uint8_t scale) {
  if (scale == 0xFF)
    return std::numeric_limits<float>::quiet_NaN(); // the format's NaN
  return std::ldexp(1.0f, static_cast<int>(scale) - 127);
}

int64_t scaleCount(int64_t rows, int64_t cols, BlockShape block) {
  return ceilDiv(rows, block.rows) * ceilDiv(cols, block.cols);
}

void quantizeBlocks(const float *values, int64_t rows, int64_t cols, BlockShape block, Format format,
                    uint8_t *codes, uint8_t *scales) {
  v4c::check(block.rows > 0 && block.cols > 0, "quantization block sizes must be positive");
  const int64_t blockCols = ceilDiv(cols, block.cols);
  const float maxValue = formatMax(format);
  for (int64_t r0 = 0; r0 < rows; r0 += block.rows) {
    const int64_t r1 = std::min(rows, r0 + block.rows);
    for (int64_t c0 = 0; c0 < cols; c0 += block.cols) {
      const int64_t c1 = std::min(cols, c0 + block.cols);
      float amax = 0.0f;
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c) {
          const float v = values[r * cols + c];
          if (!std::isfinite(v))
            throw v4c::Error("cannot quantize a non-finite weight value at [" + std::to_string(r) + ", " +
                             std::to_string(c) + "]");
          amax = std::max(amax, std::fabs(v));
        }
      const uint8_t scale = chooseUe8m0(amax, maxValue);
      scales[(r0 / block.rows) * blockCols + c0 / block.cols] = scale;
      // Dividing by a power of two is exact (barring underflow far below any weight).
      const float inverse = std::ldexp(1.0f, 127 - static_cast<int>(scale));
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c)
          codes[r * cols + c] = encode(format, values[r * cols + c] * inverse);
    }
  }
}

void dequantizeBlocks(const uint8_t *codes, const uint8_t *scales, int64_t rows, int64_t cols,
                      BlockShape block, Format format, float *values) {
  const int64_t blockCols = ceilDiv(cols, block.cols);
  const float *table = format == Format::E4M3 ? e4m3Table() : e2m1Table();
  const uint8_t mask = format == Format::E4M3 ? 0xFF : 0x0F;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const float s = decodeUe8m0(scales[(r / block.rows) * blockCols + c / block.cols]);
      values[r * cols + c] = table[codes[r * cols + c] & mask] * s;
    }
}

void quantizeActivations(const float *x, int64_t T, int64_t K, int64_t group, uint8_t *codes,
                         uint8_t *scales) {
  const int64_t groups = ceilDiv(K, group);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t c0 = g * group, c1 = std::min(K, c0 + group);
      const float *row = x + t * K;
      float amax = 0.0f;
      for (int64_t c = c0; c < c1; ++c)
        amax = std::max(amax, std::fabs(row[c])); // NaN never wins max: its code below stays NaN
      const uint8_t scale = chooseUe8m0(amax, kE4M3Max);
      scales[t * groups + g] = scale;
      const float inverse = std::ldexp(1.0f, 127 - static_cast<int>(scale));
      for (int64_t c = c0; c < c1; ++c)
        codes[t * K + c] = encodeE4M3(row[c] * inverse);
    }
}

const float *e4m3Table() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> values{};
    for (int code = 0; code < 256; ++code)
      values[code] = decodeE4M3Slow(static_cast<uint8_t>(code));
    return values;
  }();
  return table.data();
}

const float *e2m1Table() {
  static const std::array<float, 16> table = [] {
    std::array<float, 16> values{};
    for (int code = 0; code < 16; ++code)
      values[code] = (code & 0x8 ? -1.0f : 1.0f) * kE2M1Magnitudes[code & 0x7];
    return values;
  }();
  return table.data();
}

} // namespace v4rt::quant
