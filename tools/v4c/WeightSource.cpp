// Weight filling for v4c compile (see WeightSource.h).
#include "tools/v4c/WeightSource.h"

#include <cmath>
#include <cstring>

#include "common/Error.h"
#include "runtime/DummyWeights.h"

namespace v4c {

namespace quant = v4rt::quant;

void CheckpointWeightSource::fill(const v4rt::Weight &weight, uint8_t *dst, size_t size) {
  auto it = quantized_.find(weight.name);
  if (it == quantized_.end()) {
    if (weight.dtype == v4rt::DType::I32) {
      auto values = checkpoint_.readI32(weight.name);
      check(values.size() * sizeof(int32_t) == size, "internal error: size of " + weight.name);
      std::memcpy(dst, values.data(), size);
      return;
    }
    if (weight.dtype == v4rt::DType::BF16) { // v4-cast-precision: round to nearest even
      auto values = checkpoint_.readF32(weight.name);
      check(values.size() * sizeof(uint16_t) == size, "internal error: size of " + weight.name);
      for (size_t i = 0; i < values.size(); ++i) {
        const uint16_t bits = v4rt::dummyToBf16(values[i]);
        std::memcpy(dst + 2 * i, &bits, sizeof bits);
      }
      return;
    }
    check(weight.dtype == v4rt::DType::F32, "internal error: weight " + weight.name + " is " +
                                                v4rt::dtypeName(weight.dtype) + " but v4-quantize did not mark it");
    auto values = checkpoint_.readF32(weight.name);
    check(values.size() * sizeof(float) == size, "internal error: size of " + weight.name);
    std::memcpy(dst, values.data(), size);
    return;
  }
  const QuantizedGlobal &global = it->second;
  Encoded &encoded = this->encoded(global);
  const std::vector<uint8_t> &bytes = global.isScale ? encoded.scales : encoded.codes;
  check(bytes.size() == size, "internal error: " + weight.name + " has " + std::to_string(size) +
                                  " bytes in the artifact but its quantized " + (global.isScale ? "scales" : "data") +
                                  " have " + std::to_string(bytes.size()));
  std::memcpy(dst, bytes.data(), size);
  if (--encoded.partsLeft == 0)
    encoded_.erase(global.source);
}

CheckpointWeightSource::Encoded &CheckpointWeightSource::encoded(const QuantizedGlobal &global) {
  auto found = encoded_.find(global.source);
  if (found != encoded_.end())
    return found->second;
  Encoded &out = encoded_[global.source];
  if (passThrough(global, out)) {
    ++passedThrough_;
    return out;
  }
  const std::vector<float> values = checkpoint_.readF32(global.source);
  check(global.shape.size() >= 2, "internal error: quantized weight " + global.source + " has rank < 2");
  const int64_t rows = global.shape[global.shape.size() - 2], cols = global.shape.back();
  const int64_t slabs = static_cast<int64_t>(values.size()) / (rows * cols);
  check(slabs * rows * cols == static_cast<int64_t>(values.size()),
        "internal error: " + global.source + " has " + std::to_string(values.size()) + " values");
  const int64_t slabScales = quant::scaleCount(rows, cols, global.block);
  out.codes.resize(values.size());
  out.scales.resize(static_cast<size_t>(slabs * slabScales));
  // Leading dims (experts) are independent matrices with their own blocks.
  for (int64_t s = 0; s < slabs; ++s) {
    try {
      quant::quantizeBlocks(values.data() + s * rows * cols, rows, cols, global.block, global.format,
                            out.codes.data() + s * rows * cols, out.scales.data() + s * slabScales);
    } catch (const Error &error) {
      throw Error(global.source + ": " + error.what());
    }
  }
  ++quantizedCount_;
  return out;
}

// An FP8 checkpoint tensor goes in as stored when its blocks are the ones
// asked for and every scale is a power of two (exactly a ue8m0 byte).
bool CheckpointWeightSource::passThrough(const QuantizedGlobal &global, Encoded &out) const {
  if (global.format != quant::Format::E4M3 || global.shape.size() != 2 ||
      global.block.rows != Checkpoint::kFp8CheckpointBlock || global.block.cols != Checkpoint::kFp8CheckpointBlock)
    return false;
  auto view = checkpoint_.quantizedView(global.source);
  if (!view || view->data->dtype != v4rt::DType::F8E4M3)
    return false;
  const std::vector<float> scales = Checkpoint::scaleValues(*view->scale);
  std::vector<uint8_t> bytes(scales.size());
  for (size_t i = 0; i < scales.size(); ++i) {
    int exponent = 0;
    const float fraction = std::frexp(scales[i], &exponent); // scale = 0.5 * 2^exponent for powers of two
    if (!std::isfinite(scales[i]) || fraction != 0.5f || exponent - 1 < -127 || exponent - 1 > 127)
      return false; // not representable as ue8m0: re-quantize the dequantized values
    bytes[i] = static_cast<uint8_t>(exponent - 1 + 127);
  }
  const std::vector<int64_t> scaleShape = {quant::ceilDiv(global.shape[0], global.block.rows),
                                           quant::ceilDiv(global.shape[1], global.block.cols)};
  if (view->scale->shape != scaleShape)
    return false;
  out.codes.assign(view->data->data, view->data->data + view->data->nbytes);
  out.scales = std::move(bytes);
  return true;
}

} // namespace v4c
