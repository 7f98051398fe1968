// The rename table (transformers' conversion_mapping.py for deepseek_v4, as
// observed in the conformance checkpoints and DeepSeek's release).
#include "frontend/TensorNames.h"

#include <cctype>
#include <unordered_map>

namespace v4c {
namespace {

struct Rename {
  const char *canonical;
  const char *deepseek;
};

// Layer-relative names: canonical suffix <- DeepSeek / save_pretrained suffix.
const Rename kLayerRenames[] = {
    {"input_layernorm.weight", "attn_norm.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"attn_hc.fn", "hc_attn_fn"},
    {"attn_hc.base", "hc_attn_base"},
    {"attn_hc.scale", "hc_attn_scale"},
    {"ffn_hc.fn", "hc_ffn_fn"},
    {"ffn_hc.base", "hc_ffn_base"},
    {"ffn_hc.scale", "hc_ffn_scale"},
    {"self_attn.q_a_proj.weight", "attn.wq_a.weight"},
    {"self_attn.q_a_norm.weight", "attn.q_norm.weight"},
    {"self_attn.q_b_proj.weight", "attn.wq_b.weight"},
    {"self_attn.kv_proj.weight", "attn.wkv.weight"},
    {"self_attn.kv_norm.weight", "attn.norm.weight"},
    {"self_attn.kv_norm.weight", "attn.kv_norm.weight"},
    {"self_attn.o_a_proj.weight", "attn.wo_a.weight"},
    {"self_attn.o_b_proj.weight", "attn.wo_b.weight"},
    {"self_attn.sinks", "attn.attn_sink"},
    {"self_attn.compressor.kv_proj.weight", "attn.compressor.wkv.weight"},
    {"self_attn.compressor.gate_proj.weight", "attn.compressor.wgate.weight"},
    {"self_attn.compressor.kv_norm.weight", "attn.compressor.norm.weight"},
    {"self_attn.compressor.position_bias", "attn.compressor.ape"},
    {"self_attn.compressor.indexer.kv_proj.weight", "attn.indexer.compressor.wkv.weight"},
    {"self_attn.compressor.indexer.gate_proj.weight", "attn.indexer.compressor.wgate.weight"},
    {"self_attn.compressor.indexer.kv_norm.weight", "attn.indexer.compressor.norm.weight"},
    {"self_attn.compressor.indexer.position_bias", "attn.indexer.compressor.ape"},
    {"self_attn.compressor.indexer.q_b_proj.weight", "attn.indexer.wq_b.weight"},
    {"self_attn.compressor.indexer.scorer.weights_proj.weight", "attn.indexer.weights_proj.weight"},
    {"mlp.gate.weight", "ffn.gate.weight"},
    {"mlp.gate.e_score_correction_bias", "ffn.gate.bias"},
    {"mlp.gate.tid2eid", "ffn.gate.tid2eid"},
    {"mlp.shared_experts.gate_proj.weight", "ffn.shared_experts.w1.weight"},
    {"mlp.shared_experts.up_proj.weight", "ffn.shared_experts.w3.weight"},
    {"mlp.shared_experts.down_proj.weight", "ffn.shared_experts.w2.weight"},
    // Stacked experts exist only in the canonical layout.
    {"mlp.experts.gate_up_proj", nullptr},
    {"mlp.experts.down_proj", nullptr},
};

// Whole-model tensors: canonical <- save_pretrained / DeepSeek names.
const Rename kGlobalRenames[] = {
    {"model.embed_tokens.weight", "embed.weight"},
    {"model.norm.weight", "norm.weight"},
    {"lm_head.weight", "head.weight"},
    {"model.hc_head.hc_fn", "hc_head_fn"},
    {"model.hc_head.hc_base", "hc_head_base"},
    {"model.hc_head.hc_scale", "hc_head_scale"},
};

struct ExpertRename {
  const char *suffix;
  ExpertPart part;
};

const ExpertRename kExpertRenames[] = {
    {"w1.weight", ExpertPart::Gate},        {"w3.weight", ExpertPart::Up},
    {"w2.weight", ExpertPart::Down},        {"gate_proj.weight", ExpertPart::Gate},
    {"up_proj.weight", ExpertPart::Up},     {"down_proj.weight", ExpertPart::Down},
};

bool startsWith(const std::string &text, const std::string &prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

bool endsWith(const std::string &text, const std::string &suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Reads "<digits>." at `pos`; returns the number and moves `pos` past the dot.
std::optional<int64_t> readIndex(const std::string &text, size_t &pos) {
  size_t end = pos;
  while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end])) && end - pos < 9)
    ++end;
  if (end == pos || end >= text.size() || text[end] != '.')
    return std::nullopt;
  const int64_t value = std::stoll(text.substr(pos, end - pos));
  pos = end + 1;
  return value;
}

const std::unordered_map<std::string, std::string> &layerSuffixMap() {
  static const std::unordered_map<std::string, std::string> map = [] {
    std::unordered_map<std::string, std::string> built;
    for (const Rename &rename : kLayerRenames) {
      built[rename.canonical] = rename.canonical;
      if (rename.deepseek)
        built[rename.deepseek] = rename.canonical;
    }
    return built;
  }();
  return map;
}

std::optional<CanonicalRef> expertTensor(const std::string &prefix, const std::string &rest) {
  for (const char *group : {"ffn.experts.", "mlp.experts."}) {
    if (!startsWith(rest, group))
      continue;
    size_t pos = std::string(group).size();
    std::optional<int64_t> expert = readIndex(rest, pos);
    if (!expert)
      return std::nullopt;
    const std::string suffix = rest.substr(pos);
    for (const ExpertRename &rename : kExpertRenames) {
      if (suffix != rename.suffix)
        continue;
      const char *stacked = rename.part == ExpertPart::Down ? "mlp.experts.down_proj" : "mlp.experts.gate_up_proj";
      return CanonicalRef{prefix + stacked, *expert, rename.part};
    }
  }
  return std::nullopt;
}

} // namespace

