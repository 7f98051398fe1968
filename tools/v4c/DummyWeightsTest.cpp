// `--weights dummy`: the generator (runtime/DummyWeights.h) rounds exactly
// like the format definitions, recipes make sane values, and a dummy artifact
// computes the same logits, bit for bit, as an artifact compiled normally
// from a checkpoint holding the generated values (`v4c dummy-checkpoint`).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <unistd.h>

#include "runtime/DummyWeights.h"
#include "runtime/Model.h"
#include "runtime/Session.h"
#include "runtime/artifact/ArtifactReader.h"
#include "runtime/cpu/Quantization.h"

namespace {

namespace fs = std::filesystem;

float fromBits(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

// Every 2^-16 step of f32 bit patterns: all exponents, both signs, ties.
std::vector<float> sampleFloats() {
  std::vector<float> values;
  for (uint64_t bits = 0; bits <= 0xFFFFFFFFull; bits += 0x10000 - 1)
    values.push_back(fromBits(static_cast<uint32_t>(bits)));
  for (float exact : {0.0f, -0.0f, 448.0f, 464.0f, 480.0f, -500.0f, 1e-9f, 0.0009765625f, 0.00146484375f})
    values.push_back(exact);
  return values;
}

TEST(DummyGenerator, E4m3EncoderMatchesTheQuantizationDefinition) {
  for (float value : sampleFloats()) {
    if (std::isnan(value))
      continue;
    EXPECT_EQ(v4rt::dummyToE4m3(value), v4rt::quant::encodeE4M3(value)) << value;
  }
}

TEST(DummyGenerator, Bf16AndHalfRoundToNearestEven) {
  for (float value : sampleFloats()) {
    if (std::isnan(value) || std::isinf(value) || std::fabs(value) > 3.0e38f)
      continue; // (near FLT_MAX the upper neighbour is 2^128, not a bf16)
    // bf16: the closest of the two neighbours (truncation and next), ties even.
    const uint32_t bits = [&] { uint32_t b; std::memcpy(&b, &value, 4); return b; }();
    const uint16_t down = static_cast<uint16_t>(bits >> 16);
    const float lower = fromBits(uint32_t{down} << 16), upper = fromBits(uint32_t(down + 1) << 16);
    const uint16_t bf16 = v4rt::dummyToBf16(value);
    const double dLow = std::fabs(double(value) - lower), dUp = std::fabs(double(upper) - value);
    const uint16_t expected = dLow < dUp ? down : dUp < dLow ? uint16_t(down + 1) : (down & 1 ? uint16_t(down + 1) : down);
    EXPECT_EQ(bf16, expected) << value;
    // half: within half an ulp of the value where it is in range.
    if (std::fabs(value) < 65504.0f && std::fabs(value) > 6.2e-5f) {
      const uint16_t h = v4rt::dummyToF16(value);
      const int exponent = ((h >> 10) & 0x1F) - 15;
      const double mantissa = 1.0 + (h & 0x3FF) / 1024.0;
      const double decoded = (h & 0x8000 ? -1 : 1) * std::ldexp(mantissa, exponent);
      EXPECT_LE(std::fabs(decoded - value), std::ldexp(1.0, exponent - 11) * 1.0000001) << value;
    }
  }
  EXPECT_EQ(v4rt::dummyToF16(1.0f), 0x3C00);
  EXPECT_EQ(v4rt::dummyToF16(-2.0f), 0xC000);
  EXPECT_EQ(v4rt::dummyToF16(65520.0f), 0x7C00); // rounds to infinity
  EXPECT_EQ(v4rt::dummyToF16(5.9604645e-08f), 0x0001); // smallest subnormal
}

TEST(DummyGenerator, RecipesGiveDeterministicValuesInRange) {
  const uint64_t seed = 42;
  std::vector<float> a(4096), b(4096), other(4096);
  ASSERT_TRUE(v4rt::fillDummyHost(a.data(), a.size(), v4rt::kDummyF32, seed, 3, {v4rt::DummyKind::Uniform, 0.125f, 0}));
  ASSERT_TRUE(v4rt::fillDummyHost(b.data(), b.size(), v4rt::kDummyF32, seed, 3, {v4rt::DummyKind::Uniform, 0.125f, 0}));
  ASSERT_TRUE(v4rt::fillDummyHost(other.data(), other.size(), v4rt::kDummyF32, seed, 4, {v4rt::DummyKind::Uniform, 0.125f, 0}));
  EXPECT_EQ(a, b);
  EXPECT_NE(a, other); // another weight, another stream
  double sum = 0, sumSquares = 0;
  for (float v : a) {
    EXPECT_GE(v, -0.125f);
    EXPECT_LT(v, 0.125f);
    sum += v;
    sumSquares += double(v) * v;
  }
  EXPECT_NEAR(sum / a.size(), 0.0, 0.01);
  EXPECT_NEAR(std::sqrt(sumSquares / a.size()), 0.125 / std::sqrt(3.0), 0.005); // uniform's RMS

  // tid2eid: 6 experts of 64 per row are distinct and valid.
  std::vector<int32_t> ids(100 * 6);
  ASSERT_TRUE(v4rt::fillDummyHost(ids.data(), ids.size(), v4rt::kDummyI32, seed, 9, {v4rt::DummyKind::IntModulo, 0.0f, 64}));
  for (int row = 0; row < 100; ++row) {
    std::set<int32_t> distinct(ids.begin() + row * 6, ids.begin() + row * 6 + 6);
    EXPECT_EQ(distinct.size(), 6u) << row;
    EXPECT_GE(*distinct.begin(), 0);
    EXPECT_LT(*distinct.rbegin(), 64);
  }
  // ue8m0 scales: 2^(-6 +- 1); fp4 codes: nibbles.
  std::vector<uint8_t> scales(1000), codes(1000);
  ASSERT_TRUE(v4rt::fillDummyHost(scales.data(), scales.size(), v4rt::kDummyU8, seed, 1, {v4rt::DummyKind::Exponent, -6.0f, 1}));
  ASSERT_TRUE(v4rt::fillDummyHost(codes.data(), codes.size(), v4rt::kDummyU8, seed, 2, {v4rt::DummyKind::Bytes, 0.0f, 16}));
  EXPECT_EQ(std::set<uint8_t>(scales.begin(), scales.end()), (std::set<uint8_t>{120, 121, 122}));
  EXPECT_EQ(std::set<uint8_t>(codes.begin(), codes.end()).size(), 16u);
  EXPECT_EQ(*std::max_element(codes.begin(), codes.end()), 15);
  // A recipe that does not fit the dtype is refused, not guessed.
  EXPECT_FALSE(v4rt::fillDummyHost(codes.data(), 1, v4rt::kDummyU8, seed, 0, {v4rt::DummyKind::Uniform, 1.0f, 0}));
}

class DummyArtifactTest : public ::testing::Test {
protected:
  fs::path dir = fs::temp_directory_path() / ("v4c-dummy-test-" + std::to_string(::getpid()));
  void SetUp() override { fs::create_directories(dir); }
  void TearDown() override { fs::remove_all(dir); }

  void run(const std::string &arguments) {
    const std::string command = std::string(V4C_BINARY) + " " + arguments + " > " + (dir / "log.txt").string() + " 2>&1";
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
  }

  // Logits of a 12-token prefill (all rows) then 3 greedy decode steps.
  static std::vector<float> logitsOf(const std::string &artifact) {
    v4rt::LoadOptions options;
    options.threads = 1;
    auto model = v4rt::Model::load(artifact, options);
    const int64_t vocab = model->vocabSize();
    v4rt::Session session(*model);
    const std::vector<int32_t> ids = {1, 7, 42, 3, 99, 5, 17, 300, 2, 8, 64, 11};
    std::vector<float> logits(ids.size() * vocab);
    session.prefill(ids.data(), static_cast<int64_t>(ids.size()), logits.data());
    for (int step = 0; step < 3; ++step) {
      const float *last = logits.data() + logits.size() - vocab;
      const int32_t next = static_cast<int32_t>(std::max_element(last, last + vocab) - last);
      logits.resize(logits.size() + vocab);
      session.decode(next, logits.data() + logits.size() - vocab);
    }
    return logits;
  }
};

TEST_F(DummyArtifactTest, SameLogitsAsTheCheckpointOfItsGeneratedValues) {
  const std::string dummy = (dir / "dummy.v4a").string(), normal = (dir / "normal.v4a").string();
  run("compile " + std::string(V4_CONFORMANCE_DIR) + "/tiny-mixed --weights dummy --dummy-seed 7 -o " + dummy);
  run("dummy-checkpoint " + dummy + " -o " + (dir / "ckpt").string());
  run("compile " + (dir / "ckpt").string() + " -o " + normal);

  // The dummy artifact stores no weight bytes: header + manifest only.
  auto artifact = v4rt::Artifact::open(dummy);
  EXPECT_LT(artifact->fileSize(), 256u * 1024);
  EXPECT_EQ(artifact->program().dummySeed, 7u);
  int hashTables = 0;
  for (const v4rt::Weight &weight : artifact->program().weights) {
    EXPECT_TRUE(weight.isDummy()) << weight.name;
    EXPECT_EQ(weight.data, nullptr) << weight.name; // not generated unless asked
    if (weight.name.find("tid2eid") != std::string::npos) { // valid expert ids of 8
      EXPECT_EQ(weight.dummy.kind, v4rt::DummyKind::IntModulo);
      EXPECT_EQ(weight.dummy.modulo, 8);
      ++hashTables;
    }
  }
  EXPECT_EQ(hashTables, 3); // tiny-mixed: three hash-routed layers

  const std::vector<float> fromDummy = logitsOf(dummy), fromCheckpoint = logitsOf(normal);
  ASSERT_EQ(fromDummy.size(), fromCheckpoint.size());
  EXPECT_EQ(std::memcmp(fromDummy.data(), fromCheckpoint.data(), fromDummy.size() * sizeof(float)), 0);
  // Sane: finite, of order one, and not constant.
  double sumSquares = 0, maxAbs = 0;
  for (float v : fromDummy) {
    ASSERT_TRUE(std::isfinite(v));
    sumSquares += double(v) * v;
    maxAbs = std::max(maxAbs, double(std::fabs(v)));
  }
  const double rms = std::sqrt(sumSquares / fromDummy.size());
  EXPECT_GT(rms, 1e-2);
  EXPECT_LT(maxAbs, 100.0);
}

// Recipes by role on the real V4-Flash shapes (2 layers), with fp8 linears
// and fp4 experts: no weight falls through to a guess.
TEST_F(DummyArtifactTest, RecipesFollowEachWeightsRole) {
  const std::string path = (dir / "flash2.v4a").string();
  run("compile --model v4-flash-2layer --weights dummy --precision fp8 --experts fp4 -o " + path);
  auto artifact = v4rt::Artifact::open(path);
  EXPECT_LT(artifact->fileSize(), 1u << 20); // V4-Flash, 2 layers: no weight bytes
  auto ends = [](const std::string &name, const std::string &suffix) {
    return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  int seen[6] = {};
  for (const v4rt::Weight &w : artifact->program().weights) {
    const v4rt::DummyRecipe &r = w.dummy;
    SCOPED_TRACE(w.name);
    if (ends(w.name, "sinks")) {
      EXPECT_EQ(r.kind, v4rt::DummyKind::Constant);
      EXPECT_EQ(r.scale, 0.0f);
      ++seen[0];
    } else if (ends(w.name, "layernorm.weight") || ends(w.name, "model.norm.weight")) {
      EXPECT_EQ(r.kind, v4rt::DummyKind::Constant);
      EXPECT_EQ(r.scale, 1.0f);
      ++seen[1];
    } else if (ends(w.name, "tid2eid")) {
      EXPECT_EQ(r.kind, v4rt::DummyKind::IntModulo);
      EXPECT_EQ(r.modulo, 256); // n_routed_experts
      ++seen[2];
    } else if (w.dtype == v4rt::DType::F8E4M3) {
      EXPECT_EQ(r.kind, v4rt::DummyKind::Uniform);
      ++seen[3];
    } else if (w.dtype == v4rt::DType::U8 && ends(w.name, ".scale")) {
      EXPECT_EQ(r.kind, v4rt::DummyKind::Exponent);
      EXPECT_LT(r.scale, -5.0f); // 2^-7 .. 2^-8 for K = 1024 .. 4096
      EXPECT_GT(r.scale, -10.0f);
      ++seen[4];
    } else if (w.dtype == v4rt::DType::U8) {
      EXPECT_EQ(r.kind, v4rt::DummyKind::Bytes);
      EXPECT_EQ(r.modulo, 16); // e2m1 codes
      ++seen[5];
    } else if (ends(w.name, "lm_head.weight")) {
      EXPECT_EQ(r.kind, v4rt::DummyKind::Uniform);
      EXPECT_FLOAT_EQ(r.scale, 1.0f / 64); // 1/sqrt(4096)
    }
  }
  for (int role : {0, 1, 3, 4, 5}) // (V4-Flash's first layers route by score: no tid2eid)
    EXPECT_GT(seen[role], 0) << role;
}

TEST_F(DummyArtifactTest, AnotherSeedGivesOtherLogits) {
  const std::string a = (dir / "a.v4a").string(), b = (dir / "b.v4a").string();
  run("compile " + std::string(V4_CONFORMANCE_DIR) + "/tiny-mixed --weights dummy --dummy-seed 1 -o " + a);
  run("compile " + std::string(V4_CONFORMANCE_DIR) + "/tiny-mixed --weights dummy --dummy-seed 2 -o " + b);
  EXPECT_NE(logitsOf(a), logitsOf(b));
}

} // namespace
