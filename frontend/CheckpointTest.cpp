#include "frontend/Checkpoint.h"
#include "frontend/SafetensorsWriter.h"
#include "frontend/TensorNames.h"

#include "common/Error.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>

#include <stdlib.h>

namespace v4c {
namespace {

using json = nlohmann::json;

std::string conformance(const std::string &name) { return std::string(V4_CONFORMANCE_DIR) + "/" + name; }

std::string makeTempDir() {
  std::string pattern = ::testing::TempDir() + "/v4checkpoint-XXXXXX";
  EXPECT_NE(::mkdtemp(pattern.data()), nullptr);
  return pattern;
}

void copyFile(const std::string &from, const std::string &to) {
  std::ifstream in(from, std::ios::binary);
  std::ofstream out(to, std::ios::binary | std::ios::trunc);
  out << in.rdbuf();
}

// The stored tensors of a conformance checkpoint, bytes copied.
std::vector<TensorToWrite> storedTensors(const std::string &caseName) {
  auto file = SafetensorsFile::open(conformance(caseName) + "/model.safetensors");
  std::vector<TensorToWrite> tensors;
  for (const TensorView &view : file->tensors())
    tensors.push_back({view.name, view.dtypeName, view.shape, std::vector<uint8_t>(view.data, view.data + view.nbytes)});
  return tensors;
}

// A checkpoint dir with the case's config.json and `tensors` as model.safetensors.
std::string writeCheckpoint(const std::string &caseName, const std::vector<TensorToWrite> &tensors) {
  const std::string dir = makeTempDir();
  copyFile(conformance(caseName) + "/config.json", dir + "/config.json");
  writeSafetensors(dir + "/model.safetensors", tensors);
  return dir;
}

std::string openError(const std::string &dir) {
  try {
    Checkpoint::open(dir);
  } catch (const Error &error) {
    return error.what();
  }
  return "";
}

void erase(std::vector<TensorToWrite> &tensors, const std::string &name) {
  auto it = std::find_if(tensors.begin(), tensors.end(), [&](const TensorToWrite &t) { return t.name == name; });
  ASSERT_NE(it, tensors.end()) << name;
  tensors.erase(it);
}

TensorToWrite &find(std::vector<TensorToWrite> &tensors, const std::string &name) {
  for (TensorToWrite &tensor : tensors)
    if (tensor.name == name)
      return tensor;
  throw Error("test: no tensor " + name);
}

int64_t product(const std::vector<int64_t> &shape) {
  int64_t count = 1;
  for (int64_t extent : shape)
    count *= extent;
  return count;
}

TEST(Checkpoint, OpensEveryConformanceCase) {
  for (const char *name : {"tiny-mixed", "tiny-real-rates", "tiny-yarn"}) {
    SCOPED_TRACE(name);
    Checkpoint checkpoint = Checkpoint::open(conformance(name));
    EXPECT_EQ(checkpoint.config().hiddenSize, 64);
    ASSERT_FALSE(checkpoint.spec().empty());
    for (const WeightSpecEntry &entry : checkpoint.spec()) {
      ASSERT_TRUE(checkpoint.has(entry.name)) << entry.name;
      EXPECT_EQ(checkpoint.shape(entry.name), entry.shape) << entry.name;
      if (entry.weightClass == WeightClass::Int) {
        std::vector<int32_t> ids = checkpoint.readI32(entry.name);
        ASSERT_EQ(static_cast<int64_t>(ids.size()), product(entry.shape));
        for (int32_t id : ids)
          ASSERT_TRUE(id >= 0 && id < checkpoint.config().numExperts) << entry.name;
      } else {
        EXPECT_EQ(static_cast<int64_t>(checkpoint.readF32(entry.name).size()), product(entry.shape)) << entry.name;
      }
    }
    EXPECT_FALSE(checkpoint.has("model.layers.0.attn.wq_a.weight")); // stored names are not canonical
    EXPECT_THROW(checkpoint.readF32("model.layers.99.self_attn.sinks"), Error);
  }
}

TEST(Checkpoint, RenamedTensorsReadTheStoredValues) {
  Checkpoint checkpoint = Checkpoint::open(conformance("tiny-mixed"));
  auto raw = SafetensorsFile::open(conformance("tiny-mixed") + "/model.safetensors");
  const std::pair<const char *, const char *> renames[] = {
      {"lm_head.weight", "head.weight"},
      {"model.embed_tokens.weight", "model.embed_tokens.weight"},
      {"model.layers.1.self_attn.kv_proj.weight", "model.layers.1.attn.wkv.weight"},
      {"model.layers.1.self_attn.kv_norm.weight", "model.layers.1.attn.norm.weight"},
      {"model.layers.1.self_attn.q_a_norm.weight", "model.layers.1.attn.q_norm.weight"},
      {"model.layers.1.self_attn.sinks", "model.layers.1.attn.attn_sink"},
      {"model.layers.1.self_attn.compressor.position_bias", "model.layers.1.attn.compressor.ape"},
      {"model.layers.1.self_attn.compressor.indexer.gate_proj.weight",
       "model.layers.1.attn.indexer.compressor.wgate.weight"},
      {"model.layers.1.self_attn.compressor.indexer.scorer.weights_proj.weight",
       "model.layers.1.attn.indexer.weights_proj.weight"},
      {"model.layers.3.mlp.gate.e_score_correction_bias", "model.layers.3.ffn.gate.bias"},
      {"model.layers.2.attn_hc.fn", "model.layers.2.hc_attn_fn"},
      {"model.layers.2.ffn_hc.scale", "model.layers.2.hc_ffn_scale"},
      {"model.layers.2.post_attention_layernorm.weight", "model.layers.2.ffn_norm.weight"},
      {"model.layers.0.mlp.shared_experts.up_proj.weight", "model.layers.0.ffn.shared_experts.w3.weight"},
      {"model.hc_head.hc_fn", "model.hc_head.hc_fn"},
  };
  for (const auto &[canonical, stored] : renames) {
    const TensorView *view = raw->find(stored);
    ASSERT_NE(view, nullptr) << stored;
    EXPECT_EQ(checkpoint.readF32(canonical), toF32(*view)) << canonical;
    EXPECT_EQ(checkpoint.storedView(canonical)->name, stored);
  }
  EXPECT_EQ(checkpoint.readI32("model.layers.0.mlp.gate.tid2eid"),
            toI32(*raw->find("model.layers.0.ffn.gate.tid2eid")));
}

// gate_up_proj[e] = [w1_e; w3_e] ([E, 2I, D]), down_proj[e] = w2_e ([E, D, I]).
TEST(Checkpoint, StacksPerExpertTensors) {
  Checkpoint checkpoint = Checkpoint::open(conformance("tiny-mixed"));
  auto raw = SafetensorsFile::open(conformance("tiny-mixed") + "/model.safetensors");
  const int64_t experts = 8, inter = 48, hidden = 64;
  const std::string layer = "model.layers.2.";
  EXPECT_EQ(checkpoint.shape(layer + "mlp.experts.gate_up_proj"), (std::vector<int64_t>{experts, 2 * inter, hidden}));
  EXPECT_EQ(checkpoint.storedView(layer + "mlp.experts.gate_up_proj"), nullptr);
  std::vector<float> gateUp = checkpoint.readF32(layer + "mlp.experts.gate_up_proj");
  std::vector<float> down = checkpoint.readF32(layer + "mlp.experts.down_proj");
  ASSERT_EQ(static_cast<int64_t>(gateUp.size()), experts * 2 * inter * hidden);
  ASSERT_EQ(static_cast<int64_t>(down.size()), experts * hidden * inter);
  for (int64_t e : {0, 3, 7}) {
    const std::string prefix = layer + "ffn.experts." + std::to_string(e) + ".";
    std::vector<float> w1 = toF32(*raw->find(prefix + "w1.weight"));
    std::vector<float> w3 = toF32(*raw->find(prefix + "w3.weight"));
    std::vector<float> w2 = toF32(*raw->find(prefix + "w2.weight"));
    const auto expertBase = gateUp.begin() + e * 2 * inter * hidden;
    EXPECT_EQ(std::vector<float>(expertBase, expertBase + inter * hidden), w1) << e;
    EXPECT_EQ(std::vector<float>(expertBase + inter * hidden, expertBase + 2 * inter * hidden), w3) << e;
    const auto downBase = down.begin() + e * hidden * inter;
    EXPECT_EQ(std::vector<float>(downBase, downBase + hidden * inter), w2) << e;
  }
}

class BrokenCheckpoint : public ::testing::Test {
protected:
  void SetUp() override { tensors_ = storedTensors("tiny-yarn"); }

