// A checkpoint directory: config.json plus model.safetensors or the shards of
// model.safetensors.index.json, in any supported tensor layout. open()
// validates every tensor against weightSpec(config), so the model builder can
// ask for canonical names and never meet a missing or misshapen weight.
#pragma once

#include "frontend/Safetensors.h"
#include "models/config/ModelConfig.h"
#include "models/config/WeightSpec.h"

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace v4c {

class Checkpoint {
public:
  // Throws v4c::Error naming the file and the problem.
  static Checkpoint open(const std::string &dir);

  const ModelConfig &config() const { return config_; }
  const std::string &dir() const { return dir_; }
  // The weights the model needs, in model order (canonical names).
  const std::vector<WeightSpecEntry> &spec() const { return spec_; }

  bool has(const std::string &canonical) const;
  // The canonical shape (stacked experts: [E, 2I, D] / [E, D, I]).
  std::vector<int64_t> shape(const std::string &canonical) const;
  // Decoded to f32; per-expert tensors are stacked into the canonical layout.
  std::vector<float> readF32(const std::string &canonical) const;
  // Integer tensors (tid2eid), range-checked into int32.
  std::vector<int32_t> readI32(const std::string &canonical) const;
  // The stored tensor behind `canonical` when it is stored as one tensor
  // (nullptr for experts assembled from per-expert tensors): lets callers copy
  // bf16 bytes without a detour through f32.
  const TensorView *storedView(const std::string &canonical) const;

  // FP8 checkpoints: an e4m3 weight stored with its block scales
  // ("X.weight_scale_inv" or DeepSeek's "X.scale"; F32, BF16 or F8_E8M0),
  // one per 128 x 128 block. readF32 dequantizes such weights; a quantizing
  // compile can pass the stored bytes through instead.
  struct QuantizedView {
    const TensorView *data = nullptr;
    const TensorView *scale = nullptr;
  };
  std::optional<QuantizedView> quantizedView(const std::string &canonical) const;
  // The scale tensor's values as f32 (F8_E8M0 bytes decoded as 2^(b - 127)).
  static std::vector<float> scaleValues(const TensorView &scale);
  static constexpr int64_t kFp8CheckpointBlock = 128;

private:
  Checkpoint() = default;

  struct Resolved {
    WeightSpecEntry spec;
    const TensorView *stored = nullptr;
    // Per-expert tensors, indexed by expert (gate/up for gate_up_proj, down for down_proj).
    std::vector<const TensorView *> gate, up, down;
  };

  const Resolved &resolved(const std::string &canonical) const;
  void rejectQuantized(const TensorView &view) const;
  std::vector<float> dequantizeStored(const TensorView &view) const;
  void loadFiles();
  void resolveTensors();
  void checkAgainstSpec();

  std::string dir_;
  std::string weightsPath_; // model.safetensors or the index, for error messages
  ModelConfig config_;
  std::vector<WeightSpecEntry> spec_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::unordered_map<std::string, const TensorView *> stored_;
  std::unordered_map<std::string, Resolved> tensors_; // by canonical name
  std::unordered_set<std::string> quantized_;         // stored weights that have a scale tensor
  std::unordered_map<std::string, const TensorView *> scales_; // stored weight name -> its scale tensor
};

} // namespace v4c
