// KV cache row formats: rounding, error bounds, bytes on disk.
#include "runtime/cpu/CacheStorage.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "common/Error.h"
#include "runtime/cpu/CacheBuffer.h"
#include "runtime/cpu/Quantization.h"

namespace v4rt {
namespace {

const CacheRowFormat kF32{DType::F32, 0};
const CacheRowFormat kBf16{DType::BF16, 0};

// Values spread over many binades (kv rows after rms norm are O(1), but
// entries and keys vary), with either sign.
std::vector<float> randomRow(std::mt19937 &rng, int64_t width, float exponentLow, float exponentHigh) {
  std::uniform_real_distribution<float> exponent(exponentLow, exponentHigh);
  std::bernoulli_distribution negative(0.5);
  std::vector<float> row(static_cast<size_t>(width));
  for (float &value : row)
    value = (negative(rng) ? -1.0f : 1.0f) * std::exp2(exponent(rng));
  return row;
}

uint32_t bitsOf(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

TEST(CacheStorage, Bf16RoundsToNearestEven) {
  EXPECT_EQ(roundToBf16(1.0f + std::ldexp(1.0f, -8)), 1.0f);                               // tie -> even
  EXPECT_EQ(roundToBf16(1.0f + 3 * std::ldexp(1.0f, -8)), 1.0f + std::ldexp(1.0f, -6));   // tie -> even
  EXPECT_EQ(roundToBf16(1.0f + 1.5f * std::ldexp(1.0f, -8)), 1.0f + std::ldexp(1.0f, -7)); // above half
  EXPECT_EQ(roundToBf16(-3.0f), -3.0f);
  EXPECT_EQ(encodeBf16(1.0f), 0x3F80);
  EXPECT_TRUE(std::isinf(roundToBf16(std::numeric_limits<float>::infinity())));
  EXPECT_TRUE(std::isnan(roundToBf16(std::numeric_limits<float>::quiet_NaN())));
  // The largest float rounds up past bf16's largest finite value.
  EXPECT_TRUE(std::isinf(roundToBf16(std::numeric_limits<float>::max())));
}

// bf16 keeps 8 significant bits: |x - bf16(x)| <= 2^-8 |x| (half an ulp).
TEST(CacheStorage, Bf16RoundTripWithinBound) {
  std::mt19937 rng(7);
  const int64_t width = 512;
  std::vector<float> row = randomRow(rng, width, -20.0f, 20.0f), stored(width);
  roundCacheRows(kBf16, row.data(), 1, width, stored.data());
  double worst = 0.0;
  for (int64_t c = 0; c < width; ++c) {
    const double error = std::fabs(static_cast<double>(row[c]) - stored[c]) / std::fabs(row[c]);
    worst = std::max(worst, error);
    EXPECT_LE(error, std::ldexp(1.0, -8)) << "channel " << c << " value " << row[c];
    EXPECT_EQ(bitsOf(stored[c]) & 0xFFFFu, 0u) << "not a bf16 value";
  }
  EXPECT_GT(worst, std::ldexp(1.0, -10)) << "nothing was rounded";
}

// e4m3 with a ue8m0 scale s per 64 channels: |x - q(x)| <= max(2^-4 |x|, 2^-10 s),
// i.e. 2^-4 of the scale-relative value x/s, or half the subnormal step.
// The rope channels are bf16.
void expectFp8RowWithinBound(const std::vector<float> &row, const std::vector<float> &stored,
                             int64_t ropeWidth) {
  const int64_t width = static_cast<int64_t>(row.size()), nope = width - ropeWidth;
  for (int64_t g = 0; g < nope; g += kCacheScaleGroup) {
    const int64_t end = std::min(nope, g + kCacheScaleGroup);
    float amax = 0.0f;
    for (int64_t c = g; c < end; ++c)
      amax = std::max(amax, std::fabs(row[c]));
    const double s = quant::decodeUe8m0(quant::chooseUe8m0(amax, quant::kE4M3Max));
    EXPECT_LE(amax / s, quant::kE4M3Max);
    EXPECT_GT(amax / s, quant::kE4M3Max / 2) << "scale is not the smallest power of two";
    for (int64_t c = g; c < end; ++c) {
      const double error = std::fabs(static_cast<double>(row[c]) - stored[c]);
      EXPECT_LE(error, std::max(std::ldexp(std::fabs(static_cast<double>(row[c])), -4), std::ldexp(s, -10)))
          << "channel " << c << " value " << row[c] << " stored " << stored[c];
      // The stored value is an e4m3 code times s.
      EXPECT_EQ(quant::decodeE4M3(quant::encodeE4M3(static_cast<float>(stored[c] / s))) * s, stored[c]);
    }
  }
  for (int64_t c = nope; c < width; ++c) {
    EXPECT_LE(std::fabs(static_cast<double>(row[c]) - stored[c]), std::ldexp(std::fabs(static_cast<double>(row[c])), -8));
    EXPECT_EQ(bitsOf(stored[c]) & 0xFFFFu, 0u) << "rope channel " << c << " is not bf16";
  }
}

TEST(CacheStorage, Fp8RowWithinBound) {
  std::mt19937 rng(11);
  // V4-Flash's kv row: 448 e4m3 channels in 7 groups, 64 bf16 rope channels.
  const CacheRowFormat format{DType::F8E4M3, 64};
  const int64_t width = 512;
  for (int trial = 0; trial < 8; ++trial) {
    std::vector<float> row = randomRow(rng, width, -12.0f, 6.0f), stored(width);
    // One group much larger than the rest: each group must have its own scale.
    for (int64_t c = 64; c < 128; ++c)
      row[c] *= 1000.0f;
    roundCacheRows(format, row.data(), 1, width, stored.data());
    expectFp8RowWithinBound(row, stored, format.ropeWidth);
  }
}

TEST(CacheStorage, Fp8PartialGroupAndNoRope) {
  std::mt19937 rng(13);
  // A tiny model's kv row (28 e4m3 channels: one partial group) and indexer
  // keys (rope 0: every channel e4m3, 80 = a full and a partial group).
  for (auto [width, rope] : {std::pair<int64_t, int64_t>{32, 4}, {80, 0}, {16, 0}}) {
    const CacheRowFormat format{DType::F8E4M3, rope};
    std::vector<float> row = randomRow(rng, width, -6.0f, 3.0f), stored(width);
    roundCacheRows(format, row.data(), 1, width, stored.data());
    expectFp8RowWithinBound(row, stored, rope);
  }
}

TEST(CacheStorage, RowBytes) {
  EXPECT_EQ(cacheRowBytes(kF32, 512), 2048u);
  EXPECT_EQ(cacheRowBytes(kBf16, 512), 1024u);
  EXPECT_EQ(cacheRowBytes({DType::F8E4M3, 64}, 512), 448u + 7u + 128u);
  EXPECT_EQ(cacheRowBytes({DType::F8E4M3, 0}, 128), 128u + 2u); // V4-Flash indexer key
  EXPECT_EQ(cacheRowBytes({DType::F8E4M3, 4}, 32), 28u + 1u + 8u);
  EXPECT_THROW(cacheRowBytes({DType::I32, 0}, 8), v4c::Error);
}

// Pages hold the encoded bytes: decoding a stored (rounded) row gives the
// exact same floats, so a restored session continues bit-identically.
TEST(CacheStorage, EncodeDecodeOfStoredRowsIsExact) {
  std::mt19937 rng(17);
  const int64_t width = 200, rows = 5;
  for (const CacheRowFormat &format : {kF32, kBf16, CacheRowFormat{DType::F8E4M3, 8},
                                       CacheRowFormat{DType::F8E4M3, 0}}) {
    std::vector<float> values;
    for (int64_t r = 0; r < rows; ++r) {
      std::vector<float> row = randomRow(rng, width, -30.0f, 8.0f);
      values.insert(values.end(), row.begin(), row.end());
    }
    values[3] = 0.0f; // zeros and an all-zero group survive
    std::fill(values.begin() + width, values.begin() + width + kCacheScaleGroup, 0.0f);
    std::vector<float> stored(values.size()), decoded(values.size(), -1.0f);
    roundCacheRows(format, values.data(), rows, width, stored.data());
    std::vector<uint8_t> bytes(cacheRowBytes(format, width) * rows);
    encodeCacheRows(format, stored.data(), rows, width, bytes.data());
    decodeCacheRows(format, bytes.data(), rows, width, decoded.data());
    for (size_t i = 0; i < stored.size(); ++i)
      ASSERT_EQ(bitsOf(decoded[i]), bitsOf(stored[i])) << cacheDTypeName(format.dtype) << " element " << i;
    // Storing a stored row again changes nothing.
    std::vector<float> again(stored.size());
    roundCacheRows(format, stored.data(), rows, width, again.data());
    EXPECT_EQ(0, std::memcmp(again.data(), stored.data(), sizeof(float) * stored.size()));
  }
}

TEST(CacheStorage, StoreCacheRowRoundsToTheBufferFormat) {
  const int64_t width = 32;
  std::vector<float> row(width);
  for (int64_t c = 0; c < width; ++c)
    row[c] = 0.1f * static_cast<float>(c + 1) + 1e-3f;
  CacheBuffer f32, fp8;
  f32.width = fp8.width = width;
  fp8.format = {DType::F8E4M3, 4};
  f32.resizeRows(2);
  fp8.resizeRows(2);
  storeCacheRow(f32, 1, row.data());
  storeCacheRow(fp8, 1, row.data());
  EXPECT_EQ(0, std::memcmp(f32.row(1), row.data(), sizeof(float) * width)) << "f32 stores as is";
  std::vector<float> expected(width);
  roundCacheRows(fp8.format, row.data(), 1, width, expected.data());
  EXPECT_EQ(0, std::memcmp(fp8.row(1), expected.data(), sizeof(float) * width));
  EXPECT_NE(fp8.row(1)[0], row[0]) << "0.101 is not an e4m3 value times a power of two";
  EXPECT_EQ(fp8.row(0)[0], 0.0f) << "other rows untouched";
}

TEST(CacheStorage, SlotFormatsTheCpuCannotStoreAreErrors) {
  CacheSlot slot;
  slot.name = "layers.1.window";
  slot.width = 32;
  slot.dtype = DType::F8E4M3;
  slot.ropeWidth = 4;
  EXPECT_EQ(cacheRowFormat(slot), (CacheRowFormat{DType::F8E4M3, 4}));
  slot.ropeWidth = 32;
  EXPECT_THROW(cacheRowFormat(slot), v4c::Error);
  slot.dtype = DType::BF16;
  EXPECT_THROW(cacheRowFormat(slot), v4c::Error) << "rope width on a bf16 slot";
  slot.ropeWidth = 0;
  slot.kind = CacheKind::CompressState;
  EXPECT_THROW(cacheRowFormat(slot), v4c::Error) << "compressor state must stay f32";
  slot.kind = CacheKind::Window;
  slot.dtype = DType::I32;
  EXPECT_THROW(cacheRowFormat(slot), v4c::Error);
}

} // namespace
} // namespace v4rt
