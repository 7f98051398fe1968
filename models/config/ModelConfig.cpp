// config.json <-> ModelConfig: both schedule spellings, transformers defaults,
// and validation with one-line errors that name the offending key.
#include "models/config/ModelConfig.h"

#include "common/Error.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <sstream>

namespace v4c {
namespace {

using json = nlohmann::json;

const char kPrefix[] = "config.json: ";

[[noreturn]] void fail(const std::string &message) { throw Error(kPrefix + message); }

std::string inQuotes(const std::string &key) { return "\"" + key + "\""; }

std::string formatNumber(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

// The value of `key`, or nullptr when it is absent or null (HF writes None as null).
const json *lookup(const json &object, const std::string &key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null())
    return nullptr;
  return &*it;
}

int64_t asInt(const json &value, const std::string &key) {
  if (value.is_number_unsigned()) {
    if (value.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
      fail(inQuotes(key) + " is too large: " + value.dump());
    return static_cast<int64_t>(value.get<uint64_t>());
  }
  if (value.is_number_integer())
    return value.get<int64_t>();
  if (value.is_number_float()) {
    // Python configs sometimes write integral sizes as 4.0.
    double number = value.get<double>();
    if (std::isfinite(number) && number == std::floor(number) && std::fabs(number) < 9.0e18)
      return static_cast<int64_t>(number);
  }
  fail(inQuotes(key) + " must be an integer, got " + value.dump());
}

double asNumber(const json &value, const std::string &key) {
  if (!value.is_number())
    fail(inQuotes(key) + " must be a number, got " + value.dump());
  return value.get<double>();
}

std::string asString(const json &value, const std::string &key) {
  if (!value.is_string())
    fail(inQuotes(key) + " must be a string, got " + value.dump());
  return value.get<std::string>();
}

bool asBool(const json &value, const std::string &key) {
  if (!value.is_boolean())
    fail(inQuotes(key) + " must be true or false, got " + value.dump());
  return value.get<bool>();
}

int64_t requiredInt(const json &object, const std::string &key) {
  const json *value = lookup(object, key);
  if (!value)
    fail(inQuotes(key) + " is missing");
  return asInt(*value, key);
}

int64_t intOr(const json &object, const std::string &key, int64_t fallback,
              const std::string &label = "") {
  const json *value = lookup(object, key);
  return value ? asInt(*value, label.empty() ? key : label) : fallback;
}

double numberOr(const json &object, const std::string &key, double fallback,
                const std::string &label = "") {
  const json *value = lookup(object, key);
  return value ? asNumber(*value, label.empty() ? key : label) : fallback;
}

LayerKind parseLayerKind(const std::string &name, const std::string &label) {
  for (LayerKind kind : {LayerKind::Sliding, LayerKind::CSA, LayerKind::HCA})
    if (name == layerKindName(kind))
      return kind;
  fail(label + " is \"" + name +
       "\"; expected sliding_attention, compressed_sparse_attention or "
       "heavily_compressed_attention");
}

MlpKind parseMlpKind(const std::string &name, const std::string &label) {
  for (MlpKind kind : {MlpKind::HashMoE, MlpKind::MoE})
    if (name == mlpKindName(kind))
      return kind;
  fail(label + " is \"" + name + "\"; expected hash_moe or moe");
}

const json &requireArray(const json &object, const std::string &key) {
  const json &value = object.at(key);
  if (!value.is_array())
    fail(inQuotes(key) + " must be a list, got " + value.dump());
  return value;
}

std::string countMismatch(const std::string &key, size_t entries, int64_t layers) {
  return inQuotes(key) + " has " + std::to_string(entries) + " entries but \"num_hidden_layers\" is " +
         std::to_string(layers);
}

// compress_rates {"compressed_sparse_attention": m, "heavily_compressed_attention": m'},
// or the older top-level compress_rate_csa / compress_rate_hca.
void parseCompressRates(const json &root, ModelConfig &config) {
  config.csaRate = intOr(root, "compress_rate_csa", 4);
  config.hcaRate = intOr(root, "compress_rate_hca", 128);
  if (const json *rates = lookup(root, "compress_rates")) {
    if (!rates->is_object())
      fail("\"compress_rates\" must be an object, got " + rates->dump());
    for (auto it = rates->begin(); it != rates->end(); ++it) {
      const std::string label = "compress_rates." + it.key();
      if (it.key() == "compressed_sparse_attention")
        config.csaRate = asInt(it.value(), label);
      else if (it.key() == "heavily_compressed_attention")
        config.hcaRate = asInt(it.value(), label);
      else
        fail(inQuotes(label) + " is not a compressed layer type; expected "
                             "compressed_sparse_attention or heavily_compressed_attention");
    }
  }
}

// Legacy per-layer compress_ratios (0 = sliding, csa rate = CSA, any other = HCA).
// The list may carry extra entries for MTP layers; only the first
// num_hidden_layers describe the model.
void parseCompressRatios(const json &root, ModelConfig &config) {
  const json &ratios = requireArray(root, "compress_ratios");
  if (ratios.size() < static_cast<size_t>(config.numLayers))
    fail(countMismatch("compress_ratios", ratios.size(), config.numLayers));
  const bool hcaGiven = lookup(root, "compress_rates") || lookup(root, "compress_rate_hca");
  bool hcaSeen = false;
  for (int64_t layer = 0; layer < config.numLayers; ++layer) {
    const std::string label = "compress_ratios[" + std::to_string(layer) + "]";
    const int64_t ratio = asInt(ratios[static_cast<size_t>(layer)], label);
    if (ratio < 0)
      fail(inQuotes(label) + " is " + std::to_string(ratio) + "; ratios must be 0 (sliding) or positive");
    if (ratio == 0) {
      config.layerTypes.push_back(LayerKind::Sliding);
    } else if (ratio == config.csaRate) {
      config.layerTypes.push_back(LayerKind::CSA);
    } else {
      if (!hcaGiven && !hcaSeen)
        config.hcaRate = ratio;
      if (ratio != config.hcaRate)
        fail(inQuotes(label) + " is " + std::to_string(ratio) + " but earlier heavily compressed layers use " +
             std::to_string(config.hcaRate) + "; all HCA layers must share one rate");
      hcaSeen = true;
      config.layerTypes.push_back(LayerKind::HCA);
    }
  }
}

void parseSchedule(const json &root, ModelConfig &config) {
  parseCompressRates(root, config);
  if (lookup(root, "layer_types")) {
    const json &types = requireArray(root, "layer_types");
    if (types.size() != static_cast<size_t>(config.numLayers))
      fail(countMismatch("layer_types", types.size(), config.numLayers));
    for (size_t i = 0; i < types.size(); ++i) {
      const std::string label = "\"layer_types\"[" + std::to_string(i) + "]";
      config.layerTypes.push_back(parseLayerKind(asString(types[i], label), label));
    }
  } else if (lookup(root, "compress_ratios")) {
    parseCompressRatios(root, config);
  } else {
    fail("needs \"layer_types\" (or the older \"compress_ratios\") to give the layer schedule");
  }

  if (lookup(root, "mlp_layer_types")) {
    const json &types = requireArray(root, "mlp_layer_types");
    if (types.size() != static_cast<size_t>(config.numLayers))
      fail(countMismatch("mlp_layer_types", types.size(), config.numLayers));
    for (size_t i = 0; i < types.size(); ++i) {
      const std::string label = "\"mlp_layer_types\"[" + std::to_string(i) + "]";
      config.mlpTypes.push_back(parseMlpKind(asString(types[i], label), label));
    }
    return;
  }
  // transformers' default: the first 3 layers (or num_hash_layers) hash-routed.
  int64_t hashLayers = std::min<int64_t>(3, config.numLayers);
  if (const json *given = lookup(root, "num_hash_layers")) {
    hashLayers = asInt(*given, "num_hash_layers");
    if (hashLayers < 0 || hashLayers > config.numLayers)
      fail("\"num_hash_layers\" (" + std::to_string(hashLayers) + ") must be between 0 and \"num_hidden_layers\" (" +
           std::to_string(config.numLayers) + ")");
  }
  for (int64_t layer = 0; layer < config.numLayers; ++layer)
    config.mlpTypes.push_back(layer < hashLayers ? MlpKind::HashMoE : MlpKind::MoE);
}

// get_mscale of transformers' YaRN.
double yarnMscale(double scale, double mscale) {
  return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

struct RopeContext {
  int64_t headDim = 0;
  int64_t maxPositions = 0;
  int64_t originalMaxPositions = 0; // top-level fallback for YaRN
};

// One rope entry ("rope_parameters.main", "rope_parameters.compress", or the
// legacy rope_scaling dict). `theta`/`partialRotaryFactor` are the defaults.
RopeParams parseRopeEntry(const json &entry, const std::string &label, double theta,
                          double partialRotaryFactor, const RopeContext &context) {
  if (!entry.is_object())
    fail(inQuotes(label) + " must be an object, got " + entry.dump());
  const auto key = [&](const char *name) { return label + "." + name; };
  RopeParams rope;
  rope.type = "default";
  if (const json *type = lookup(entry, "rope_type"))
    rope.type = asString(*type, key("rope_type"));
  else if (const json *legacyType = lookup(entry, "type"))
    rope.type = asString(*legacyType, key("type"));
  if (rope.type != "default" && rope.type != "yarn")
    fail(inQuotes(key("rope_type")) + " is \"" + rope.type + "\"; supported: default, yarn");
  rope.theta = numberOr(entry, "rope_theta", theta, key("rope_theta"));
  rope.partialRotaryFactor =
      numberOr(entry, "partial_rotary_factor", partialRotaryFactor, key("partial_rotary_factor"));
  // Python's int(head_dim * partial_rotary_factor): truncation.
  rope.ropeDim = static_cast<int64_t>(static_cast<double>(context.headDim) * rope.partialRotaryFactor);
  if (rope.type != "yarn")
    return rope;

  rope.originalMaxPositionEmbeddings =
      intOr(entry, "original_max_position_embeddings",
            context.originalMaxPositions > 0 ? context.originalMaxPositions : context.maxPositions,
            key("original_max_position_embeddings"));
  if (const json *factor = lookup(entry, "factor"))
    rope.factor = asNumber(*factor, key("factor"));
  else if (rope.originalMaxPositionEmbeddings > 0)
    rope.factor = static_cast<double>(context.maxPositions) /
                  static_cast<double>(rope.originalMaxPositionEmbeddings);
  // HF reads these with `or`: 0 and null fall back to the defaults.
  rope.betaFast = numberOr(entry, "beta_fast", 0.0, key("beta_fast"));
  rope.betaSlow = numberOr(entry, "beta_slow", 0.0, key("beta_slow"));
  if (rope.betaFast == 0.0)
    rope.betaFast = 32.0;
  if (rope.betaSlow == 0.0)
    rope.betaSlow = 1.0;
  if (const json *truncate = lookup(entry, "truncate"))
    rope.truncate = asBool(*truncate, key("truncate"));
  if (const json *attentionFactor = lookup(entry, "attention_factor")) {
    rope.attentionScaling = asNumber(*attentionFactor, key("attention_factor"));
  } else {
    const double mscale = numberOr(entry, "mscale", 0.0, key("mscale"));
    const double mscaleAllDim = numberOr(entry, "mscale_all_dim", 0.0, key("mscale_all_dim"));
    rope.attentionScaling = (mscale != 0.0 && mscaleAllDim != 0.0)
                                ? yarnMscale(rope.factor, mscale) / yarnMscale(rope.factor, mscaleAllDim)
                                : yarnMscale(rope.factor, 1.0);
  }
  return rope;
}

void parseRope(const json &root, ModelConfig &config) {
  // Top-level partial_rotary_factor, else qk_rope_head_dim / head_dim (64 by default).
  double partialRotaryFactor = 0.0;
  if (const json *factor = lookup(root, "partial_rotary_factor"))
    partialRotaryFactor = asNumber(*factor, "partial_rotary_factor");
  else
    partialRotaryFactor = static_cast<double>(intOr(root, "qk_rope_head_dim", 64)) /
                          static_cast<double>(config.headDim);
  RopeContext context;
  context.headDim = config.headDim;
  context.maxPositions = config.maxPositionEmbeddings;
  context.originalMaxPositions = intOr(root, "original_max_position_embeddings", 0);
  const double mainTheta = numberOr(root, "rope_theta", 10000.0);
  const double compressTheta = numberOr(root, "compress_rope_theta", 160000.0);

  if (const json *parameters = lookup(root, "rope_parameters")) {
    if (!parameters->is_object() || !lookup(*parameters, "main") || !lookup(*parameters, "compress"))
      fail("\"rope_parameters\" must be an object with \"main\" and \"compress\" entries");
    config.ropeMain = parseRopeEntry(parameters->at("main"), "rope_parameters.main", mainTheta,
                                     partialRotaryFactor, context);
    config.ropeCompress = parseRopeEntry(parameters->at("compress"), "rope_parameters.compress",
                                         compressTheta, partialRotaryFactor, context);
    return;
  }
  // Older spelling: plain rope for sliding layers, compress_rope_theta plus an
  // optional rope_scaling (YaRN) for the compressed layers.
  config.ropeMain = parseRopeEntry(json::object(), "rope_theta", mainTheta, partialRotaryFactor, context);
  const json *scaling = lookup(root, "rope_scaling");
  config.ropeCompress = parseRopeEntry(scaling ? *scaling : json::object(),
                                       scaling ? "rope_scaling" : "compress_rope_theta", compressTheta,
                                       partialRotaryFactor, context);
}

json ropeToJson(const RopeParams &rope) {
  json entry = {{"rope_type", rope.type},
                {"rope_theta", rope.theta},
                {"partial_rotary_factor", rope.partialRotaryFactor}};
  if (rope.type == "yarn") {
    entry["factor"] = rope.factor;
    entry["beta_fast"] = rope.betaFast;
    entry["beta_slow"] = rope.betaSlow;
    entry["original_max_position_embeddings"] = rope.originalMaxPositionEmbeddings;
    entry["attention_factor"] = rope.attentionScaling;
    if (!rope.truncate)
      entry["truncate"] = false;
  }
  return entry;
}

void requirePositive(int64_t value, const char *key) {
  if (value <= 0)
    fail(inQuotes(key) + " must be positive, got " + std::to_string(value));
}

void requirePositive(double value, const char *key) {
  if (!(value > 0.0))
    fail(inQuotes(key) + " must be positive, got " + formatNumber(value));
}

void validateRope(const RopeParams &rope, const std::string &label, const ModelConfig &config) {
  const std::string factorKey = inQuotes(label + ".partial_rotary_factor");
  if (rope.type != "default" && rope.type != "yarn")
    fail(inQuotes(label + ".rope_type") + " is \"" + rope.type + "\"; supported: default, yarn");
  if (!(rope.theta > 0.0))
    fail(inQuotes(label + ".rope_theta") + " must be positive, got " + formatNumber(rope.theta));
  const std::string dims = " (" + formatNumber(rope.partialRotaryFactor) + ") gives rope dim " +
                           std::to_string(rope.ropeDim);
  if (rope.ropeDim <= 0 || rope.ropeDim % 2 != 0)
    fail(factorKey + dims + "; it must be positive and even");
  if (rope.ropeDim > config.headDim)
    fail(factorKey + dims + ", more than \"head_dim\" (" + std::to_string(config.headDim) + ")");
  if (rope.ropeDim > config.indexHeadDim)
    fail(factorKey + dims + ", more than \"index_head_dim\" (" + std::to_string(config.indexHeadDim) + ")");
  if (rope.type == "yarn") {
    if (!(rope.factor > 0.0))
      fail(inQuotes(label + ".factor") + " must be positive, got " + formatNumber(rope.factor));
    if (rope.originalMaxPositionEmbeddings <= 0)
      fail(inQuotes(label + ".original_max_position_embeddings") + " must be positive, got " +
           std::to_string(rope.originalMaxPositionEmbeddings));
    if (!(rope.betaFast > 0.0) || !(rope.betaSlow > 0.0))
      fail(inQuotes(label + ".beta_fast") + " and \"beta_slow\" must be positive");
  }
}

} // namespace

const char *layerKindName(LayerKind kind) {
  switch (kind) {
  case LayerKind::Sliding:
    return "sliding_attention";
  case LayerKind::CSA:
    return "compressed_sparse_attention";
  case LayerKind::HCA:
    return "heavily_compressed_attention";
  }
  return "unknown";
}

const char *mlpKindName(MlpKind kind) {
  switch (kind) {
  case MlpKind::HashMoE:
    return "hash_moe";
  case MlpKind::MoE:
    return "moe";
  }
  return "unknown";
}

ModelConfig ModelConfig::fromJson(const nlohmann::json &root) {
  if (!root.is_object())
    fail("the top level must be a JSON object");
  ModelConfig config;
  // Sizes that define the architecture are required; everything else takes
  // transformers' DeepseekV4Config default.
  config.vocabSize = requiredInt(root, "vocab_size");
  config.hiddenSize = requiredInt(root, "hidden_size");
  config.numLayers = requiredInt(root, "num_hidden_layers");
  config.numHeads = requiredInt(root, "num_attention_heads");
  config.headDim = requiredInt(root, "head_dim");
  config.qLoraRank = requiredInt(root, "q_lora_rank");
  config.numExperts = requiredInt(root, "n_routed_experts");
  config.expertsPerToken = requiredInt(root, "num_experts_per_tok");
  config.moeIntermediateSize = requiredInt(root, "moe_intermediate_size");
  config.oGroups = intOr(root, "o_groups", 8);
  config.oLoraRank = intOr(root, "o_lora_rank", 1024);
  config.numSharedExperts = intOr(root, "n_shared_experts", 1);
  config.indexNumHeads = intOr(root, "index_n_heads", 64);
  config.indexHeadDim = intOr(root, "index_head_dim", 128);
  config.indexTopK = intOr(root, "index_topk", 512);
  config.hcMult = intOr(root, "hc_mult", 4);
  config.hcSinkhornIters = intOr(root, "hc_sinkhorn_iters", 20);
  config.slidingWindow = intOr(root, "sliding_window", 128);
  config.maxPositionEmbeddings = intOr(root, "max_position_embeddings", 1048576);
  config.rmsNormEps = numberOr(root, "rms_norm_eps", 1e-6);
  config.hcEps = numberOr(root, "hc_eps", 1e-6);
  config.routedScalingFactor = numberOr(root, "routed_scaling_factor", 1.5);
  config.swigluLimit = numberOr(root, "swiglu_limit", 10.0);
  if (const json *scoring = lookup(root, "scoring_func"))
    config.scoringFunc = asString(*scoring, "scoring_func");
  if (const json *tied = lookup(root, "tie_word_embeddings"))
    config.tieWordEmbeddings = asBool(*tied, "tie_word_embeddings");

  // The architecture has one shared K=V head and SwiGLU experts; say so
  // instead of computing something else.
  if (const json *kvHeads = lookup(root, "num_key_value_heads"); kvHeads && asInt(*kvHeads, "num_key_value_heads") != 1)
    fail("\"num_key_value_heads\" is " + kvHeads->dump() + "; DeepSeek-V4 has exactly 1 (shared K=V)");
  if (const json *act = lookup(root, "hidden_act"); act && asString(*act, "hidden_act") != "silu")
    fail("\"hidden_act\" is " + act->dump() + "; only silu is supported");
  if (config.headDim <= 0)
    fail("\"head_dim\" must be positive, got " + std::to_string(config.headDim));
  if (config.numLayers <= 0)
    fail("\"num_hidden_layers\" must be positive, got " + std::to_string(config.numLayers));

  parseSchedule(root, config);
  parseRope(root, config);
  config.validate();
  return config;
}

ModelConfig ModelConfig::fromFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw Error(path + ": cannot open the model config");
  std::stringstream text;
  text << in.rdbuf();
  json root = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded())
    throw Error(path + ": not valid JSON");
  try {
    return fromJson(root);
  } catch (const Error &error) {
    // Name the real file instead of the generic "config.json".
    std::string message = error.what();
    const std::string prefix = kPrefix;
    if (message.compare(0, prefix.size(), prefix) == 0)
      message = path + ": " + message.substr(prefix.size());
    throw Error(message);
  }
}

void ModelConfig::validate() const {
  requirePositive(vocabSize, "vocab_size");
  requirePositive(hiddenSize, "hidden_size");
  requirePositive(numLayers, "num_hidden_layers");
  requirePositive(numHeads, "num_attention_heads");
  requirePositive(headDim, "head_dim");
  requirePositive(qLoraRank, "q_lora_rank");
  requirePositive(oGroups, "o_groups");
  requirePositive(oLoraRank, "o_lora_rank");
  requirePositive(numExperts, "n_routed_experts");
  requirePositive(expertsPerToken, "num_experts_per_tok");
  requirePositive(numSharedExperts, "n_shared_experts");
  requirePositive(moeIntermediateSize, "moe_intermediate_size");
  requirePositive(indexNumHeads, "index_n_heads");
  requirePositive(indexHeadDim, "index_head_dim");
  requirePositive(indexTopK, "index_topk");
  requirePositive(hcMult, "hc_mult");
  requirePositive(hcSinkhornIters, "hc_sinkhorn_iters");
  requirePositive(slidingWindow, "sliding_window");
  requirePositive(csaRate, "compress_rates.compressed_sparse_attention");
  requirePositive(hcaRate, "compress_rates.heavily_compressed_attention");
  requirePositive(maxPositionEmbeddings, "max_position_embeddings");
  requirePositive(rmsNormEps, "rms_norm_eps");
  requirePositive(hcEps, "hc_eps");
  requirePositive(routedScalingFactor, "routed_scaling_factor");
  if (!(swigluLimit >= 0.0))
    fail("\"swiglu_limit\" must be non-negative, got " + formatNumber(swigluLimit));
  if (numHeads % oGroups != 0)
    fail("\"o_groups\" (" + std::to_string(oGroups) + ") must divide \"num_attention_heads\" (" +
         std::to_string(numHeads) + ")");
  if (expertsPerToken > numExperts)
    fail("\"num_experts_per_tok\" (" + std::to_string(expertsPerToken) + ") must not exceed \"n_routed_experts\" (" +
         std::to_string(numExperts) + ")");
  if (scoringFunc != "sqrtsoftplus")
    fail("\"scoring_func\" is \"" + scoringFunc + "\"; only sqrtsoftplus is supported");
  if (layerTypes.size() != static_cast<size_t>(numLayers))
    fail(countMismatch("layer_types", layerTypes.size(), numLayers));
  if (mlpTypes.size() != static_cast<size_t>(numLayers))
    fail(countMismatch("mlp_layer_types", mlpTypes.size(), numLayers));
  validateRope(ropeMain, "rope_parameters.main", *this);
  validateRope(ropeCompress, "rope_parameters.compress", *this);
}

nlohmann::json ModelConfig::toJson() const {
  json root;
  root["architectures"] = {"DeepseekV4ForCausalLM"};
  root["model_type"] = "deepseek_v4";
  root["vocab_size"] = vocabSize;
  root["hidden_size"] = hiddenSize;
  root["num_hidden_layers"] = numLayers;
  root["num_attention_heads"] = numHeads;
  root["num_key_value_heads"] = 1;
  root["head_dim"] = headDim;
  root["q_lora_rank"] = qLoraRank;
  root["o_groups"] = oGroups;
  root["o_lora_rank"] = oLoraRank;
  root["n_routed_experts"] = numExperts;
  root["num_experts_per_tok"] = expertsPerToken;
  root["n_shared_experts"] = numSharedExperts;
  root["moe_intermediate_size"] = moeIntermediateSize;
  root["index_n_heads"] = indexNumHeads;
  root["index_head_dim"] = indexHeadDim;
  root["index_topk"] = indexTopK;
  root["hc_mult"] = hcMult;
  root["hc_sinkhorn_iters"] = hcSinkhornIters;
  root["sliding_window"] = slidingWindow;
  root["max_position_embeddings"] = maxPositionEmbeddings;
  root["rms_norm_eps"] = rmsNormEps;
  root["hc_eps"] = hcEps;
  root["routed_scaling_factor"] = routedScalingFactor;
  root["swiglu_limit"] = swigluLimit;
  root["scoring_func"] = scoringFunc;
  root["hidden_act"] = "silu";
  root["tie_word_embeddings"] = tieWordEmbeddings;
  root["compress_rates"] = {{"compressed_sparse_attention", csaRate},
                            {"heavily_compressed_attention", hcaRate}};
  json layers = json::array(), mlps = json::array();
  for (LayerKind kind : layerTypes)
    layers.push_back(layerKindName(kind));
  for (MlpKind kind : mlpTypes)
    mlps.push_back(mlpKindName(kind));
  root["layer_types"] = layers;
  root["mlp_layer_types"] = mlps;
  root["rope_theta"] = ropeMain.theta;
  root["compress_rope_theta"] = ropeCompress.theta;
  root["partial_rotary_factor"] = ropeMain.partialRotaryFactor;
  root["rope_parameters"] = {{"main", ropeToJson(ropeMain)}, {"compress", ropeToJson(ropeCompress)}};
  return root;
}

bool ModelConfig::operator==(const ModelConfig &other) const { return toJson() == other.toJson(); }

int64_t ModelConfig::compressRate(int64_t layer) const {
  check(layer >= 0 && layer < static_cast<int64_t>(layerTypes.size()),
        "compressRate: layer " + std::to_string(layer) + " out of range [0, " +
            std::to_string(layerTypes.size()) + ")");
  switch (layerTypes[static_cast<size_t>(layer)]) {
  case LayerKind::Sliding:
    return 0;
  case LayerKind::CSA:
    return csaRate;
  case LayerKind::HCA:
    return hcaRate;
  }
  return 0;
}

const RopeParams &ModelConfig::ropeFor(int64_t layer) const {
  return compressRate(layer) == 0 ? ropeMain : ropeCompress;
}

} // namespace v4c
