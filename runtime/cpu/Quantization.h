// The numerics of v4c's quantized formats, defined once: the compiler uses
// them to write quantized weights, the CPU kernels to run them, the tests to
// bound their error (docs/quantization.md explains the choices).
//
//   e4m3 (fp8, "FN" variant): 1 sign, 4 exponent (bias 7), 3 mantissa bits;
//        max 448, no infinities, 0x7F/0xFF are NaN. Encoding rounds to nearest
//        even and saturates at +-448.
//   e2m1 (fp4): 1 sign, 2 exponent, 1 mantissa bit: +-{0, 0.5, 1, 1.5, 2, 3, 4, 6};
//        stored as one code per byte (low nibble, bit 3 = sign).
//   ue8m0 scales: one byte e, value 2^(e - 127); the scale of a block is the
//        smallest power of two s with amax / s <= the format's max, so the
//        division by s is exact and all error comes from rounding the element.
#pragma once

#include <cstdint>
#include <vector>

namespace v4rt::quant {

enum class Format : uint8_t { E4M3 = 0, E2M1 = 1 };

constexpr float kE4M3Max = 448.0f;
constexpr float kE2M1Max = 6.0f;
// DeepSeek's activation blocks: one scale per 1 x 128 channels.
constexpr int64_t kActivationGroup = 128;

uint8_t encodeE4M3(float value);
float decodeE4M3(uint8_t code);
uint8_t encodeE2M1(float value);
float decodeE2M1(uint8_t code);
float formatMax(Format format);
uint8_t encode(Format format, float value);
float decode(Format format, uint8_t code);

// The ue8m0 byte of the smallest power of two s with amax / s <= maxValue
// (amax 0 gives s = 1). Exponents clamp to the byte's range [-127, 127].
uint8_t chooseUe8m0(float amax, float maxValue);
float decodeUe8m0(uint8_t scale);

// A block of `rows` x `cols` elements of the trailing two dimensions (the
// weight of v4.linear is [N, K] with blocks [128, 128]; experts [E, N, K]
// with blocks [1, 32]: leading dimensions are just more rows).
struct BlockShape {
  int64_t rows = 1;
  int64_t cols = 1;
};

inline int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Scales of a [rows, cols] matrix: [ceil(rows/block.rows), ceil(cols/block.cols)]
// row-major; edge blocks are partial and scaled by their own amax.
int64_t scaleCount(int64_t rows, int64_t cols, BlockShape block);

// codes[rows*cols] (row-major, one code per element) and scales[scaleCount].
// Throws v4c::Error when a value is not finite (a checkpoint with NaN/Inf).
void quantizeBlocks(const float *values, int64_t rows, int64_t cols, BlockShape block, Format format,
                    uint8_t *codes, uint8_t *scales);
void dequantizeBlocks(const uint8_t *codes, const uint8_t *scales, int64_t rows, int64_t cols,
                      BlockShape block, Format format, float *values);

// Run-time activation quantization (DeepSeek's act_quant with ue8m0 scales):
// each row of x [T, K] in groups of `group` channels -> e4m3 codes [T, K]
// and scales [T, ceil(K/group)]. NaN/Inf activations propagate as NaN codes.
void quantizeActivations(const float *x, int64_t T, int64_t K, int64_t group, uint8_t *codes,
                         uint8_t *scales);

// Decode tables: index = code.
const float *e4m3Table();
const float *e2m1Table(); // 16 entries

} // namespace v4rt::quant