std::optional<CanonicalRef> canonicalName(const std::string &stored) {
  for (const Rename &rename : kGlobalRenames)
    if (stored == rename.canonical || stored == rename.deepseek)
      return CanonicalRef{rename.canonical};

  for (const char *layers : {"model.layers.", "layers."}) {
    if (!startsWith(stored, layers))
      continue;
    size_t pos = std::string(layers).size();
    std::optional<int64_t> layer = readIndex(stored, pos);
    if (!layer)
      return std::nullopt;
    const std::string prefix = "model.layers." + std::to_string(*layer) + ".";
    const std::string rest = stored.substr(pos);
    auto it = layerSuffixMap().find(rest);
    if (it != layerSuffixMap().end())
      return CanonicalRef{prefix + it->second};
    return expertTensor(prefix, rest);
  }
  return std::nullopt;
}

bool isIgnoredTensor(const std::string &stored) {
  return startsWith(stored, "mtp.") || startsWith(stored, "model.mtp.") ||
         stored.find("rotary_emb.") != std::string::npos || endsWith(stored, ".inv_freq") || stored == "freqs_cis";
}

std::optional<std::string> scaledWeightName(const std::string &stored) {
  if (endsWith(stored, ".weight_scale_inv"))
    return stored.substr(0, stored.size() - std::string("_scale_inv").size());
  if (endsWith(stored, ".scale"))
    return stored.substr(0, stored.size() - std::string(".scale").size()) + ".weight";
  return std::nullopt;
}

std::vector<std::string> storedNameCandidates(const std::string &canonical) {
  for (const Rename &rename : kGlobalRenames)
    if (canonical == rename.canonical)
      return {rename.deepseek};
  std::vector<std::string> names;
  size_t pos = std::string("model.layers.").size();
  if (!startsWith(canonical, "model.layers."))
    return names;
  std::optional<int64_t> layer = readIndex(canonical, pos);
  if (!layer)
    return names;
  const std::string suffix = canonical.substr(pos);
  const std::string index = std::to_string(*layer);
  for (const Rename &rename : kLayerRenames) {
    if (suffix != rename.canonical || !rename.deepseek)
      continue;
    names.push_back("model.layers." + index + "." + rename.deepseek);
    names.push_back("layers." + index + "." + rename.deepseek);
  }
  if (suffix == "mlp.experts.gate_up_proj")
    names.push_back("model.layers." + index + ".ffn.experts.<e>.{w1,w3}.weight");
  if (suffix == "mlp.experts.down_proj")
    names.push_back("model.layers." + index + ".ffn.experts.<e>.w2.weight");
  return names;
}

} // namespace v4c