  // Writes the (edited) tensors and expects `problem` in the open error,
  // with the error naming model.safetensors.
  void expectError(const std::string &problem) {
    const std::string dir = writeCheckpoint("tiny-yarn", tensors_);
    const std::string message = openError(dir);
    EXPECT_EQ(message.rfind(dir + "/model.safetensors: ", 0), 0u) << message;
    EXPECT_NE(message.find(problem), std::string::npos) << "got: " << message << "\nwant: " << problem;
  }

  std::vector<TensorToWrite> tensors_;
};

TEST_F(BrokenCheckpoint, MissingTensor) {
  erase(tensors_, "model.layers.1.attn.wkv.weight");
  expectError("missing tensor \"model.layers.1.self_attn.kv_proj.weight\" (or "
              "\"model.layers.1.attn.wkv.weight\" or \"layers.1.attn.wkv.weight\")");
}

TEST_F(BrokenCheckpoint, MissingExpert) {
  erase(tensors_, "model.layers.2.ffn.experts.5.w3.weight");
  expectError("missing tensor for expert 5 up (w3) of \"model.layers.2.mlp.experts.gate_up_proj\"");
}

TEST_F(BrokenCheckpoint, UnexpectedTensorForThisConfig) {
  // Layer 0 is a sliding layer: it has no compressor.
  tensors_.push_back(f32Tensor("model.layers.0.attn.compressor.ape", {4, 64}, std::vector<float>(256)));
  expectError("unexpected tensor \"model.layers.0.attn.compressor.ape\": this config has no "
              "\"model.layers.0.self_attn.compressor.position_bias\"");
}

TEST_F(BrokenCheckpoint, UnexpectedTensorName) {
  tensors_.push_back(f32Tensor("model.layers.0.attn.mystery", {1}, {1.0f}));
  expectError("unexpected tensor \"model.layers.0.attn.mystery\" (not a DeepSeek-V4 weight name)");
}

TEST_F(BrokenCheckpoint, ExpertBeyondConfig) {
  tensors_.push_back(f32Tensor("model.layers.0.ffn.experts.8.w1.weight", {48, 64}, std::vector<float>(48 * 64)));
  expectError("expert 8 but the config has 8 routed experts");
}

TEST_F(BrokenCheckpoint, WrongShape) {
  find(tensors_, "model.layers.1.attn.wkv.weight") =
      f32Tensor("model.layers.1.attn.wkv.weight", {64, 64}, std::vector<float>(64 * 64));
  const std::string dir = writeCheckpoint("tiny-yarn", tensors_);
  EXPECT_EQ(openError(dir), dir + "/model.safetensors: tensor \"model.layers.1.attn.wkv.weight\" has shape [64,64] "
                                  "but the config needs [32,64]");
}

TEST_F(BrokenCheckpoint, WrongExpertShape) {
  find(tensors_, "model.layers.1.ffn.experts.2.w2.weight") =
      f32Tensor("model.layers.1.ffn.experts.2.w2.weight", {48, 64}, std::vector<float>(48 * 64));
  expectError("tensor \"model.layers.1.ffn.experts.2.w2.weight\" has shape [48,64] but the config needs [64,48]");
}

TEST_F(BrokenCheckpoint, FloatTid2eid) {
  find(tensors_, "model.layers.0.ffn.gate.tid2eid") =
      f32Tensor("model.layers.0.ffn.gate.tid2eid", {512, 2}, std::vector<float>(1024));
  expectError("tensor \"model.layers.0.ffn.gate.tid2eid\" has dtype F32 but the model needs an integer tensor");
}

TEST_F(BrokenCheckpoint, DuplicateProviders) {
  // The canonical name and the saved name of the same weight.
  tensors_.push_back(f32Tensor("model.layers.0.self_attn.sinks", {4}, {0, 0, 0, 0}));
  expectError("both provide \"model.layers.0.self_attn.sinks\"");
}

TEST(Checkpoint, MissingFilesAreNamed) {
  const std::string dir = makeTempDir();
  EXPECT_EQ(openError(dir), dir + "/config.json: cannot open the model config");
  copyFile(conformance("tiny-yarn") + "/config.json", dir + "/config.json");
  EXPECT_EQ(openError(dir), dir + ": no model.safetensors or model.safetensors.index.json in the checkpoint directory");
}

// A scale tensor next to a weight that is not F8_E4M3 (e.g. packed FP4)
// cannot be read; FP8 weights are (Fp8CheckpointTest.cpp).
TEST(Checkpoint, IgnoresMtpAndRejectsScaledNonFp8OnRead) {
  std::vector<TensorToWrite> tensors = storedTensors("tiny-yarn");
  tensors.push_back(f32Tensor("mtp.0.attn.wq_a.weight", {2}, {1, 2}));
  tensors.push_back(f32Tensor("model.layers.0.self_attn.rotary_emb.inv_freq", {2}, {1, 2}));
  tensors.push_back({"model.layers.0.attn.wq_a.weight_scale_inv", "F32", {1}, {0, 0, 128, 63}});
  Checkpoint checkpoint = Checkpoint::open(writeCheckpoint("tiny-yarn", tensors));
  try {
    checkpoint.readF32("model.layers.0.self_attn.q_a_proj.weight");
    FAIL() << "expected the rejection of a scaled F32 weight";
  } catch (const Error &error) {
    EXPECT_NE(std::string(error.what())
                  .find("tensor \"model.layers.0.attn.wq_a.weight\" is stored as F32 with block scales; only "
                        "FP8 (F8_E4M3) quantized checkpoint tensors are supported"),
              std::string::npos)
        << error.what();
  }
  EXPECT_EQ(checkpoint.readF32("model.layers.1.self_attn.q_a_proj.weight").size(), 32u * 64u);
}

// DeepSeek's own names ("layers.N...", "embed.weight", "hc_head_fn") and the
// canonical HF layout (stacked experts) read the same values.
TEST(Checkpoint, OtherLayoutsReadTheSameValues) {
  Checkpoint reference = Checkpoint::open(conformance("tiny-yarn"));

  std::vector<TensorToWrite> deepseek = storedTensors("tiny-yarn");
  for (TensorToWrite &tensor : deepseek) {
    const std::pair<std::string, std::string> globals[] = {
        {"model.embed_tokens.weight", "embed.weight"}, {"model.norm.weight", "norm.weight"},
        {"model.hc_head.hc_fn", "hc_head_fn"},         {"model.hc_head.hc_base", "hc_head_base"},
        {"model.hc_head.hc_scale", "hc_head_scale"}};
    for (const auto &[from, to] : globals)
      if (tensor.name == from)
        tensor.name = to;
    if (tensor.name.rfind("model.layers.", 0) == 0)
      tensor.name = tensor.name.substr(std::string("model.").size());
  }
  deepseek.push_back(f32Tensor("mtp.0.emb.weight", {1}, {0}));

  std::vector<TensorToWrite> canonical;
  for (const WeightSpecEntry &entry : reference.spec()) {
    if (entry.weightClass == WeightClass::Int) {
      std::vector<int32_t> ids = reference.readI32(entry.name);
      TensorToWrite tensor{entry.name, "I32", entry.shape, std::vector<uint8_t>(ids.size() * 4)};
      std::memcpy(tensor.bytes.data(), ids.data(), tensor.bytes.size());
      canonical.push_back(std::move(tensor));
    } else {
      canonical.push_back(f32Tensor(entry.name, entry.shape, reference.readF32(entry.name)));
    }
  }

  for (const auto *layout : {&deepseek, &canonical}) {
    Checkpoint other = Checkpoint::open(writeCheckpoint("tiny-yarn", *layout));
    for (const WeightSpecEntry &entry : reference.spec()) {
      if (entry.weightClass == WeightClass::Int)
        ASSERT_EQ(other.readI32(entry.name), reference.readI32(entry.name)) << entry.name;
      else
        ASSERT_EQ(other.readF32(entry.name), reference.readF32(entry.name)) << entry.name;
    }
  }
}

TEST(TensorNames, MapsAllLayouts) {
  auto canonicalOf = [](const std::string &stored) {
    std::optional<CanonicalRef> ref = canonicalName(stored);
    return ref ? ref->canonical : std::string("<none>");
  };
  EXPECT_EQ(canonicalOf("layers.7.attn.wq_a.weight"), "model.layers.7.self_attn.q_a_proj.weight");
  EXPECT_EQ(canonicalOf("model.layers.7.attn.wq_a.weight"), "model.layers.7.self_attn.q_a_proj.weight");
  EXPECT_EQ(canonicalOf("model.layers.7.self_attn.q_a_proj.weight"), "model.layers.7.self_attn.q_a_proj.weight");
  EXPECT_EQ(canonicalOf("layers.12.attn.indexer.compressor.ape"),
            "model.layers.12.self_attn.compressor.indexer.position_bias");
  EXPECT_EQ(canonicalOf("head.weight"), "lm_head.weight");
  EXPECT_EQ(canonicalOf("embed.weight"), "model.embed_tokens.weight");
  EXPECT_EQ(canonicalOf("hc_head_scale"), "model.hc_head.hc_scale");
  EXPECT_EQ(canonicalOf("layers.x.attn.wq_a.weight"), "<none>");
  EXPECT_EQ(canonicalOf("layers.3.attn.wq_c.weight"), "<none>");
  std::optional<CanonicalRef> expert = canonicalName("layers.4.ffn.experts.17.w3.weight");
  ASSERT_TRUE(expert.has_value());
  EXPECT_EQ(expert->canonical, "model.layers.4.mlp.experts.gate_up_proj");
  EXPECT_EQ(expert->expert, 17);
  EXPECT_EQ(expert->part, ExpertPart::Up);
  expert = canonicalName("model.layers.4.mlp.experts.2.down_proj.weight");
  ASSERT_TRUE(expert.has_value());
  EXPECT_EQ(expert->canonical, "model.layers.4.mlp.experts.down_proj");
  EXPECT_EQ(expert->part, ExpertPart::Down);
  EXPECT_TRUE(isIgnoredTensor("mtp.0.ffn.gate.weight"));
  EXPECT_FALSE(isIgnoredTensor("layers.0.ffn.gate.weight"));
  EXPECT_EQ(scaledWeightName("layers.0.attn.wq_a.scale").value_or(""), "layers.0.attn.wq_a.weight");
  EXPECT_EQ(scaledWeightName("model.layers.0.self_attn.q_a_proj.weight_scale_inv").value_or(""),
            "model.layers.0.self_attn.q_a_proj.weight");
  EXPECT_FALSE(scaledWeightName("model.layers.0.hc_attn_base").has_value());
}

// --- sharded checkpoints ---------------------------------------------------

struct Shards {
  std::string dir;
  json index;
};

// Splits tiny-yarn's tensors over two shards (alternating) plus an index.
Shards writeSharded() {
  Shards shards{makeTempDir(), json::object()};
  copyFile(conformance("tiny-yarn") + "/config.json", shards.dir + "/config.json");
  std::vector<TensorToWrite> first, second;
  std::vector<TensorToWrite> tensors = storedTensors("tiny-yarn");
  json weightMap = json::object();
  for (size_t i = 0; i < tensors.size(); ++i) {
    const char *shard = i % 2 ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors";
    weightMap[tensors[i].name] = shard;
    (i % 2 ? second : first).push_back(tensors[i]);
  }
  writeSafetensors(shards.dir + "/model-00001-of-00002.safetensors", first);
  writeSafetensors(shards.dir + "/model-00002-of-00002.safetensors", second);
  shards.index = {{"metadata", {{"total_size", 0}}}, {"weight_map", weightMap}};
  return shards;
}

void writeIndex(const Shards &shards) {
  std::ofstream(shards.dir + "/model.safetensors.index.json") << shards.index.dump(2);
}

TEST(ShardedCheckpoint, ReadsTheSameValuesAsUnsharded) {
  Shards shards = writeSharded();
  writeIndex(shards);
  Checkpoint sharded = Checkpoint::open(shards.dir);
  Checkpoint single = Checkpoint::open(conformance("tiny-yarn"));
  for (const WeightSpecEntry &entry : single.spec()) {
    if (entry.weightClass == WeightClass::Int)
      EXPECT_EQ(sharded.readI32(entry.name), single.readI32(entry.name)) << entry.name;
    else
      EXPECT_EQ(sharded.readF32(entry.name), single.readF32(entry.name)) << entry.name;
  }
}

class BrokenShards : public ::testing::Test {
protected:
  void expectError(const std::function<void(Shards &)> &edit, const std::string &problem) {
    Shards shards = writeSharded();
    edit(shards);
    writeIndex(shards);
    const std::string message = openError(shards.dir);
    const std::string indexPath = shards.dir + "/model.safetensors.index.json";
    EXPECT_EQ(message.rfind(indexPath + ": ", 0), 0u) << message;
    EXPECT_NE(message.find(problem), std::string::npos) << "got: " << message << "\nwant: " << problem;
  }
};

TEST_F(BrokenShards, IndexPointsAtMissingShard) {
  expectError([](Shards &s) { s.index["weight_map"]["head.weight"] = "model-00003-of-00002.safetensors"; },
              "weight_map sends \"head.weight\" to shard \"model-00003-of-00002.safetensors\", which does not exist");
}

TEST_F(BrokenShards, MappedTensorNotInItsShard) {
  expectError(
      [](Shards &s) {
        const std::string shard = s.index["weight_map"]["head.weight"];
        s.index["weight_map"]["head.weight"] = shard == "model-00001-of-00002.safetensors"
                                                   ? "model-00002-of-00002.safetensors"
                                                   : "model-00001-of-00002.safetensors";
      },
      "\"head.weight\" to shard");
}

TEST_F(BrokenShards, TensorInTwoShards) {
  expectError(
      [](Shards &s) {
        // A third shard repeating a tensor of the first one.
        writeSafetensors(s.dir + "/extra.safetensors", {f32Tensor("model.norm.weight", {64}, std::vector<float>(64))});
        s.index["weight_map"]["model.norm.weight"] = "extra.safetensors";
      },
      "tensor \"model.norm.weight\" is in both");
}

TEST_F(BrokenShards, ShardHoldsUnlistedTensor) {
  expectError([](Shards &s) { s.index["weight_map"].erase("model.norm.weight"); },
              "holds \"model.norm.weight\", which weight_map does not list");
}

TEST_F(BrokenShards, NoWeightMap) {
  expectError([](Shards &s) { s.index.erase("weight_map"); }, "needs a \"weight_map\" object");
}

} // namespace
} // namespace v4c
