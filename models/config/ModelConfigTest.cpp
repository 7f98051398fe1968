#include "models/config/ModelConfig.h"

#include "common/Error.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <functional>
#include <fstream>
#include <sstream>

namespace v4c {
namespace {

using json = nlohmann::json;

std::string conformance(const std::string &name) {
  return std::string(V4_CONFORMANCE_DIR) + "/" + name + "/config.json";
}

json readJson(const std::string &path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return json::parse(text.str());
}

// The error message fromJson gives for `config`, or "" when it parses.
std::string errorOf(const json &config) {
  try {
    ModelConfig::fromJson(config);
  } catch (const Error &error) {
    return error.what();
  }
  return "";
}

TEST(ModelConfig, ParsesTinyMixed) {
  ModelConfig c = ModelConfig::fromFile(conformance("tiny-mixed"));
  EXPECT_EQ(c.vocabSize, 512);
  EXPECT_EQ(c.hiddenSize, 64);
  EXPECT_EQ(c.numLayers, 4);
  EXPECT_EQ(c.numHeads, 4);
  EXPECT_EQ(c.headDim, 32);
  EXPECT_EQ(c.qLoraRank, 32);
  EXPECT_EQ(c.oGroups, 2);
  EXPECT_EQ(c.oLoraRank, 16);
  EXPECT_EQ(c.numExperts, 8);
  EXPECT_EQ(c.expertsPerToken, 2);
  EXPECT_EQ(c.numSharedExperts, 1);
  EXPECT_EQ(c.moeIntermediateSize, 48);
  EXPECT_EQ(c.indexNumHeads, 16);
  EXPECT_EQ(c.indexHeadDim, 16);
  EXPECT_EQ(c.indexTopK, 4);
  EXPECT_EQ(c.hcMult, 4);
  EXPECT_EQ(c.hcSinkhornIters, 6);
  EXPECT_EQ(c.slidingWindow, 8);
  EXPECT_EQ(c.csaRate, 4);
  EXPECT_EQ(c.hcaRate, 16);
  EXPECT_EQ(c.maxPositionEmbeddings, 65536);
  EXPECT_DOUBLE_EQ(c.rmsNormEps, 1e-6);
  EXPECT_DOUBLE_EQ(c.hcEps, 1e-6);
  EXPECT_DOUBLE_EQ(c.routedScalingFactor, 1.5);
  EXPECT_DOUBLE_EQ(c.swigluLimit, 10.0);
  EXPECT_EQ(c.scoringFunc, "sqrtsoftplus");
  EXPECT_FALSE(c.tieWordEmbeddings);
  EXPECT_EQ(c.layerTypes, (std::vector<LayerKind>{LayerKind::Sliding, LayerKind::CSA, LayerKind::HCA,
                                                  LayerKind::CSA}));
  EXPECT_EQ(c.mlpTypes, (std::vector<MlpKind>{MlpKind::HashMoE, MlpKind::HashMoE, MlpKind::HashMoE,
                                              MlpKind::MoE}));
  EXPECT_EQ(c.compressRate(0), 0);
  EXPECT_EQ(c.compressRate(1), 4);
  EXPECT_EQ(c.compressRate(2), 16);
  EXPECT_EQ(c.ropeMain.type, "default");
  EXPECT_DOUBLE_EQ(c.ropeMain.theta, 10000.0);
  EXPECT_EQ(c.ropeMain.ropeDim, 4);
  EXPECT_DOUBLE_EQ(c.ropeCompress.theta, 160000.0);
  EXPECT_EQ(&c.ropeFor(0), &c.ropeMain);
  EXPECT_EQ(&c.ropeFor(2), &c.ropeCompress);
  // Default rope: 1 / 10000^(2i/4) = [1, 0.01].
  std::vector<float> inv = c.ropeMain.invFreq();
  ASSERT_EQ(inv.size(), 2u);
  EXPECT_EQ(inv[0], 1.0f);
  EXPECT_EQ(inv[1], 1.0f / 100.0f);
}

TEST(ModelConfig, ParsesTinyRealRatesAndYarn) {
  ModelConfig rates = ModelConfig::fromFile(conformance("tiny-real-rates"));
  EXPECT_EQ(rates.numLayers, 3);
  EXPECT_EQ(rates.hcaRate, 128);
  EXPECT_EQ(rates.indexTopK, 16);
  EXPECT_EQ(rates.slidingWindow, 128);
  EXPECT_EQ(rates.layerTypes, (std::vector<LayerKind>{LayerKind::CSA, LayerKind::HCA, LayerKind::CSA}));
  EXPECT_EQ(rates.mlpTypes, std::vector<MlpKind>(3, MlpKind::HashMoE));

  ModelConfig yarn = ModelConfig::fromFile(conformance("tiny-yarn"));
  EXPECT_EQ(yarn.hcaRate, 32);
  EXPECT_EQ(yarn.maxPositionEmbeddings, 4096);
  EXPECT_EQ(yarn.ropeMain.type, "default");
  EXPECT_EQ(yarn.ropeCompress.type, "yarn");
  EXPECT_DOUBLE_EQ(yarn.ropeCompress.factor, 16.0);
  EXPECT_DOUBLE_EQ(yarn.ropeCompress.betaFast, 32.0);
  EXPECT_DOUBLE_EQ(yarn.ropeCompress.betaSlow, 1.0);
  EXPECT_EQ(yarn.ropeCompress.originalMaxPositionEmbeddings, 64);
  EXPECT_DOUBLE_EQ(yarn.ropeCompress.attentionScaling, 1.0);
  EXPECT_EQ(yarn.ropeCompress.ropeDim, 4);
}

// YaRN by hand, in double: dim 4, base 160000, factor 16, original 64,
// beta 32 / 1.
TEST(RopeParams, YarnInvFreqMatchesHandComputation) {
  ModelConfig yarn = ModelConfig::fromFile(conformance("tiny-yarn"));
  const double dim = 4, base = 160000, factor = 16, original = 64;
  const double pi = std::acos(-1.0);
  auto correction = [&](double rotations) {
    return dim * std::log(original / (rotations * 2 * pi)) / (2 * std::log(base));
  };
  // correction(32) = -0.191 -> floor -1 -> clamped to 0; correction(1) = 0.387 -> ceil 1.
  const double low = std::max(std::floor(correction(32)), 0.0);
  const double high = std::min(std::ceil(correction(1)), dim - 1);
  ASSERT_EQ(low, 0.0);
  ASSERT_EQ(high, 1.0);
  std::vector<double> expected;
  for (int i = 0; i < 2; ++i) {
    const double posFreq = std::pow(base, 2.0 * i / dim);
    const double ramp = std::min(std::max((i - low) / (high - low), 0.0), 1.0);
    const double keep = 1.0 - ramp; // weight of the extrapolated (original) frequency
    expected.push_back((1.0 / (factor * posFreq)) * (1.0 - keep) + (1.0 / posFreq) * keep);
  }
  // i = 0 keeps the original frequency 1, i = 1 is fully interpolated: 1/(16*400).
  EXPECT_DOUBLE_EQ(expected[0], 1.0);
  EXPECT_DOUBLE_EQ(expected[1], 1.0 / 6400.0);
  std::vector<float> inv = yarn.ropeCompress.invFreq();
  ASSERT_EQ(inv.size(), 2u);
  for (size_t i = 0; i < 2; ++i)
    EXPECT_NEAR(inv[i], expected[i], 1e-6 * expected[i]) << "i=" << i;
}

// A wider YaRN ramp at V4's sizes (dim 64, base 160000 = 20^4, factor 16,
// original 65536, beta 32 / 1), pinned to values derived by hand rather than a
// second copy of the formula. The correction range is [15, 25]
// (64 ln(65536 / (2 pi r)) / (2 ln 160000) = 15.45 for r = 32, floored, and 24.71
// for r = 1, ceiled), so i = 16 is 10% and i = 24 90% interpolated;
// 160000^(2i/64) is 20, 400, 8000 at i = 8, 16, 24.
TEST(RopeParams, YarnRampAtRealSizes) {
  RopeParams rope;
  rope.type = "yarn";
  rope.theta = 160000;
  rope.ropeDim = 64;
  rope.factor = 16;
  rope.originalMaxPositionEmbeddings = 65536;
  std::vector<float> inv = rope.invFreq();
  ASSERT_EQ(inv.size(), 32u);
  const std::pair<int, double> handDerived[] = {
      {0, 1.0},                                       // below the ramp: the original frequency
      {8, 1.0 / 20},                                  // still original
      {16, 0.1 / (16 * 400.0) + 0.9 / 400.0},         // = 2.265625e-3
      {24, 0.9 / (16 * 8000.0) + 0.1 / 8000.0},       // = 1.953125e-5
  };
  for (const auto &[i, expected] : handDerived)
    EXPECT_NEAR(inv[i], expected, 1e-6 * expected) << "i=" << i;
  // Past the ramp every frequency is the original one divided by the factor:
  // the ratio of neighbours is the plain rope's 160000^(-1/32) on both sides.
  const double step = 1.0 / std::pow(160000.0, 1.0 / 32);
  for (int i : {1, 14, 26, 31})
    EXPECT_NEAR(inv[i] / inv[i - 1], step, 1e-6) << "i=" << i;
  for (int i = 1; i < 32; ++i)
    EXPECT_LT(inv[i], inv[i - 1]) << "frequencies must fall with i, i=" << i;
}

TEST(ModelConfig, LegacyCompressRatiosAndHashLayers) {
  json config = readJson(conformance("tiny-mixed"));
  for (const char *key : {"layer_types", "mlp_layer_types", "compress_rates", "rope_parameters"})
    config.erase(key);
  config["num_hidden_layers"] = 7;
  config["compress_ratios"] = {0, 0, 4, 128, 4, 128, 0};
  config["num_hash_layers"] = 3;
  config["rope_scaling"] = {{"type", "yarn"},
                            {"factor", 16},
                            {"original_max_position_embeddings", 65536},
                            {"beta_fast", 32},
                            {"beta_slow", 1}};
  ModelConfig c = ModelConfig::fromJson(config);
  using L = LayerKind;
  EXPECT_EQ(c.layerTypes, (std::vector<L>{L::Sliding, L::Sliding, L::CSA, L::HCA, L::CSA, L::HCA, L::Sliding}));
  EXPECT_EQ(c.mlpTypes, (std::vector<MlpKind>{MlpKind::HashMoE, MlpKind::HashMoE, MlpKind::HashMoE, MlpKind::MoE,
                                              MlpKind::MoE, MlpKind::MoE, MlpKind::MoE}));
  EXPECT_EQ(c.csaRate, 4);
  EXPECT_EQ(c.hcaRate, 128);
  EXPECT_EQ(c.ropeMain.type, "default");
  EXPECT_DOUBLE_EQ(c.ropeMain.theta, 10000.0);
  EXPECT_EQ(c.ropeCompress.type, "yarn");
  EXPECT_DOUBLE_EQ(c.ropeCompress.theta, 160000.0);
  EXPECT_EQ(c.ropeCompress.originalMaxPositionEmbeddings, 65536);
  // No attention_factor: HF's default 0.1 ln(16) + 1.
  EXPECT_NEAR(c.ropeCompress.attentionScaling, 0.1 * std::log(16.0) + 1.0, 1e-12);
  EXPECT_EQ(c.ropeCompress.ropeDim, 4); // partial_rotary_factor 0.125 of head_dim 32
}

// V4-MODEL.md: compress_ratios [0,0,4] + [128,4]*20 + [0] for 43 layers (the
// last entry is the MTP layer's).
TEST(ModelConfig, RealV4FlashSchedule) {
  json config = readJson(conformance("tiny-mixed"));
  for (const char *key : {"layer_types", "mlp_layer_types", "compress_rates"})
    config.erase(key);
  json ratios = {0, 0, 4};
  for (int i = 0; i < 20; ++i) {
    ratios.push_back(128);
    ratios.push_back(4);
  }
  ratios.push_back(0);
  ASSERT_EQ(ratios.size(), 44u);
  config["compress_ratios"] = ratios;
  config["num_hidden_layers"] = 43;
  config["num_hash_layers"] = 3;
  ModelConfig c = ModelConfig::fromJson(config);
  ASSERT_EQ(c.layerTypes.size(), 43u);
  EXPECT_EQ(c.layerTypes[0], LayerKind::Sliding);
  EXPECT_EQ(c.layerTypes[1], LayerKind::Sliding);
  EXPECT_EQ(c.layerTypes[2], LayerKind::CSA);
  for (int layer = 3; layer < 43; ++layer)
    EXPECT_EQ(c.layerTypes[layer], layer % 2 == 1 ? LayerKind::HCA : LayerKind::CSA) << layer;
  EXPECT_EQ(c.compressRate(41), 128);
  EXPECT_EQ(c.compressRate(42), 4);
  EXPECT_EQ(c.mlpTypes[2], MlpKind::HashMoE);
  EXPECT_EQ(c.mlpTypes[3], MlpKind::MoE);
}

TEST(ModelConfig, DefaultsLikeTransformers) {
  json config = readJson(conformance("tiny-mixed"));
  for (const char *key : {"swiglu_limit", "hc_eps", "routed_scaling_factor", "hc_sinkhorn_iters", "n_shared_experts",
                          "max_position_embeddings", "rms_norm_eps", "scoring_func", "mlp_layer_types"})
    config.erase(key);
  ModelConfig c = ModelConfig::fromJson(config);
  EXPECT_DOUBLE_EQ(c.swigluLimit, 10.0);
  EXPECT_DOUBLE_EQ(c.hcEps, 1e-6);
  EXPECT_DOUBLE_EQ(c.routedScalingFactor, 1.5);
  EXPECT_EQ(c.hcSinkhornIters, 20);
  EXPECT_EQ(c.numSharedExperts, 1);
  EXPECT_EQ(c.maxPositionEmbeddings, 1048576);
  EXPECT_EQ(c.scoringFunc, "sqrtsoftplus");
  EXPECT_EQ(c.mlpTypes, (std::vector<MlpKind>{MlpKind::HashMoE, MlpKind::HashMoE, MlpKind::HashMoE, MlpKind::MoE}));
}

TEST(ModelConfig, ToJsonRoundTrips) {
  for (const char *name : {"tiny-mixed", "tiny-real-rates", "tiny-yarn"}) {
    ModelConfig original = ModelConfig::fromFile(conformance(name));
    json written = original.toJson();
    EXPECT_TRUE(written.contains("layer_types"));
    EXPECT_TRUE(written.contains("mlp_layer_types"));
    EXPECT_EQ(written["compress_rates"]["heavily_compressed_attention"], original.hcaRate);
    EXPECT_EQ(written["rope_parameters"]["compress"]["rope_type"], original.ropeCompress.type);
    ModelConfig reread = ModelConfig::fromJson(json::parse(written.dump()));
    EXPECT_TRUE(reread == original) << name;
    EXPECT_EQ(reread.layerTypes, original.layerTypes);
    EXPECT_EQ(reread.ropeCompress.invFreq(), original.ropeCompress.invFreq());
    EXPECT_EQ(reread.ropeCompress.attentionScaling, original.ropeCompress.attentionScaling);
  }
  ModelConfig a = ModelConfig::fromFile(conformance("tiny-mixed"));
  ModelConfig b = a;
  b.slidingWindow = 9;
  EXPECT_TRUE(a != b);
}

struct InvalidCase {
  const char *what;
  std::function<void(json &)> edit;
  std::string expected;
};

TEST(ModelConfig, ValidationErrorsNameTheKey) {
  const json base = readJson(conformance("tiny-mixed"));
  std::vector<InvalidCase> cases = {
      {"o_groups", [](json &j) { j["o_groups"] = 3; },
       "config.json: \"o_groups\" (3) must divide \"num_attention_heads\" (4)"},
      {"zero size", [](json &j) { j["hidden_size"] = 0; }, "config.json: \"hidden_size\" must be positive, got 0"},
      {"negative size", [](json &j) { j["index_topk"] = -4; }, "\"index_topk\" must be positive, got -4"},
      {"missing", [](json &j) { j.erase("vocab_size"); }, "config.json: \"vocab_size\" is missing"},
      {"type", [](json &j) { j["head_dim"] = "32"; }, "\"head_dim\" must be an integer, got \"32\""},
      {"fractional", [](json &j) { j["q_lora_rank"] = 3.5; }, "\"q_lora_rank\" must be an integer, got 3.5"},
      {"layer count", [](json &j) { j["layer_types"].erase(0); },
       "\"layer_types\" has 3 entries but \"num_hidden_layers\" is 4"},
      {"mlp count", [](json &j) { j["mlp_layer_types"].push_back("moe"); },
       "\"mlp_layer_types\" has 5 entries but \"num_hidden_layers\" is 4"},
      {"layer string", [](json &j) { j["layer_types"][2] = "full_attention"; },
       "\"layer_types\"[2] is \"full_attention\"; expected sliding_attention"},
      {"mlp string", [](json &j) { j["mlp_layer_types"][0] = "dense"; },
       "\"mlp_layer_types\"[0] is \"dense\"; expected hash_moe or moe"},
      {"rope type", [](json &j) { j["rope_parameters"]["compress"]["rope_type"] = "llama3"; },
       "\"rope_parameters.compress.rope_type\" is \"llama3\"; supported: default, yarn"},
      {"odd rope", [](json &j) { j["rope_parameters"]["main"]["partial_rotary_factor"] = 0.09375; },
       "\"rope_parameters.main.partial_rotary_factor\" (0.09375) gives rope dim 3; it must be positive and even"},
      {"rope > head_dim", [](json &j) { j["rope_parameters"]["main"]["partial_rotary_factor"] = 2.0; },
       "gives rope dim 64, more than \"head_dim\" (32)"},
      {"rope > index_head_dim", [](json &j) { j["rope_parameters"]["compress"]["partial_rotary_factor"] = 0.75; },
       "gives rope dim 24, more than \"index_head_dim\" (16)"},
      {"top-k", [](json &j) { j["num_experts_per_tok"] = 9; },
       "\"num_experts_per_tok\" (9) must not exceed \"n_routed_experts\" (8)"},
      {"scoring", [](json &j) { j["scoring_func"] = "softmax"; },
       "\"scoring_func\" is \"softmax\"; only sqrtsoftplus is supported"},
      {"no schedule", [](json &j) { j.erase("layer_types"); }, "needs \"layer_types\""},
      {"bad rate key", [](json &j) { j["compress_rates"]["sliding_attention"] = 2; },
       "\"compress_rates.sliding_attention\" is not a compressed layer type"},
      {"zero rate", [](json &j) { j["compress_rates"]["heavily_compressed_attention"] = 0; },
       "\"compress_rates.heavily_compressed_attention\" must be positive, got 0"},
      {"rope_parameters", [](json &j) { j["rope_parameters"].erase("compress"); },
       "\"rope_parameters\" must be an object with \"main\" and \"compress\" entries"},
      {"yarn factor", [](json &j) {
         j["rope_parameters"]["compress"] = {{"rope_type", "yarn"}, {"factor", -2},
                                             {"original_max_position_embeddings", 64}};
       }, "\"rope_parameters.compress.factor\" must be positive, got -2"},
      {"kv heads", [](json &j) { j["num_key_value_heads"] = 2; }, "\"num_key_value_heads\" is 2"},
      {"eps", [](json &j) { j["rms_norm_eps"] = 0.0; }, "\"rms_norm_eps\" must be positive, got 0"},
      {"swiglu", [](json &j) { j["swiglu_limit"] = -1.0; }, "\"swiglu_limit\" must be non-negative, got -1"},
      {"not object", [](json &j) { j = json::array(); }, "config.json: the top level must be a JSON object"},
      {"short ratios", [](json &j) {
         j.erase("layer_types");
         j["compress_ratios"] = {0, 4};
       }, "\"compress_ratios\" has 2 entries but \"num_hidden_layers\" is 4"},
      {"mixed hca rates", [](json &j) {
         j.erase("layer_types");
         j.erase("compress_rates");
         j["compress_ratios"] = {0, 128, 4, 64};
       }, "\"compress_ratios[3]\" is 64 but earlier heavily compressed layers use 128"},
      {"hash layers", [](json &j) {
         j.erase("mlp_layer_types");
         j["num_hash_layers"] = 5;
       }, "\"num_hash_layers\" (5) must be between 0 and \"num_hidden_layers\" (4)"},
  };
  for (const InvalidCase &c : cases) {
    json config = base;
    c.edit(config);
    const std::string message = errorOf(config);
    EXPECT_NE(message.find(c.expected), std::string::npos)
        << c.what << ": got \"" << message << "\", expected to contain \"" << c.expected << "\"";
    EXPECT_EQ(message.find('\n'), std::string::npos) << c.what;
  }
}

TEST(ModelConfig, FromFileNamesThePath) {
  const std::string path = ::testing::TempDir() + "/h1-bad-config.json";
  json config = readJson(conformance("tiny-mixed"));
  config["o_groups"] = 3;
  std::ofstream(path) << config.dump();
  try {
    ModelConfig::fromFile(path);
    FAIL() << "expected an error";
  } catch (const Error &error) {
    EXPECT_EQ(std::string(error.what()),
              path + ": \"o_groups\" (3) must divide \"num_attention_heads\" (4)");
  }
  std::ofstream(path) << "{not json";
  try {
    ModelConfig::fromFile(path);
    FAIL() << "expected an error";
  } catch (const Error &error) {
    EXPECT_EQ(std::string(error.what()), path + ": not valid JSON");
  }
  EXPECT_THROW(ModelConfig::fromFile(path + ".missing"), Error);
}

} // namespace
} // namespace v4c
