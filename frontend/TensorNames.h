// Checkpoint tensor names -> canonical names.
//
// Canonical = the HF layout of V4-MODEL.md ("model.layers.3.self_attn.q_a_proj.weight",
// stacked experts "model.layers.3.mlp.experts.gate_up_proj"). Checkpoints also
// come as transformers 5.17 save_pretrained writes them
// ("model.layers.3.attn.wq_a.weight", per-expert "ffn.experts.J.w1.weight",
// "head.weight") and as DeepSeek's release ("layers.3.attn.wq_a.weight",
// "embed.weight", "hc_head_fn"). One table here knows all three.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace v4c {

// Which slice of a stacked expert tensor a per-expert checkpoint tensor is:
// gate_up_proj[e] = [gate; up], down_proj[e] = down.
enum class ExpertPart : uint8_t { None = 0, Gate = 1, Up = 2, Down = 3 };

struct CanonicalRef {
  std::string canonical;
  int64_t expert = -1; // per-expert tensors only
  ExpertPart part = ExpertPart::None;
};

// The canonical name of a stored tensor, or nullopt when the name belongs to
// none of the layouts.
std::optional<CanonicalRef> canonicalName(const std::string &stored);

// Stored tensors the model does not use: MTP layers, rotary buffers.
bool isIgnoredTensor(const std::string &stored);

// For an FP8/FP4 scale tensor ("X.weight_scale_inv", DeepSeek's "X.scale"),
// the weight it scales ("X.weight"); nullopt for anything else. The caller
// checks that weight exists (mHC tensors are named "...scale" too).
std::optional<std::string> scaledWeightName(const std::string &stored);

// The names `canonical` has in the non-canonical layouts, for error messages.
std::vector<std::string> storedNameCandidates(const std::string &canonical);

} // namespace v4c
