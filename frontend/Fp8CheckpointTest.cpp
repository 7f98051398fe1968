// Checkpoints already in FP8: an F8_E4M3 weight with its 128x128 block
// scales (HF's "weight_scale_inv" as F32, DeepSeek's "scale" as F8_E8M0)
// reads back dequantized, and its stored bytes are reachable for pass-through.
#include "frontend/Checkpoint.h"
#include "frontend/SafetensorsWriter.h"
#include "common/Error.h"
#include "runtime/cpu/Quantization.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <stdlib.h>

namespace v4c {
namespace {

std::string conformance(const std::string &name) { return std::string(V4_CONFORMANCE_DIR) + "/" + name; }

std::vector<TensorToWrite> storedTensors(const std::string &caseName) {
  auto file = SafetensorsFile::open(conformance(caseName) + "/model.safetensors");
  std::vector<TensorToWrite> tensors;
  for (const TensorView &view : file->tensors())
    tensors.push_back({view.name, view.dtypeName, view.shape, std::vector<uint8_t>(view.data, view.data + view.nbytes)});
  return tensors;
}

std::string writeCheckpoint(const std::vector<TensorToWrite> &tensors) {
  char pattern[] = "/tmp/v4c-fp8ckpt-XXXXXX";
  const std::string dir = ::mkdtemp(pattern);
  std::ifstream in(conformance("tiny-yarn") + "/config.json", std::ios::binary);
  std::ofstream(dir + "/config.json", std::ios::binary) << in.rdbuf();
  writeSafetensors(dir + "/model.safetensors", tensors);
  return dir;
}

struct Quantized {
  std::vector<uint8_t> codes, scales;
  std::vector<float> dequantized;
};

// e4m3 with one ue8m0 scale per 128 x 128 block, as DeepSeek releases weights.
Quantized quantize(const std::vector<float> &values, int64_t rows, int64_t cols) {
  const v4rt::quant::BlockShape block{128, 128};
  Quantized q;
  q.codes.resize(values.size());
  q.scales.resize(v4rt::quant::scaleCount(rows, cols, block));
  v4rt::quant::quantizeBlocks(values.data(), rows, cols, block, v4rt::quant::Format::E4M3, q.codes.data(),
                              q.scales.data());
  q.dequantized.resize(values.size());
  v4rt::quant::dequantizeBlocks(q.codes.data(), q.scales.data(), rows, cols, block, v4rt::quant::Format::E4M3,
                                q.dequantized.data());
  return q;
}

TEST(Fp8Checkpoint, ReadsDequantizedValuesAndExposesStoredBytes) {
  std::vector<TensorToWrite> tensors = storedTensors("tiny-yarn");
  const std::string weightName = "model.layers.0.attn.wq_a.weight";
  auto it = std::find_if(tensors.begin(), tensors.end(), [&](const TensorToWrite &t) { return t.name == weightName; });
  ASSERT_NE(it, tensors.end());
  ASSERT_EQ(it->dtype, "F32");
  const int64_t rows = it->shape[0], cols = it->shape[1];
  std::vector<float> values(rows * cols);
  std::memcpy(values.data(), it->bytes.data(), it->bytes.size());
  const Quantized q = quantize(values, rows, cols);
  it->dtype = "F8_E4M3";
  it->bytes = q.codes;
  std::vector<float> scaleInv;
  for (uint8_t s : q.scales)
    scaleInv.push_back(v4rt::quant::decodeUe8m0(s));
  tensors.push_back(f32Tensor(weightName + "_scale_inv", {1, 1}, scaleInv));

  Checkpoint checkpoint = Checkpoint::open(writeCheckpoint(tensors));
  const std::string canonical = "model.layers.0.self_attn.q_a_proj.weight";
  EXPECT_EQ(checkpoint.readF32(canonical), q.dequantized);
  auto view = checkpoint.quantizedView(canonical);
  ASSERT_TRUE(view.has_value());
  EXPECT_EQ(std::vector<uint8_t>(view->data->data, view->data->data + view->data->nbytes), q.codes);
  EXPECT_EQ(Checkpoint::scaleValues(*view->scale), scaleInv);
  EXPECT_FALSE(checkpoint.quantizedView("model.layers.1.self_attn.q_a_proj.weight").has_value());
}

TEST(Fp8Checkpoint, ReadsE8M0ScalesAndChecksTheirShape) {
  std::vector<TensorToWrite> tensors = storedTensors("tiny-yarn");
  const std::string weightName = "model.layers.0.attn.wq_a.weight";
  auto it = std::find_if(tensors.begin(), tensors.end(), [&](const TensorToWrite &t) { return t.name == weightName; });
  ASSERT_NE(it, tensors.end());
  const int64_t rows = it->shape[0], cols = it->shape[1];
  std::vector<float> values(rows * cols);
  std::memcpy(values.data(), it->bytes.data(), it->bytes.size());
  const Quantized q = quantize(values, rows, cols);
  it->dtype = "F8_E4M3";
  it->bytes = q.codes;
  // DeepSeek's name for the scale: "X.scale" next to "X.weight".
  tensors.push_back({"model.layers.0.attn.wq_a.scale", "F8_E8M0", {1, 1}, q.scales});
  Checkpoint checkpoint = Checkpoint::open(writeCheckpoint(tensors));
  EXPECT_EQ(checkpoint.readF32("model.layers.0.self_attn.q_a_proj.weight"), q.dequantized);

  tensors.back().shape = {1, 1};
  tensors.back().bytes = q.scales;
  tensors.push_back({"model.layers.0.attn.wq_b.scale", "F8_E8M0", {2, 1}, {127, 127}});
  auto wqb = std::find_if(tensors.begin(), tensors.end(),
                          [&](const TensorToWrite &t) { return t.name == "model.layers.0.attn.wq_b.weight"; });
  ASSERT_NE(wqb, tensors.end());
  std::vector<uint8_t> ones(static_cast<size_t>(wqb->shape[0] * wqb->shape[1]), 0x38); // e4m3 1.0
  wqb->dtype = "F8_E4M3";
  wqb->bytes = ones;
  Checkpoint wrongScales = Checkpoint::open(writeCheckpoint(tensors));
  try {
    wrongScales.readF32("model.layers.0.self_attn.q_b_proj.weight");
    FAIL() << "expected a scale shape error";
  } catch (const Error &error) {
    EXPECT_NE(std::string(error.what()).find("needs one scale per 128 x 128 block"), std::string::npos) << error.what();
  }
}

} // namespace
} // namespace v4c
