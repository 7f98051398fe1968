// CheckpointWeightSource: f32 checkpoints are quantized with Quantization.h;
// FP8 checkpoints with power-of-two block scales pass through byte for byte;
// other FP8 scales are dequantized and re-quantized.
#include "tools/v4c/WeightSource.h"

#include "frontend/SafetensorsWriter.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <stdlib.h>

namespace v4c {
namespace {

namespace quant = v4rt::quant;

const std::string kStored = "model.layers.0.attn.wq_a.weight";
const std::string kCanonical = "model.layers.0.self_attn.q_a_proj.weight";

std::string conformance(const std::string &name) { return std::string(V4_CONFORMANCE_DIR) + "/" + name; }

struct Case {
  std::vector<TensorToWrite> tensors;
  TensorToWrite *weight = nullptr;
  std::vector<float> values; // of the weight, f32
  int64_t rows = 0, cols = 0;
};

Case loadCase() {
  Case c;
  auto file = SafetensorsFile::open(conformance("tiny-yarn") + "/model.safetensors");
  for (const TensorView &view : file->tensors())
    c.tensors.push_back({view.name, view.dtypeName, view.shape, std::vector<uint8_t>(view.data, view.data + view.nbytes)});
  for (TensorToWrite &t : c.tensors)
    if (t.name == kStored)
      c.weight = &t;
  EXPECT_NE(c.weight, nullptr);
  c.rows = c.weight->shape[0];
  c.cols = c.weight->shape[1];
  c.values.resize(c.rows * c.cols);
  std::memcpy(c.values.data(), c.weight->bytes.data(), c.weight->bytes.size());
  return c;
}

Checkpoint open(const std::vector<TensorToWrite> &tensors) {
  char pattern[] = "/tmp/v4c-weightsource-XXXXXX";
  const std::string dir = ::mkdtemp(pattern);
  std::ifstream in(conformance("tiny-yarn") + "/config.json", std::ios::binary);
  std::ofstream(dir + "/config.json", std::ios::binary) << in.rdbuf();
  writeSafetensors(dir + "/model.safetensors", tensors);
  return Checkpoint::open(dir);
}

std::map<std::string, QuantizedGlobal> fp8Globals(int64_t rows, int64_t cols) {
  QuantizedGlobal data;
  data.source = kCanonical;
  data.format = quant::Format::E4M3;
  data.block = {128, 128};
  data.shape = {rows, cols};
  QuantizedGlobal scale = data;
  scale.isScale = true;
  return {{kCanonical, data}, {kCanonical + ".scale", scale}};
}

// (codes, scales) as the artifact would hold them.
std::pair<std::vector<uint8_t>, std::vector<uint8_t>> fill(CheckpointWeightSource &source, int64_t rows, int64_t cols) {
  std::vector<uint8_t> codes(rows * cols), scales(quant::scaleCount(rows, cols, {128, 128}));
  v4rt::Weight data;
  data.name = kCanonical;
  data.dtype = v4rt::DType::F8E4M3;
  source.fill(data, codes.data(), codes.size());
  v4rt::Weight scale;
  scale.name = kCanonical + ".scale";
  scale.dtype = v4rt::DType::U8;
  source.fill(scale, scales.data(), scales.size());
  return {codes, scales};
}

TEST(WeightSource, QuantizesF32Checkpoints) {
  Case c = loadCase();
  Checkpoint checkpoint = open(c.tensors);
  CheckpointWeightSource source(checkpoint, fp8Globals(c.rows, c.cols));
  auto [codes, scales] = fill(source, c.rows, c.cols);
  std::vector<uint8_t> expectedCodes(codes.size()), expectedScales(scales.size());
  quant::quantizeBlocks(c.values.data(), c.rows, c.cols, {128, 128}, quant::Format::E4M3, expectedCodes.data(),
                        expectedScales.data());
  EXPECT_EQ(codes, expectedCodes);
  EXPECT_EQ(scales, expectedScales);
  EXPECT_EQ(source.quantized(), 1);
  EXPECT_EQ(source.passedThrough(), 0);
}

TEST(WeightSource, PassesFp8CheckpointBytesThrough) {
  Case c = loadCase();
  // Stored codes that quantizing the f32 values would never produce (all
  // 1.0 with scale 2^-3), so equality proves they were copied.
  std::vector<uint8_t> stored(c.rows * c.cols, 0x38);
  c.weight->dtype = "F8_E4M3";
  c.weight->bytes = stored;
  c.tensors.push_back(f32Tensor(kStored + "_scale_inv", {1, 1}, {0.125f}));
  Checkpoint checkpoint = open(c.tensors);
  CheckpointWeightSource source(checkpoint, fp8Globals(c.rows, c.cols));
  auto [codes, scales] = fill(source, c.rows, c.cols);
  EXPECT_EQ(codes, stored);
  EXPECT_EQ(scales, std::vector<uint8_t>{127 - 3});
  EXPECT_EQ(source.passedThrough(), 1);
  EXPECT_EQ(source.quantized(), 0);
}

TEST(WeightSource, RequantizesFp8WithNonPowerOfTwoScales) {
  Case c = loadCase();
  std::vector<uint8_t> stored(c.rows * c.cols, 0x38); // 1.0
  c.weight->dtype = "F8_E4M3";
  c.weight->bytes = stored;
  c.tensors.push_back(f32Tensor(kStored + "_scale_inv", {1, 1}, {0.3f}));
  Checkpoint checkpoint = open(c.tensors);
  CheckpointWeightSource source(checkpoint, fp8Globals(c.rows, c.cols));
  auto [codes, scales] = fill(source, c.rows, c.cols);
  EXPECT_EQ(source.passedThrough(), 0);
  EXPECT_EQ(source.quantized(), 1);
  // Every value is 0.3: the scale 2^-10 puts 0.3 * 1024 = 307.2 in e4m3's
  // top binade, which rounds it to 320 (step 32): 0.3125.
  ASSERT_EQ(scales.size(), 1u);
  EXPECT_EQ(quant::decodeUe8m0(scales[0]), std::ldexp(1.0f, -10));
  for (uint8_t code : codes)
    ASSERT_EQ(quant::decodeE4M3(code) * quant::decodeUe8m0(scales[0]), 0.3125f);
}

} // namespace
} // namespace v4c

