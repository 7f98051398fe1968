// Device element types -> float on the host (logits, step outputs read back
// for the compare tool).
#pragma once

#include <cstddef>
#include <cstdint>

#include "runtime/artifact/Program.h"

namespace v4rt::cuda {

float bf16ToFloat(uint16_t bits);
float f16ToFloat(uint16_t bits);
float e4m3ToFloat(uint8_t bits);

// `count` elements of `dtype` at `data` -> out[0..count). Integers convert by
// value.
void convertToFloat(const void *data, DType dtype, size_t count, float *out);

} // namespace v4rt::cuda
