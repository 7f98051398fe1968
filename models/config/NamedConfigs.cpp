// Sizes from /work/shared/V4-MODEL.md ("Real sizes") and the released configs.
#include "models/config/NamedConfigs.h"

#include "common/Error.h"

namespace v4c {
namespace {

// Rope of the released models: plain RoPE (theta 10000) for sliding layers,
// YaRN x16 over 65536 positions (theta 160000) for compressed ones; 64 of the
// 512 head channels rotate.
void setReleasedRope(ModelConfig &config) {
  config.ropeMain = RopeParams();
  config.ropeMain.type = "default";
  config.ropeMain.theta = 10000.0;
  config.ropeMain.partialRotaryFactor = 64.0 / 512.0;
  config.ropeMain.ropeDim = 64;

  config.ropeCompress = RopeParams();
  config.ropeCompress.type = "yarn";
  config.ropeCompress.theta = 160000.0;
  config.ropeCompress.partialRotaryFactor = 64.0 / 512.0;
  config.ropeCompress.ropeDim = 64;
  config.ropeCompress.factor = 16.0;
  config.ropeCompress.originalMaxPositionEmbeddings = 65536;
  config.ropeCompress.betaFast = 32.0;
  config.ropeCompress.betaSlow = 1.0;
  config.ropeCompress.attentionScaling = 1.0; // V4 does not rescale cos/sin
}

void setHashSchedule(ModelConfig &config, int64_t hashLayers) {
  config.mlpTypes.clear();
  for (int64_t layer = 0; layer < config.numLayers; ++layer)
    config.mlpTypes.push_back(layer < hashLayers ? MlpKind::HashMoE : MlpKind::MoE);
}

ModelConfig flash() {
  ModelConfig config;
  config.vocabSize = 129280;
  config.hiddenSize = 4096;
  config.numLayers = 43;
  config.numHeads = 64;
  config.headDim = 512;
  config.qLoraRank = 1024;
  config.oGroups = 8;
  config.oLoraRank = 1024;
  config.numExperts = 256;
  config.expertsPerToken = 6;
  config.numSharedExperts = 1;
  config.moeIntermediateSize = 2048;
  config.indexNumHeads = 64;
  config.indexHeadDim = 128;
  config.indexTopK = 512;
  config.hcMult = 4;
  config.hcSinkhornIters = 20;
  config.slidingWindow = 128;
  config.csaRate = 4;
  config.hcaRate = 128;
  config.maxPositionEmbeddings = 1048576;
  config.rmsNormEps = 1e-6;
  config.hcEps = 1e-6;
  config.routedScalingFactor = 1.5;
  config.swigluLimit = 10.0;
  config.scoringFunc = "sqrtsoftplus";
  config.tieWordEmbeddings = false;
  // compress_ratios [0,0,4] + [128,4]*20 (+ [0] for the MTP layer, not a model layer).
  config.layerTypes = {LayerKind::Sliding, LayerKind::Sliding, LayerKind::CSA};
  for (int i = 0; i < 20; ++i) {
    config.layerTypes.push_back(LayerKind::HCA);
    config.layerTypes.push_back(LayerKind::CSA);
  }
  setHashSchedule(config, 3);
  setReleasedRope(config);
  return config;
}

ModelConfig pro() {
  ModelConfig config = flash();
  config.numLayers = 61;
  config.hiddenSize = 7168;
  config.numHeads = 128;
  config.qLoraRank = 1536;
  config.oGroups = 16;
  config.numExperts = 384;
  config.moeIntermediateSize = 3072;
  // transformers' V4-Pro default: two HCA layers, then CSA/HCA interleaved.
  config.layerTypes = {LayerKind::HCA, LayerKind::HCA};
  while (static_cast<int64_t>(config.layerTypes.size()) < config.numLayers)
    config.layerTypes.push_back(config.layerTypes.size() % 2 == 0 ? LayerKind::CSA : LayerKind::HCA);
  setHashSchedule(config, 3);
  return config;
}

ModelConfig flashTwoLayer() {
  ModelConfig config = flash();
  config.numLayers = 2;
  config.layerTypes = {LayerKind::CSA, LayerKind::HCA};
  setHashSchedule(config, 0);
  return config;
}

} // namespace

std::vector<std::string> namedConfigNames() { return {"v4-flash", "v4-pro", "v4-flash-2layer"}; }

ModelConfig namedConfig(const std::string &name) {
  ModelConfig config;
  if (name == "v4-flash")
    config = flash();
  else if (name == "v4-pro")
    config = pro();
  else if (name == "v4-flash-2layer")
    config = flashTwoLayer();
  else {
    std::string known;
    for (const std::string &each : namedConfigNames())
      known += (known.empty() ? "" : ", ") + each;
    throw Error("unknown model config \"" + name + "\"; known: " + known);
  }
  config.validate();
  return config;
}

} // namespace v4c
