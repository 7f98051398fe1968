// Shapes follow transformers 5.17's DeepseekV4 modules (checked against the
// conformance checkpoints): Linear weights are [out, in].
#include "models/config/WeightSpec.h"

namespace v4c {
namespace {

class SpecBuilder {
public:
  explicit SpecBuilder(std::vector<WeightSpecEntry> &entries) : entries_(entries) {}

  void add(std::string name, std::vector<int64_t> shape, int64_t layer = -1,
           WeightClass weightClass = WeightClass::Float) {
    entries_.push_back({std::move(name), std::move(shape), weightClass, layer});
  }

private:
  std::vector<WeightSpecEntry> &entries_;
};

// mHC site parameters: fn mixes the flattened streams into pre/post/comb.
void addHyperConnection(SpecBuilder &spec, const std::string &prefix, int64_t layer,
                        const ModelConfig &c) {
  const int64_t mixes = (2 + c.hcMult) * c.hcMult;
  spec.add(prefix + ".fn", {mixes, c.hcMult * c.hiddenSize}, layer);
  spec.add(prefix + ".base", {mixes}, layer);
  spec.add(prefix + ".scale", {3}, layer);
}

void addAttention(SpecBuilder &spec, const std::string &p, int64_t layer, const ModelConfig &c) {
  const std::string a = p + "self_attn.";
  const int64_t headsWidth = c.numHeads * c.headDim;
  spec.add(a + "q_a_proj.weight", {c.qLoraRank, c.hiddenSize}, layer);
  spec.add(a + "q_a_norm.weight", {c.qLoraRank}, layer);
  spec.add(a + "q_b_proj.weight", {headsWidth, c.qLoraRank}, layer);
  spec.add(a + "kv_proj.weight", {c.headDim, c.hiddenSize}, layer);
  spec.add(a + "kv_norm.weight", {c.headDim}, layer);
  spec.add(a + "o_a_proj.weight", {c.oGroups * c.oLoraRank, headsWidth / c.oGroups}, layer);
  spec.add(a + "o_b_proj.weight", {c.hiddenSize, c.oGroups * c.oLoraRank}, layer);
  spec.add(a + "sinks", {c.numHeads}, layer);

  const LayerKind kind = c.layerTypes[static_cast<size_t>(layer)];
  if (kind == LayerKind::Sliding)
    return;
  // CSA pools two overlapping windows, so its projections are twice as wide.
  const int64_t rate = c.compressRate(layer);
  const int64_t width = (kind == LayerKind::CSA ? 2 : 1) * c.headDim;
  const std::string k = a + "compressor.";
  spec.add(k + "kv_proj.weight", {width, c.hiddenSize}, layer);
  spec.add(k + "gate_proj.weight", {width, c.hiddenSize}, layer);
  spec.add(k + "kv_norm.weight", {c.headDim}, layer);
  spec.add(k + "position_bias", {rate, width}, layer);
  if (kind != LayerKind::CSA)
    return;
  const std::string i = k + "indexer.";
  spec.add(i + "kv_proj.weight", {2 * c.indexHeadDim, c.hiddenSize}, layer);
  spec.add(i + "gate_proj.weight", {2 * c.indexHeadDim, c.hiddenSize}, layer);
  spec.add(i + "kv_norm.weight", {c.indexHeadDim}, layer);
  spec.add(i + "position_bias", {rate, 2 * c.indexHeadDim}, layer);
  spec.add(i + "q_b_proj.weight", {c.indexNumHeads * c.indexHeadDim, c.qLoraRank}, layer);
  spec.add(i + "scorer.weights_proj.weight", {c.indexNumHeads, c.hiddenSize}, layer);
}

void addMoE(SpecBuilder &spec, const std::string &p, int64_t layer, const ModelConfig &c) {
  const std::string m = p + "mlp.";
  spec.add(m + "gate.weight", {c.numExperts, c.hiddenSize}, layer);
  if (c.mlpTypes[static_cast<size_t>(layer)] == MlpKind::HashMoE)
    spec.add(m + "gate.tid2eid", {c.vocabSize, c.expertsPerToken}, layer, WeightClass::Int);
  else
    spec.add(m + "gate.e_score_correction_bias", {c.numExperts}, layer);
  const int64_t inter = c.moeIntermediateSize;
  spec.add(m + "experts.gate_up_proj", {c.numExperts, 2 * inter, c.hiddenSize}, layer);
  spec.add(m + "experts.down_proj", {c.numExperts, c.hiddenSize, inter}, layer);
  const int64_t shared = inter * c.numSharedExperts;
  spec.add(m + "shared_experts.gate_proj.weight", {shared, c.hiddenSize}, layer);
  spec.add(m + "shared_experts.up_proj.weight", {shared, c.hiddenSize}, layer);
  spec.add(m + "shared_experts.down_proj.weight", {c.hiddenSize, shared}, layer);
}

} // namespace

std::string layerPrefix(int64_t layer) { return "model.layers." + std::to_string(layer) + "."; }

std::string formatShape(const std::vector<int64_t> &shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    text += (i ? "," : "") + std::to_string(shape[i]);
  return text + "]";
}

std::vector<WeightSpecEntry> weightSpec(const ModelConfig &c) {
  c.validate();
  std::vector<WeightSpecEntry> entries;
  SpecBuilder spec(entries);
  spec.add("model.embed_tokens.weight", {c.vocabSize, c.hiddenSize});
  for (int64_t layer = 0; layer < c.numLayers; ++layer) {
    const std::string p = layerPrefix(layer);
    spec.add(p + "input_layernorm.weight", {c.hiddenSize}, layer);
    spec.add(p + "post_attention_layernorm.weight", {c.hiddenSize}, layer);
    addHyperConnection(spec, p + "attn_hc", layer, c);
    addHyperConnection(spec, p + "ffn_hc", layer, c);
    addAttention(spec, p, layer, c);
    addMoE(spec, p, layer, c);
  }
  spec.add("model.norm.weight", {c.hiddenSize});
  spec.add("model.hc_head.hc_fn", {c.hcMult, c.hcMult * c.hiddenSize});
  spec.add("model.hc_head.hc_base", {c.hcMult});
  spec.add("model.hc_head.hc_scale", {1});
  spec.add("lm_head.weight", {c.vocabSize, c.hiddenSize});
  return entries;
}

} // namespace v4c
