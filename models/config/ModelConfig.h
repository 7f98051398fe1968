// The DeepSeek-V4 model configuration: what config.json says, normalised.
//
// Shared by the compiler (model builder, frontend) and the runtime (which reads
// it back from the artifact), so it has no LLVM/MLIR dependency.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace v4c {

enum class LayerKind : uint8_t { Sliding = 0, CSA = 1, HCA = 2 };
enum class MlpKind : uint8_t { HashMoE = 0, MoE = 1 };

const char *layerKindName(LayerKind kind); // "sliding_attention", ...
const char *mlpKindName(MlpKind kind);     // "hash_moe", "moe"

// One entry of `rope_parameters` ("main" or "compress").
struct RopeParams {
  std::string type = "default"; // "default" or "yarn"
  double theta = 10000.0;
  double partialRotaryFactor = 1.0;
  int64_t ropeDim = 0; // int(head_dim * partial_rotary_factor), even
  // YaRN only.
  double factor = 1.0;
  double betaFast = 32.0;
  double betaSlow = 1.0;
  int64_t originalMaxPositionEmbeddings = 0;
  bool truncate = true; // HF `truncate`: floor/ceil the correction range
  // cos/sin are multiplied by this (HF's attention_scaling); 1.0 unless YaRN
  // without an explicit attention_factor.
  double attentionScaling = 1.0;

  // ropeDim/2 inverse frequencies, computed exactly as transformers 5.17 does
  // (fp32 arithmetic, YaRN ramp with truncation).
  std::vector<float> invFreq() const;
};

struct ModelConfig {
  int64_t vocabSize = 0;
  int64_t hiddenSize = 0;        // D
  int64_t numLayers = 0;
  int64_t numHeads = 0;          // nh
  int64_t headDim = 0;           // hd
  int64_t qLoraRank = 0;
  int64_t oGroups = 0;           // G
  int64_t oLoraRank = 0;         // R
  int64_t numExperts = 0;        // E (n_routed_experts)
  int64_t expertsPerToken = 0;   // k
  int64_t numSharedExperts = 1;
  int64_t moeIntermediateSize = 0; // I
  int64_t indexNumHeads = 0;     // nI
  int64_t indexHeadDim = 0;      // dI
  int64_t indexTopK = 0;         // K
  int64_t hcMult = 0;
  int64_t hcSinkhornIters = 0;
  int64_t slidingWindow = 0;     // W
  int64_t csaRate = 4;           // compress_rates.compressed_sparse_attention
  int64_t hcaRate = 128;         // compress_rates.heavily_compressed_attention
  int64_t maxPositionEmbeddings = 0;
  double rmsNormEps = 1e-6;
  double hcEps = 1e-6;
  double routedScalingFactor = 1.0;
  double swigluLimit = 0.0;
  std::string scoringFunc = "sqrtsoftplus";
  bool tieWordEmbeddings = false;
  std::vector<LayerKind> layerTypes; // size numLayers
  std::vector<MlpKind> mlpTypes;     // size numLayers
  RopeParams ropeMain;               // sliding layers
  RopeParams ropeCompress;           // CSA/HCA layers, compressors, indexer

  // Parses a transformers config.json (either schedule spelling). Throws
  // v4c::Error with a one-line message on anything missing or inconsistent.
  static ModelConfig fromJson(const nlohmann::json &json);
  static ModelConfig fromFile(const std::string &path);
  // Canonical JSON (the transformers spelling); fromJson(toJson()) round-trips.
  nlohmann::json toJson() const;
  // Throws v4c::Error naming the offending key when a field is out of range or
  // inconsistent (fromJson calls it; use it after editing a config by hand).
  void validate() const;
  // Field-by-field equality (via the canonical JSON).
  bool operator==(const ModelConfig &other) const;
  bool operator!=(const ModelConfig &other) const { return !(*this == other); }

  // 0 for sliding layers, csaRate or hcaRate otherwise.
  int64_t compressRate(int64_t layer) const;
  const RopeParams &ropeFor(int64_t layer) const;
};

} // namespace v4c
