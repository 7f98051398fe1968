// The formats of Quantization.h: exact codes, round-to-nearest-even,
// saturation, ue8m0 scale choice, and round-trip error within each format's
// theoretical bound, edge blocks included.
#include "runtime/cpu/Quantization.h"

#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "common/Error.h"

namespace v4rt::quant {
namespace {

TEST(E4M3, EncodesExactValuesToTheirCodes) {
  EXPECT_EQ(encodeE4M3(0.0f), 0x00);
  EXPECT_EQ(encodeE4M3(-0.0f), 0x80);
  EXPECT_EQ(encodeE4M3(1.0f), 0x38);       // exponent 7 = bias
  EXPECT_EQ(encodeE4M3(-2.0f), 0xC0);
  EXPECT_EQ(encodeE4M3(448.0f), 0x7E);     // the largest finite value
  EXPECT_EQ(encodeE4M3(std::ldexp(1.0f, -6)), 0x08); // smallest normal
  EXPECT_EQ(encodeE4M3(std::ldexp(1.0f, -9)), 0x01); // smallest subnormal
  EXPECT_EQ(decodeE4M3(0x7E), 448.0f);
  EXPECT_EQ(decodeE4M3(0x01), std::ldexp(1.0f, -9));
  EXPECT_EQ(decodeE4M3(0xB4), -0.75f);
  EXPECT_TRUE(std::isnan(decodeE4M3(0x7F)));
  EXPECT_TRUE(std::isnan(decodeE4M3(0xFF)));
}

TEST(E4M3, EveryFiniteCodeRoundTrips) {
  for (int code = 0; code < 256; ++code) {
    if ((code & 0x7F) == 0x7F)
      continue; // NaN
    EXPECT_EQ(encodeE4M3(decodeE4M3(static_cast<uint8_t>(code))), code) << "code " << code;
  }
}

TEST(E4M3, RoundsHalfwayCasesToEvenAndSaturates) {
  // Between 1.0 (mantissa 0) and 1.125 (mantissa 1): the tie goes to 1.0.
  EXPECT_EQ(decodeE4M3(encodeE4M3(1.0625f)), 1.0f);
  // Between 1.125 (odd) and 1.25 (even): the tie goes to 1.25.
  EXPECT_EQ(decodeE4M3(encodeE4M3(1.1875f)), 1.25f);
  EXPECT_EQ(decodeE4M3(encodeE4M3(1.07f)), 1.125f);
  // Subnormal tie: 1.5 * 2^-9 lies between codes 1 and 2 -> 2 (even).
  EXPECT_EQ(encodeE4M3(1.5f * std::ldexp(1.0f, -9)), 0x02);
  // 464 is the midpoint between 448 and the NaN code's value: still 448.
  EXPECT_EQ(decodeE4M3(encodeE4M3(464.0f)), 448.0f);
  EXPECT_EQ(decodeE4M3(encodeE4M3(1.0e6f)), 448.0f);
  EXPECT_EQ(decodeE4M3(encodeE4M3(-INFINITY)), -448.0f);
  EXPECT_EQ(encodeE4M3(NAN), 0x7F);
}

TEST(E2M1, EncodesTheEightMagnitudes) {
  const float magnitudes[] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  for (uint8_t code = 0; code < 8; ++code) {
    EXPECT_EQ(encodeE2M1(magnitudes[code]), code);
    EXPECT_EQ(encodeE2M1(-magnitudes[code]), code == 0 ? 0x8 : (0x8 | code));
    EXPECT_EQ(decodeE2M1(code), magnitudes[code]);
    EXPECT_EQ(decodeE2M1(0x8 | code), -magnitudes[code]);
  }
}

TEST(E2M1, RoundsTiesToEvenCodesAndSaturatesAtSix) {
  EXPECT_EQ(decodeE2M1(encodeE2M1(0.25f)), 0.0f);  // 0 | 0.5 -> code 0
  EXPECT_EQ(decodeE2M1(encodeE2M1(0.75f)), 1.0f);  // 0.5 | 1 -> code 2
  EXPECT_EQ(decodeE2M1(encodeE2M1(1.25f)), 1.0f);  // 1 | 1.5 -> code 2
  EXPECT_EQ(decodeE2M1(encodeE2M1(2.5f)), 2.0f);   // 2 | 3 -> code 4
  EXPECT_EQ(decodeE2M1(encodeE2M1(3.5f)), 4.0f);   // 3 | 4 -> code 6
  EXPECT_EQ(decodeE2M1(encodeE2M1(5.0f)), 4.0f);   // 4 (code 6) | 6 (code 7) -> even code 6
  EXPECT_EQ(decodeE2M1(encodeE2M1(5.1f)), 6.0f);
  EXPECT_EQ(decodeE2M1(encodeE2M1(4.9f)), 4.0f);
  EXPECT_EQ(decodeE2M1(encodeE2M1(100.0f)), 6.0f);
  EXPECT_EQ(decodeE2M1(encodeE2M1(-7.0f)), -6.0f);
}

TEST(Ue8m0, ChoosesTheSmallestPowerOfTwoThatFits) {
  EXPECT_EQ(decodeUe8m0(chooseUe8m0(448.0f, kE4M3Max)), 1.0f);
  EXPECT_EQ(decodeUe8m0(chooseUe8m0(448.5f, kE4M3Max)), 2.0f);
  EXPECT_EQ(decodeUe8m0(chooseUe8m0(1.0f, kE4M3Max)), 0.00390625f); // 1/256: 1*256 = 256 <= 448, 512 > 448
  EXPECT_EQ(decodeUe8m0(chooseUe8m0(6.0f, kE2M1Max)), 1.0f);
  EXPECT_EQ(decodeUe8m0(chooseUe8m0(6.01f, kE2M1Max)), 2.0f);
  EXPECT_EQ(decodeUe8m0(chooseUe8m0(3.0f, kE2M1Max)), 0.5f);
  EXPECT_EQ(chooseUe8m0(0.0f, kE4M3Max), 127); // all-zero block: s = 1
  EXPECT_TRUE(std::isnan(decodeUe8m0(0xFF)));
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> exponent(-30.0f, 30.0f);
  for (int i = 0; i < 1000; ++i) {
    const float amax = std::exp2(exponent(rng));
    const float s = decodeUe8m0(chooseUe8m0(amax, kE4M3Max));
    EXPECT_LE(amax / s, kE4M3Max) << amax;
    EXPECT_GT(amax / (s / 2), kE4M3Max) << amax; // the next smaller power of two overflows
  }
}

// Theoretical per-element bounds after scaling by the block scale s.
float e4m3Bound(float value, float s) {
  // 3 mantissa bits: half an ulp is 2^-4 relative for normals; subnormals
  // (below 2^-6 * s) have a fixed step of 2^-9 * s.
  return std::max(std::ldexp(std::fabs(value), -4), std::ldexp(s, -10));
}
float e2m1Bound(float value, float s) {
  // Half the gap between the representable neighbours of |value| / s.
  const float scaled = std::fabs(value) / s;
  const float gap = scaled < 2.0f ? 0.5f : scaled < 4.0f ? 1.0f : 2.0f;
  return gap / 2 * s;
}

struct Case {
  int64_t rows, cols;
  BlockShape block;
};

void checkRoundTrip(Format format, const Case &c) {
  std::mt19937 rng(static_cast<unsigned>(c.rows * 131 + c.cols));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> values(c.rows * c.cols);
  for (int64_t i = 0; i < c.rows * c.cols; ++i) // a wide dynamic range across blocks
    values[i] = normal(rng) * std::exp2(static_cast<float>((i / c.cols) % 7) - 3.0f);
  std::vector<uint8_t> codes(values.size()), scales(scaleCount(c.rows, c.cols, c.block));
  quantizeBlocks(values.data(), c.rows, c.cols, c.block, format, codes.data(), scales.data());
  std::vector<float> back(values.size());
  dequantizeBlocks(codes.data(), scales.data(), c.rows, c.cols, c.block, format, back.data());
  const int64_t blockCols = ceilDiv(c.cols, c.block.cols);
  for (int64_t r = 0; r < c.rows; ++r)
    for (int64_t col = 0; col < c.cols; ++col) {
      const float v = values[r * c.cols + col];
      const float s = decodeUe8m0(scales[(r / c.block.rows) * blockCols + col / c.block.cols]);
      const float bound = format == Format::E4M3 ? e4m3Bound(v, s) : e2m1Bound(v, s);
      ASSERT_LE(std::fabs(back[r * c.cols + col] - v), bound)
          << "element [" << r << ", " << col << "] = " << v << ", scale " << s;
    }
}

TEST(BlockQuantization, E4M3RoundTripWithin2ToTheMinus4Relative) {
  checkRoundTrip(Format::E4M3, {256, 384, {128, 128}});
  checkRoundTrip(Format::E4M3, {200, 300, {128, 128}}); // partial edge blocks both ways
  checkRoundTrip(Format::E4M3, {5, 7, {128, 128}});     // one partial block
}

TEST(BlockQuantization, E2M1RoundTripWithinHalfTheGap) {
  checkRoundTrip(Format::E2M1, {64, 96, {1, 32}});
  checkRoundTrip(Format::E2M1, {3, 70, {1, 32}}); // last block of each row has 6 columns
}

TEST(BlockQuantization, EdgeBlocksGetTheirOwnScale) {
  // 3 x 5 with 2 x 2 blocks: 2 x 3 scales; the right column block holds only
  // column 4, the bottom row block only row 2.
  std::vector<float> values(15, 0.25f);
  values[4] = 96.0f;       // [0, 4]: right edge block
  values[2 * 5 + 0] = 8.0f; // [2, 0]: bottom edge block
  std::vector<uint8_t> codes(15), scales(6);
  ASSERT_EQ(scaleCount(3, 5, {2, 2}), 6);
  quantizeBlocks(values.data(), 3, 5, {2, 2}, Format::E4M3, codes.data(), scales.data());
  EXPECT_EQ(decodeUe8m0(scales[0]), 1.0f / 1024); // amax 0.25: 0.25 * 1024 = 256 <= 448
  EXPECT_EQ(decodeUe8m0(scales[2]), 0.25f);       // amax 96: 384 <= 448 < 768
  EXPECT_EQ(decodeUe8m0(scales[3]), 1.0f / 32);   // amax 8
  EXPECT_EQ(decodeUe8m0(scales[5]), 1.0f / 1024);
  std::vector<float> back(15);
  dequantizeBlocks(codes.data(), scales.data(), 3, 5, {2, 2}, Format::E4M3, back.data());
  EXPECT_EQ(back, values); // all values are exact in e4m3 after power-of-two scaling
}

TEST(BlockQuantization, RejectsNonFiniteWeights) {
  std::vector<float> values = {1.0f, NAN};
  std::vector<uint8_t> codes(2), scales(1);
  EXPECT_THROW(quantizeBlocks(values.data(), 1, 2, {1, 32}, Format::E4M3, codes.data(), scales.data()),
               v4c::Error);
}

TEST(ActivationQuantization, OneScalePer128Group) {
  std::vector<float> x(2 * 200);
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = std::sin(static_cast<float>(i)) * (i % 200 < 128 ? 1.0f : 1000.0f);
  std::vector<uint8_t> codes(x.size()), scales(2 * 2);
  quantizeActivations(x.data(), 2, 200, kActivationGroup, codes.data(), scales.data());
  for (int64_t t = 0; t < 2; ++t) {
    EXPECT_EQ(decodeUe8m0(scales[t * 2]), 1.0f / 256);  // amax ~1 -> 2^-8
    EXPECT_EQ(decodeUe8m0(scales[t * 2 + 1]), 4.0f);    // amax ~1000 -> 4
    for (int64_t c = 0; c < 200; ++c) {
      const float v = x[t * 200 + c];
      const float s = decodeUe8m0(scales[t * 2 + c / 128]);
      EXPECT_LE(std::fabs(decodeE4M3(codes[t * 200 + c]) * s - v), e4m3Bound(v, s));
    }
  }
}

} // namespace
} // namespace v4rt::quant
