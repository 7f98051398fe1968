// Every weight a DeepSeek-V4 model needs, by canonical (HF layout) name, with
// the shape the config implies. The frontend validates checkpoints against it
// and the model builder declares its v4.global symbols from it.
#pragma once

#include "models/config/ModelConfig.h"

#include <cstdint>
#include <string>
#include <vector>

namespace v4c {

enum class WeightClass : uint8_t { Float = 0, Int = 1 };

struct WeightSpecEntry {
  std::string name;           // canonical, e.g. "model.layers.3.self_attn.q_a_proj.weight"
  std::vector<int64_t> shape; // as the model uses it (experts stacked: [E, 2I, D])
  WeightClass weightClass = WeightClass::Float;
  int64_t layer = -1;         // -1 for embeddings, final norm, hc_head, lm_head
};

// In model order: embeddings, layers 0..N-1, final norm, hc_head, lm_head.
std::vector<WeightSpecEntry> weightSpec(const ModelConfig &config);

// "model.layers.<layer>." -- the prefix of a layer's canonical names.
std::string layerPrefix(int64_t layer);

// "[4,64]"
std::string formatShape(const std::vector<int64_t> &shape);

} // namespace v4c