namespace v4c {
namespace {

// v4-cast-precision's bf16 weights: each f32 checkpoint value rounds to the
// nearest bf16 (ties to even), i.e. the bf16 closest to the f32 value.
TEST(WeightSource, RoundsF32CheckpointsToBf16) {
  Case c = loadCase();
  // Exact ties and a carry into the exponent, besides the checkpoint's values.
  const uint32_t tieEven = 0x3F808000u, tieOdd = 0x3F818000u, carry = 0x3FFFFFFFu;
  for (uint32_t bits : {tieEven, tieOdd, carry})
    std::memcpy(&c.values[bits == tieEven ? 0 : bits == tieOdd ? 1 : 2], &bits, 4);
  std::memcpy(c.weight->bytes.data(), c.values.data(), c.weight->bytes.size());
  Checkpoint checkpoint = open(c.tensors);
  CheckpointWeightSource source(checkpoint, {});
  v4rt::Weight weight;
  weight.name = kCanonical;
  weight.dtype = v4rt::DType::BF16;
  std::vector<uint16_t> bf16(c.values.size());
  source.fill(weight, reinterpret_cast<uint8_t *>(bf16.data()), bf16.size() * 2);
  EXPECT_EQ(bf16[0], 0x3F80); // 1 + 2^-8 ties to the even 1.0
  EXPECT_EQ(bf16[1], 0x3F82); // 1 + 3*2^-8 ties to the even 1 + 2^-6
  EXPECT_EQ(bf16[2], 0x4000); // just below 2 rounds up to 2.0
  for (size_t i = 0; i < c.values.size(); ++i) {
    uint32_t bits = uint32_t{bf16[i]} << 16;
    float rounded;
    std::memcpy(&rounded, &bits, 4);
    // No bf16 is closer: the neighbours one ulp away are at least as far.
    const float ulp = std::ldexp(1.0f, std::ilogb(rounded == 0 ? 1e-30f : rounded) - 7);
    EXPECT_LE(std::fabs(rounded - c.values[i]), ulp / 2) << i;
  }
}

} // namespace
} // namespace v4c
