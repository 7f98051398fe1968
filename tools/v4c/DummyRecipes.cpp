#include "tools/v4c/DummyRecipes.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/Error.h"
#include "frontend/SafetensorsWriter.h"
#include "runtime/artifact/ArtifactReader.h"

namespace v4c {
namespace {

using v4rt::DummyKind;
using v4rt::DummyRecipe;
using v4rt::DType;

bool endsWith(const std::string &text, const std::string &suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}
bool contains(const std::string &text, const char *part) { return text.find(part) != std::string::npos; }

DummyRecipe uniform(double bound) { return {DummyKind::Uniform, static_cast<float>(bound), 0}; }
DummyRecipe constant(double value) { return {DummyKind::Constant, static_cast<float>(value), 0}; }

// +-1/sqrt(K): the reduction size is the last dimension of [N, K] / [E, N, K].
DummyRecipe linear(const std::vector<int64_t> &shape) {
  const int64_t fanIn = shape.empty() ? 1 : shape.back();
  return uniform(1.0 / std::sqrt(static_cast<double>(fanIn > 0 ? fanIn : 1)));
}

// The data weight a ue8m0 scale global "W.scale" belongs to.
const v4rt::Weight *scaledData(const v4rt::Program &program, const std::string &scaleName) {
  const std::string data = scaleName.substr(0, scaleName.size() - std::string(".scale").size());
  for (const v4rt::Weight &weight : program.weights)
    if (weight.name == data)
      return &weight;
  return nullptr;
}

} // namespace

DummyRecipe dummyRecipeFor(const v4rt::Program &program, size_t weightIndex, int64_t numExperts) {
  const v4rt::Weight &weight = program.weights.at(weightIndex);
  const std::string &name = weight.name;
  switch (weight.dtype) {
  case DType::I32:
  case DType::I64:
    check(contains(name, "tid2eid"), "--weights dummy: no recipe for integer weight \"" + name + "\"");
    check(numExperts >= 1, "--weights dummy: \"" + name + "\" needs the config's n_routed_experts");
    return {DummyKind::IntModulo, 0.0f, static_cast<int32_t>(numExperts)};
  case DType::F8E4M3: // fp8 codes: normal e4m3 values; the scale sets the magnitude
    return uniform(2.0);
  case DType::U8: {
    if (!endsWith(name, ".scale"))
      return {DummyKind::Bytes, 0.0f, 16}; // fp4 e2m1 codes, one per byte (low nibble)
    const v4rt::Weight *data = scaledData(program, name);
    check(data != nullptr && !data->shape.empty(),
          "--weights dummy: scale weight \"" + name + "\" has no data weight to size it by");
    // Codes of RMS ~1.2 (fp8, uniform +-2) or ~3 (fp4): scale so w ~ +-1/sqrt(K).
    const double codeRms = data->dtype == DType::F8E4M3 ? 2.0 : 4.0;
    const double target = 1.0 / (codeRms * std::sqrt(static_cast<double>(data->shape.back())));
    return {DummyKind::Exponent, static_cast<float>(std::round(std::log2(target))), 0};
  }
  case DType::F32:
  case DType::BF16:
  case DType::F16:
    break;
  }
  const std::vector<int64_t> &shape = weight.shape;
  if (endsWith(name, "sinks") || endsWith(name, "attn_sink"))
    return constant(0.0);
  if (contains(name, "position_bias") || endsWith(name, ".ape"))
    return uniform(0.5);
  if (endsWith(name, "e_score_correction_bias") || endsWith(name, "gate.bias"))
    return uniform(0.05);
  if (endsWith(name, ".fn") || endsWith(name, "hc_fn"))
    return linear(shape); // [mixes, hc*D]
  if (endsWith(name, ".base") || endsWith(name, "hc_base"))
    return uniform(0.5);
  if (endsWith(name, ".scale") || endsWith(name, "hc_scale"))
    return constant(1.0); // mHC pre/post/comb scales (f32: not a ue8m0 block scale)
  if (contains(name, "norm") && shape.size() == 1)
    return constant(1.0);
  if (contains(name, "embed_tokens"))
    return uniform(1.0);
  if (shape.size() >= 2)
    return linear(shape);
  return constant(1.0);
}

void makeWeightsDummy(v4rt::Program &program, int64_t numExperts, uint64_t seed) {
  program.dummySeed = seed;
  for (size_t i = 0; i < program.weights.size(); ++i) {
    v4rt::Weight &weight = program.weights[i];
    weight.dummy = dummyRecipeFor(program, i, numExperts);
    check(v4rt::dummyRecipeFits(weight.dummy.kind, static_cast<uint32_t>(weight.dtype)),
          "--weights dummy: no recipe fits weight \"" + weight.name + "\" of dtype " + v4rt::dtypeName(weight.dtype));
    weight.data = nullptr;
  }
}

int writeDummyCheckpoint(const std::string &artifactPath, const std::string &directory) {
  // Never over a checkpoint the user already has there.
  namespace fs = std::filesystem;
  std::error_code error;
  check(!fs::exists(directory, error) || fs::is_directory(directory, error),
        directory + ": exists and is not a directory; give a new or empty directory with -o");
  for (const char *name : {"model.safetensors", "model.safetensors.index.json", "config.json"})
    check(!fs::exists(fs::path(directory) / name, error),
          directory + " already holds " + name + "; give a new or empty directory with -o");
  v4rt::OpenOptions open;
  open.generateDummyWeights = true;
  auto artifact = v4rt::Artifact::open(artifactPath, open);
  const v4rt::Program &program = artifact->program();
  std::vector<TensorToWrite> tensors;
  for (const v4rt::Weight &weight : program.weights) {
    check(weight.isDummy(), artifactPath + ": weight \"" + weight.name +
                                "\" is stored, not generated; give an artifact compiled with --weights dummy");
    const char *dtype = weight.dtype == v4rt::DType::F32    ? "F32"
                        : weight.dtype == v4rt::DType::BF16 ? "BF16"
                        : weight.dtype == v4rt::DType::I32  ? "I32"
                                                            : nullptr;
    check(dtype != nullptr, artifactPath + ": weight \"" + weight.name + "\" is " + v4rt::dtypeName(weight.dtype) +
                                "; dummy-checkpoint writes f32/bf16/i32 weights (compile with --precision fp32)");
    tensors.push_back({weight.name, dtype, weight.shape, std::vector<uint8_t>(weight.data, weight.data + weight.size)});
  }
  fs::create_directories(directory, error);
  check(!error, directory + ": cannot create the directory: " + error.message());
  writeSafetensors(directory + "/model.safetensors", tensors);
  std::ofstream config(directory + "/config.json", std::ios::trunc);
  config << program.configJson << "\n";
  check(static_cast<bool>(config), directory + "/config.json: cannot write");
  std::printf("v4c: wrote %s (%zu tensors, seed %llu)\n", directory.c_str(), tensors.size(),
              static_cast<unsigned long long>(program.dummySeed));
  return 0;
}

} // namespace v4c
