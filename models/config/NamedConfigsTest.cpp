#include "models/config/NamedConfigs.h"
#include "models/config/WeightSpec.h"

#include "common/Error.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <map>

namespace v4c {
namespace {

TEST(NamedConfigs, V4Flash) {
  ModelConfig c = namedConfig("v4-flash");
  EXPECT_EQ(c.numLayers, 43);
  EXPECT_EQ(c.hiddenSize, 4096);
  EXPECT_EQ(c.vocabSize, 129280);
  EXPECT_EQ(c.numHeads, 64);
  EXPECT_EQ(c.headDim, 512);
  EXPECT_EQ(c.qLoraRank, 1024);
  EXPECT_EQ(c.oGroups, 8);
  EXPECT_EQ(c.oLoraRank, 1024);
  EXPECT_EQ(c.numExperts, 256);
  EXPECT_EQ(c.expertsPerToken, 6);
  EXPECT_EQ(c.moeIntermediateSize, 2048);
  EXPECT_EQ(c.slidingWindow, 128);
  EXPECT_EQ(c.csaRate, 4);
  EXPECT_EQ(c.hcaRate, 128);
  EXPECT_EQ(c.indexTopK, 512);
  EXPECT_EQ(c.indexNumHeads, 64);
  EXPECT_EQ(c.indexHeadDim, 128);
  EXPECT_EQ(c.hcMult, 4);
  EXPECT_EQ(c.hcSinkhornIters, 20);
  EXPECT_EQ(c.maxPositionEmbeddings, 1048576);
  EXPECT_DOUBLE_EQ(c.swigluLimit, 10.0);
  EXPECT_DOUBLE_EQ(c.routedScalingFactor, 1.5);
  EXPECT_EQ(c.ropeMain.ropeDim, 64);
  EXPECT_EQ(c.ropeCompress.type, "yarn");
  EXPECT_EQ(c.ropeCompress.originalMaxPositionEmbeddings, 65536);
  // [0,0,4] + [128,4]*20: the 43 model layers of compress_ratios.
  std::vector<int64_t> rates;
  for (int64_t layer = 0; layer < c.numLayers; ++layer)
    rates.push_back(c.compressRate(layer));
  std::vector<int64_t> expected = {0, 0, 4};
  for (int i = 0; i < 20; ++i) {
    expected.push_back(128);
    expected.push_back(4);
  }
  EXPECT_EQ(rates, expected);
  for (int64_t layer = 0; layer < c.numLayers; ++layer)
    EXPECT_EQ(c.mlpTypes[layer], layer < 3 ? MlpKind::HashMoE : MlpKind::MoE);
  // Survives the JSON round trip the artifact uses.
  EXPECT_TRUE(ModelConfig::fromJson(c.toJson()) == c);
}

TEST(NamedConfigs, V4ProAndTwoLayer) {
  ModelConfig pro = namedConfig("v4-pro");
  EXPECT_EQ(pro.numLayers, 61);
  EXPECT_EQ(pro.hiddenSize, 7168);
  EXPECT_EQ(pro.numHeads, 128);
  EXPECT_EQ(pro.qLoraRank, 1536);
  EXPECT_EQ(pro.oGroups, 16);
  EXPECT_EQ(pro.numExperts, 384);
  EXPECT_EQ(pro.moeIntermediateSize, 3072);
  EXPECT_EQ(pro.layerTypes.size(), 61u);
  EXPECT_EQ(pro.layerTypes[0], LayerKind::HCA);
  EXPECT_EQ(pro.layerTypes[2], LayerKind::CSA);
  EXPECT_EQ(pro.layerTypes[60], LayerKind::CSA);

  ModelConfig two = namedConfig("v4-flash-2layer");
  EXPECT_EQ(two.numLayers, 2);
  EXPECT_EQ(two.hiddenSize, 4096);
  EXPECT_EQ(two.layerTypes, (std::vector<LayerKind>{LayerKind::CSA, LayerKind::HCA}));
  EXPECT_EQ(two.mlpTypes, (std::vector<MlpKind>{MlpKind::MoE, MlpKind::MoE}));

  try {
    namedConfig("v5");
    FAIL() << "expected an error";
  } catch (const Error &error) {
    EXPECT_EQ(std::string(error.what()),
              "unknown model config \"v5\"; known: v4-flash, v4-pro, v4-flash-2layer");
  }
}

std::map<std::string, WeightSpecEntry> byName(const std::vector<WeightSpecEntry> &spec) {
  std::map<std::string, WeightSpecEntry> map;
  for (const WeightSpecEntry &entry : spec)
    EXPECT_TRUE(map.emplace(entry.name, entry).second) << "duplicate " << entry.name;
  return map;
}

TEST(WeightSpec, PerLayerKindTensorsAndShapes) {
  ModelConfig c = namedConfig("v4-flash");
  auto spec = byName(weightSpec(c));
  // Sliding layer 0: no compressor. CSA layer 2: compressor at 2*hd + indexer.
  // HCA layer 3: compressor at hd, no indexer.
  EXPECT_EQ(spec.count("model.layers.0.self_attn.compressor.kv_proj.weight"), 0u);
  EXPECT_EQ(spec.at("model.layers.2.self_attn.compressor.kv_proj.weight").shape, (std::vector<int64_t>{1024, 4096}));
  EXPECT_EQ(spec.at("model.layers.2.self_attn.compressor.position_bias").shape, (std::vector<int64_t>{4, 1024}));
  EXPECT_EQ(spec.at("model.layers.2.self_attn.compressor.indexer.q_b_proj.weight").shape,
            (std::vector<int64_t>{64 * 128, 1024}));
  EXPECT_EQ(spec.at("model.layers.3.self_attn.compressor.position_bias").shape, (std::vector<int64_t>{128, 512}));
  EXPECT_EQ(spec.count("model.layers.3.self_attn.compressor.indexer.kv_proj.weight"), 0u);
  // Hash layers carry tid2eid (int), routed layers the correction bias.
  EXPECT_EQ(spec.at("model.layers.2.mlp.gate.tid2eid").weightClass, WeightClass::Int);
  EXPECT_EQ(spec.at("model.layers.2.mlp.gate.tid2eid").shape, (std::vector<int64_t>{129280, 6}));
  EXPECT_EQ(spec.count("model.layers.2.mlp.gate.e_score_correction_bias"), 0u);
  EXPECT_EQ(spec.at("model.layers.3.mlp.gate.e_score_correction_bias").shape, (std::vector<int64_t>{256}));
  EXPECT_EQ(spec.at("model.layers.5.mlp.experts.gate_up_proj").shape, (std::vector<int64_t>{256, 4096, 4096}));
  EXPECT_EQ(spec.at("model.layers.5.mlp.experts.down_proj").shape, (std::vector<int64_t>{256, 4096, 2048}));
  EXPECT_EQ(spec.at("model.layers.5.self_attn.o_a_proj.weight").shape, (std::vector<int64_t>{8192, 4096}));
  EXPECT_EQ(spec.at("model.layers.5.attn_hc.fn").shape, (std::vector<int64_t>{24, 16384}));
  EXPECT_EQ(spec.at("model.hc_head.hc_fn").shape, (std::vector<int64_t>{4, 16384}));
  EXPECT_EQ(spec.at("lm_head.weight").shape, (std::vector<int64_t>{129280, 4096}));
  EXPECT_EQ(spec.at("model.layers.5.attn_hc.fn").layer, 5);
  EXPECT_EQ(spec.at("lm_head.weight").layer, -1);

  // Counts: 2 norms + 6 mHC + 8 attention, +4 compressor, +6 indexer, +7 MoE.
  std::map<int64_t, int> perLayer;
  for (const auto &[name, entry] : spec)
    perLayer[entry.layer]++;
  EXPECT_EQ(perLayer[0], 2 + 6 + 8 + 7);
  EXPECT_EQ(perLayer[2], 2 + 6 + 8 + 4 + 6 + 7);
  EXPECT_EQ(perLayer[3], 2 + 6 + 8 + 4 + 7);
  EXPECT_EQ(perLayer[-1], 6);
  EXPECT_EQ(formatShape({4, 64}), "[4,64]");
}

} // namespace
} // namespace v4c
