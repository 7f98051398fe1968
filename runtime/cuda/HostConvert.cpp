#include "runtime/cuda/HostConvert.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "common/Error.h"

namespace v4rt::cuda {

float bf16ToFloat(uint16_t bits) {
  const uint32_t widened = static_cast<uint32_t>(bits) << 16;
  float value;
  std::memcpy(&value, &widened, sizeof value);
  return value;
}

float f16ToFloat(uint16_t bits) {
  const float sign = (bits & 0x8000u) ? -1.0f : 1.0f;
  const int exponent = (bits >> 10) & 0x1F;
  const int mantissa = bits & 0x3FF;
  if (exponent == 0)
    return sign * std::ldexp(static_cast<float>(mantissa), -24);
  if (exponent == 31)
    return mantissa ? std::numeric_limits<float>::quiet_NaN() : sign * std::numeric_limits<float>::infinity();
  return sign * std::ldexp(static_cast<float>(mantissa | 0x400), exponent - 25);
}

float e4m3ToFloat(uint8_t bits) {
  // e4m3 "FN": bias 7, no infinities, S.1111.111 is NaN.
  const float sign = (bits & 0x80u) ? -1.0f : 1.0f;
  const int exponent = (bits >> 3) & 0xF;
  const int mantissa = bits & 0x7;
  if (exponent == 15 && mantissa == 7)
    return std::numeric_limits<float>::quiet_NaN();
  if (exponent == 0)
    return sign * std::ldexp(static_cast<float>(mantissa), -9);
  return sign * std::ldexp(static_cast<float>(mantissa | 0x8), exponent - 10);
}

void convertToFloat(const void *data, DType dtype, size_t count, float *out) {
  const auto *bytes = static_cast<const uint8_t *>(data);
  switch (dtype) {
  case DType::F32:
    std::memcpy(out, data, count * sizeof(float));
    return;
  case DType::BF16:
  case DType::F16:
    for (size_t i = 0; i < count; ++i) {
      uint16_t bits;
      std::memcpy(&bits, bytes + 2 * i, sizeof bits);
      out[i] = dtype == DType::BF16 ? bf16ToFloat(bits) : f16ToFloat(bits);
    }
    return;
  case DType::F8E4M3:
    for (size_t i = 0; i < count; ++i)
      out[i] = e4m3ToFloat(bytes[i]);
    return;
  case DType::I32:
    for (size_t i = 0; i < count; ++i) {
      int32_t value;
      std::memcpy(&value, bytes + 4 * i, sizeof value);
      out[i] = static_cast<float>(value);
    }
    return;
  case DType::I64:
    for (size_t i = 0; i < count; ++i) {
      int64_t value;
      std::memcpy(&value, bytes + 8 * i, sizeof value);
      out[i] = static_cast<float>(value);
    }
    return;
  case DType::U8:
    for (size_t i = 0; i < count; ++i)
      out[i] = static_cast<float>(bytes[i]);
    return;
  }
  throw v4c::Error(std::string("cannot convert dtype ") + dtypeName(dtype) + " to float");
}

} // namespace v4rt::cuda
