// Fills an artifact's weights from a checkpoint: f32 / i32 as the checkpoint
// decodes them, and the globals v4-quantize marked (v4.quant_source /
// v4.quant_part) with codes and ue8m0 scales from runtime/cpu/Quantization.h,
// or, for a checkpoint already in FP8 with power-of-two 128x128 block
// scales, with its stored bytes passed through unchanged.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "frontend/Checkpoint.h"
#include "runtime/artifact/Program.h"
#include "runtime/cpu/Quantization.h"

namespace v4c {

// One global made by v4-quantize (no MLIR here: the driver extracts these).
struct QuantizedGlobal {
  std::string source;            // checkpoint tensor (canonical name)
  bool isScale = false;          // "scale" part, else "data"
  v4rt::quant::Format format = v4rt::quant::Format::E4M3;
  v4rt::quant::BlockShape block; // of the trailing two dims
  std::vector<int64_t> shape;    // of the data (logical shape of the source)
};

class CheckpointWeightSource {
public:
  CheckpointWeightSource(const Checkpoint &checkpoint, std::map<std::string, QuantizedGlobal> quantized)
      : checkpoint_(checkpoint), quantized_(std::move(quantized)) {}

  // Writes weight `weight` (of the artifact's weight table) into dst[size].
  void fill(const v4rt::Weight &weight, uint8_t *dst, size_t size);

  int64_t passedThrough() const { return passedThrough_; } // FP8 tensors copied as stored
  int64_t quantized() const { return quantizedCount_; }    // tensors quantized here

private:
  struct Encoded {
    std::vector<uint8_t> codes, scales;
    int partsLeft = 2; // freed once data and scale are written
  };
  Encoded &encoded(const QuantizedGlobal &global);
  bool passThrough(const QuantizedGlobal &global, Encoded &out) const;

  const Checkpoint &checkpoint_;
  std::map<std::string, QuantizedGlobal> quantized_; // by global (weight table) name
  std::map<std::string, Encoded> encoded_;            // by source
  int64_t passedThrough_ = 0, quantizedCount_ = 0;
};

} // namespace v4c
