// Offset arithmetic for weights far beyond 2 GiB / 4 GiB, on synthetic
// layouts that are never written, plus dtype sizes and ArgRef::byteSize.
#include <limits>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/Error.h"
#include "runtime/artifact/ArtifactTestSupport.h"
#include "runtime/artifact/WeightLayout.h"

namespace v4rt {
namespace {

using namespace artifact;
using testing_support::errorOf;
using ::testing::HasSubstr;

constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

Weight weight(const std::string &name, DType dtype, std::vector<int64_t> shape) {
  Weight result;
  result.name = name;
  result.dtype = dtype;
  result.shape = std::move(shape);
  return result;
}

TEST(DTypeTest, SizesAndNames) {
  EXPECT_EQ(dtypeSize(DType::F32), 4u);
  EXPECT_EQ(dtypeSize(DType::BF16), 2u);
  EXPECT_EQ(dtypeSize(DType::F16), 2u);
  EXPECT_EQ(dtypeSize(DType::F8E4M3), 1u);
  EXPECT_EQ(dtypeSize(DType::I32), 4u);
  EXPECT_EQ(dtypeSize(DType::I64), 8u);
  EXPECT_EQ(dtypeSize(DType::U8), 1u);
  EXPECT_STREQ(dtypeName(DType::BF16), "bf16");
  EXPECT_STREQ(dtypeName(DType::F8E4M3), "f8e4m3");
  EXPECT_STREQ(dtypeName(static_cast<DType>(42)), "unknown");
  EXPECT_EQ(errorOf([] { dtypeSize(static_cast<DType>(42)); }), "unknown dtype code 42");
}

TEST(ArgRefTest, ByteSizeIsCheckedForNegativeDimsAndOverflow) {
  ArgRef ref;
  ref.dtype = DType::BF16;
  ref.shape = {3, 5, 7};
  EXPECT_EQ(ref.byteSize(), 210u);
  ref.shape = {};
  EXPECT_EQ(ref.byteSize(), 2u); // a scalar
  ref.shape = {4, 0, 9};
  EXPECT_EQ(ref.byteSize(), 0u);
  ref.shape = {int64_t{1} << 31, int64_t{1} << 31}; // 2^62 elements * 2 bytes = 2^63: fits
  EXPECT_EQ(ref.byteSize(), uint64_t{1} << 63);
  ref.shape = {int64_t{1} << 32, int64_t{1} << 31}; // 2^64 bytes: overflows
  EXPECT_THAT(errorOf([&] { ref.byteSize(); }), HasSubstr("overflows 64 bits"));
  ref.shape = {2, -1};
  EXPECT_EQ(errorOf([&] { ref.byteSize(); }), "negative dimension -1 in a shape");
}

TEST(WeightLayoutTest, AlignUp) {
  EXPECT_EQ(alignUp(0, 4096), 0u);
  EXPECT_EQ(alignUp(1, 4096), 4096u);
  EXPECT_EQ(alignUp(4096, 4096), 4096u);
  EXPECT_EQ(alignUp(5 * kGiB + 1, 4096), 5 * kGiB + 4096);
  EXPECT_EQ(alignUp(kMax - 4095, 4096), kMax - 4095);
  EXPECT_THAT(errorOf([] { alignUp(kMax - 4094, 4096); }), HasSubstr("overflows 64 bits"));
}

TEST(WeightLayoutTest, LaysOutMultiGigabyteWeightsPastFourGiB) {
  std::vector<Weight> weights = {
      weight("embed", DType::BF16, {129280, 7168}),           // 1,853,358,080 bytes
      weight("experts", DType::F8E4M3, {3, int64_t(kGiB)}),   // 3 GiB
      weight("odd", DType::U8, {4097}),                       // 4097 bytes
      weight("empty", DType::F32, {0, 16}),                   // no bytes
      weight("head", DType::F32, {1000, 1000})};              // 4,000,000 bytes
  const uint64_t end = layoutWeights(weights, 8192 + 5); // blob start rounds up to 12288

  EXPECT_EQ(weights[0].offset, 12288u);
  EXPECT_EQ(weights[0].size, 1853358080u);
  EXPECT_EQ(weights[1].offset, alignUp(12288 + 1853358080, 4096));
  EXPECT_EQ(weights[1].offset, 1853370368u);
  EXPECT_EQ(weights[1].size, 3 * kGiB);
  // 1853370368 + 3 GiB = 5074595840 > 2^32: no 32-bit truncation anywhere.
  EXPECT_EQ(weights[2].offset, 5074595840u);
  EXPECT_EQ(weights[2].size, 4097u);
  EXPECT_EQ(weights[3].offset, 5074604032u);
  EXPECT_EQ(weights[3].size, 0u);
  EXPECT_EQ(weights[4].offset, 5074604032u);
  EXPECT_EQ(end, 5074604032u + 4000000u);

  // The layout the writer makes passes the reader's check ...
  EXPECT_NO_THROW(checkWeightLayout(weights, 12288, end));
  // ... but not in a file one byte shorter.
  EXPECT_THAT(errorOf([&] { checkWeightLayout(weights, 12288, end - 1); }),
              HasSubstr("weight \"head\" bytes [5074604032, +4000000) lie outside the file of "
                        "5078604031 bytes"));
}

TEST(WeightLayoutTest, RejectsADeclaredSizeThatDisagreesWithTheShape) {
  std::vector<Weight> weights = {weight("w", DType::F32, {3, 3})};
  weights[0].size = 35;
  EXPECT_EQ(errorOf([&] { layoutWeights(weights, 0); }),
            "weight \"w\" has size 35 but its shape and dtype need 36 bytes");
}

TEST(WeightLayoutTest, RejectsLayoutsThatWouldWrapPastTwoToThe64) {
  std::vector<Weight> weights = {weight("a", DType::U8, {int64_t(1) << 62}),
                                 weight("b", DType::U8, {int64_t(1) << 62}),
                                 weight("c", DType::U8, {int64_t(1) << 62}),
                                 weight("d", DType::U8, {int64_t(1) << 62})};
  EXPECT_THAT(errorOf([&] { layoutWeights(weights, 4096); }), HasSubstr("ends past 2^64 bytes"));
}

TEST(WeightLayoutTest, CheckRejectsEveryBadPlacementOfSyntheticHugeFiles) {
  const uint64_t fileSize = 9 * kGiB;
  auto make = [&] {
    std::vector<Weight> weights = {weight("a", DType::F32, {int64_t(kGiB)}),  // 4 GiB
                                   weight("b", DType::BF16, {int64_t(kGiB)})}; // 2 GiB
    weights[0].size = 4 * kGiB;
    weights[0].offset = 4096;
    weights[1].size = 2 * kGiB;
    weights[1].offset = 5 * kGiB;
    return weights;
  };
  std::vector<Weight> weights = make();
  EXPECT_NO_THROW(checkWeightLayout(weights, 4096, fileSize));

  weights = make();
  weights[1].offset = 4 * kGiB; // inside "a", which ends at 4 GiB + 4096
  EXPECT_EQ(errorOf([&] { checkWeightLayout(weights, 4096, fileSize); }),
            "weight \"b\" overlaps weight \"a\"");

  weights = make();
  weights[1].offset = 5 * kGiB + 512;
  EXPECT_EQ(errorOf([&] { checkWeightLayout(weights, 4096, fileSize); }),
            "weight \"b\" offset 5368709632 is not 4096-aligned");

  weights = make();
  weights[1].offset = 8 * kGiB; // ends at 10 GiB > 9 GiB
  EXPECT_THAT(errorOf([&] { checkWeightLayout(weights, 4096, fileSize); }),
              HasSubstr("weight \"b\" bytes [8589934592, +2147483648) lie outside the file"));

  weights = make();
  weights[1].offset = kMax - 4095; // offset + size wraps: still outside
  EXPECT_THAT(errorOf([&] { checkWeightLayout(weights, 4096, fileSize); }),
              HasSubstr("lie outside the file"));

  weights = make();
  EXPECT_THAT(errorOf([&] { checkWeightLayout(weights, 8192, fileSize); }),
              HasSubstr("lies before the weight blob at 8192"));

  weights = make();
  weights[0].size = 4 * kGiB - 1;
  EXPECT_THAT(errorOf([&] { checkWeightLayout(weights, 4096, fileSize); }),
              HasSubstr("weight \"a\" has size 4294967295 but its shape and dtype need 4294967296"));
}

TEST(WeightLayoutTest, EmptyWeightsSharingAnOffsetAreNotOverlaps) {
  std::vector<Weight> weights = {weight("big", DType::U8, {100}), weight("empty", DType::U8, {0}),
                                 weight("next", DType::U8, {5})};
  // The writer's order puts "empty" where "next" starts; the check must accept it
  // whatever order the sort leaves ties in.
  const uint64_t end = layoutWeights(weights, 4096);
  EXPECT_EQ(weights[1].offset, weights[2].offset);
  EXPECT_NO_THROW(checkWeightLayout(weights, 4096, end));
  std::swap(weights[1], weights[2]);
  EXPECT_NO_THROW(checkWeightLayout(weights, 4096, end));
}

} // namespace
} // namespace v4rt
