// Checkpoint loading: files (single or sharded), name mapping, validation.
#include "frontend/Checkpoint.h"

#include "common/Error.h"
#include "frontend/TensorNames.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

#include <sys/stat.h>

namespace v4c {
namespace {

using json = nlohmann::json;
using v4rt::DType;

bool fileExists(const std::string &path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode);
}

std::string inQuotes(const std::string &text) { return "\"" + text + "\""; }

bool isFloatDType(DType dtype) {
  return dtype == DType::F32 || dtype == DType::BF16 || dtype == DType::F16 || dtype == DType::F8E4M3;
}

bool isIntDType(DType dtype) { return dtype == DType::I32 || dtype == DType::I64; }

json readIndex(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw Error(path + ": cannot open");
  std::stringstream text;
  text << in.rdbuf();
  json index = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (index.is_discarded())
    throw Error(path + ": not valid JSON");
  if (!index.is_object() || !index.contains("weight_map") || !index.at("weight_map").is_object())
    throw Error(path + ": needs a \"weight_map\" object (tensor name -> shard file)");
  return index;
}

} // namespace

Checkpoint Checkpoint::open(const std::string &dir) {
  Checkpoint checkpoint;
  checkpoint.dir_ = dir;
  checkpoint.config_ = ModelConfig::fromFile(dir + "/config.json");
  checkpoint.spec_ = weightSpec(checkpoint.config_);
  checkpoint.loadFiles();
  checkpoint.resolveTensors();
  checkpoint.checkAgainstSpec();
  return checkpoint;
}

// Opens model.safetensors, or every shard of the index after checking the
// index and the shards agree exactly.
void Checkpoint::loadFiles() {
  const std::string indexPath = dir_ + "/model.safetensors.index.json";
  const std::string singlePath = dir_ + "/model.safetensors";
  if (!fileExists(indexPath)) {
    if (!fileExists(singlePath))
      throw Error(dir_ + ": no model.safetensors or model.safetensors.index.json in the checkpoint directory");
    weightsPath_ = singlePath;
    files_.push_back(SafetensorsFile::open(singlePath));
    for (const TensorView &view : files_.back()->tensors())
      stored_[view.name] = &view;
    return;
  }

  weightsPath_ = indexPath;
  const json index = readIndex(indexPath);
  std::map<std::string, SafetensorsFile *> shards; // by file name in the index
  for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
    if (!it.value().is_string())
      throw Error(indexPath + ": weight_map entry " + inQuotes(it.key()) + " must name a shard file");
    const std::string shard = it.value().get<std::string>();
    if (shard.empty() || shard[0] == '/' || shard.find("..") != std::string::npos)
      throw Error(indexPath + ": shard " + inQuotes(shard) + " must be a file name inside the checkpoint directory");
    if (!shards.count(shard)) {
      const std::string path = dir_ + "/" + shard;
      if (!fileExists(path))
        throw Error(indexPath + ": weight_map sends " + inQuotes(it.key()) + " to shard " + inQuotes(shard) +
                    ", which does not exist");
      files_.push_back(SafetensorsFile::open(path));
      shards[shard] = files_.back().get();
    }
    if (!shards[shard]->find(it.key()))
      throw Error(indexPath + ": weight_map sends " + inQuotes(it.key()) + " to shard " + inQuotes(shard) +
                  ", which does not hold it");
  }
  for (const auto &[shardName, file] : shards) {
    for (const TensorView &view : file->tensors()) {
      auto [existing, inserted] = stored_.emplace(view.name, &view);
      if (!inserted)
        throw Error(indexPath + ": tensor " + inQuotes(view.name) + " is in both " + existing->second->file + " and " +
                    view.file);
      const json &mapped = index["weight_map"];
      if (!mapped.contains(view.name))
        throw Error(indexPath + ": shard " + inQuotes(shardName) + " holds " + inQuotes(view.name) +
                    ", which weight_map does not list");
    }
  }
}

// Maps every stored tensor to its canonical name; rejects names that belong to
// no layout or to weights this config does not have.
void Checkpoint::resolveTensors() {
  for (const WeightSpecEntry &entry : spec_) {
    Resolved resolved;
    resolved.spec = entry;
    tensors_.emplace(entry.name, std::move(resolved));
  }
  for (const auto &[name, view] : stored_) {
    if (std::optional<std::string> weight = scaledWeightName(name); weight && stored_.count(*weight)) {
      quantized_.insert(*weight);
      scales_[*weight] = view;
      continue;
    }
    if (isIgnoredTensor(name))
      continue;
    std::optional<CanonicalRef> ref = canonicalName(name);
    if (!ref)
      throw Error(view->file + ": unexpected tensor " + inQuotes(name) + " (not a DeepSeek-V4 weight name)");
    auto it = tensors_.find(ref->canonical);
    if (it == tensors_.end())
      throw Error(view->file + ": unexpected tensor " + inQuotes(name) + ": this config has no " +
                  inQuotes(ref->canonical) + " (check num_hidden_layers and layer_types)");
    Resolved &resolved = it->second;
    auto duplicate = [&](const TensorView *other) {
      throw Error(view->file + ": tensors " + inQuotes(other->name) + " and " + inQuotes(name) + " both provide " +
                  inQuotes(ref->canonical));
    };
    if (ref->part == ExpertPart::None) {
      if (resolved.stored)
        duplicate(resolved.stored);
      for (const auto *parts : {&resolved.gate, &resolved.up, &resolved.down})
        for (const TensorView *part : *parts)
          if (part)
            duplicate(part);
      resolved.stored = view;
      continue;
    }
    if (resolved.stored)
      duplicate(resolved.stored);
    if (ref->expert >= config_.numExperts)
      throw Error(view->file + ": unexpected tensor " + inQuotes(name) + ": expert " + std::to_string(ref->expert) +
                  " but the config has " + std::to_string(config_.numExperts) + " routed experts");
    std::vector<const TensorView *> &slots = ref->part == ExpertPart::Gate ? resolved.gate
                                             : ref->part == ExpertPart::Up ? resolved.up
                                                                           : resolved.down;
    slots.resize(static_cast<size_t>(config_.numExperts), nullptr);
    if (slots[static_cast<size_t>(ref->expert)])
      duplicate(slots[static_cast<size_t>(ref->expert)]);
    slots[static_cast<size_t>(ref->expert)] = view;
  }
}

// Every needed weight is present with the shape and kind of dtype the config implies.
void Checkpoint::checkAgainstSpec() {
  auto checkView = [&](const TensorView &view, const std::vector<int64_t> &needed, WeightClass weightClass) {
    const bool packed = quantized_.count(view.name) && view.dtype != DType::F8E4M3; // e.g. FP4 in I8
    if (!packed && view.shape != needed)
      throw Error(view.file + ": tensor " + inQuotes(view.name) + " has shape " + formatShape(view.shape) +
                  " but the config needs " + formatShape(needed));
    if (weightClass == WeightClass::Int && !isIntDType(view.dtype))
      throw Error(view.file + ": tensor " + inQuotes(view.name) + " has dtype " + view.dtypeName +
                  " but the model needs an integer tensor (I32 or I64)");
    if (weightClass == WeightClass::Float && !isFloatDType(view.dtype) && !packed)
      throw Error(view.file + ": tensor " + inQuotes(view.name) + " has dtype " + view.dtypeName +
                  " but the model needs a floating-point tensor");
  };

  for (const WeightSpecEntry &entry : spec_) {
    Resolved &resolved = tensors_.at(entry.name);
    const bool stacked = !resolved.gate.empty() || !resolved.up.empty() || !resolved.down.empty();
    if (!resolved.stored && !stacked) {
      if (entry.name == "lm_head.weight" && config_.tieWordEmbeddings) {
        resolved.stored = tensors_.at("model.embed_tokens.weight").stored;
        if (resolved.stored)
          continue;
      }
      std::string alternatives;
      for (const std::string &candidate : storedNameCandidates(entry.name))
        alternatives += (alternatives.empty() ? " (or " : " or ") + inQuotes(candidate);
      throw Error(weightsPath_ + ": missing tensor " + inQuotes(entry.name) + (alternatives.empty() ? "" : alternatives + ")"));
    }
    if (resolved.stored) {
      checkView(*resolved.stored, entry.shape, entry.weightClass);
      continue;
    }
    // Per-expert tensors: every expert needs its gate and up (or its down).
    const int64_t inter = config_.moeIntermediateSize, hidden = config_.hiddenSize;
    const bool isDown = entry.name.size() >= 9 && entry.name.compare(entry.name.size() - 9, 9, "down_proj") == 0;
    const std::vector<std::pair<const char *, std::vector<const TensorView *> *>> parts =
        isDown ? std::vector<std::pair<const char *, std::vector<const TensorView *> *>>{{"down (w2)", &resolved.down}}
               : std::vector<std::pair<const char *, std::vector<const TensorView *> *>>{
                     {"gate (w1)", &resolved.gate}, {"up (w3)", &resolved.up}};
    for (const auto &[partName, slots] : parts) {
      slots->resize(static_cast<size_t>(config_.numExperts), nullptr);
      for (int64_t expert = 0; expert < config_.numExperts; ++expert) {
        const TensorView *view = (*slots)[static_cast<size_t>(expert)];
        if (!view)
          throw Error(weightsPath_ + ": missing tensor for expert " + std::to_string(expert) + " " + partName + " of " +
                      inQuotes(entry.name));
        checkView(*view, isDown ? std::vector<int64_t>{hidden, inter} : std::vector<int64_t>{inter, hidden},
                  WeightClass::Float);
      }
    }
  }
}

const Checkpoint::Resolved &Checkpoint::resolved(const std::string &canonical) const {
  auto it = tensors_.find(canonical);
  if (it == tensors_.end())
    throw Error(dir_ + ": " + inQuotes(canonical) + " is not a weight of this model");
  return it->second;
}

void Checkpoint::rejectQuantized(const TensorView &view) const {
  if (quantized_.count(view.name) && view.dtype != DType::F8E4M3)
    throw Error(view.file + ": tensor " + inQuotes(view.name) + " is stored as " + view.dtypeName +
                " with block scales; only FP8 (F8_E4M3) quantized checkpoint tensors are supported "
                "(convert packed FP4 experts to BF16/F32 first)");
}

std::vector<float> Checkpoint::scaleValues(const TensorView &scale) {
  if (scale.dtypeName == "F8_E8M0") {
    std::vector<float> values(static_cast<size_t>(scale.numel()));
    for (size_t i = 0; i < values.size(); ++i)
      values[i] = scale.data[i] == 0xFF ? std::numeric_limits<float>::quiet_NaN()
                                        : std::ldexp(1.0f, static_cast<int>(scale.data[i]) - 127);
    return values;
  }
  if (scale.dtype != DType::F32 && scale.dtype != DType::BF16)
    throw Error(scale.file + ": scale tensor " + inQuotes(scale.name) + " has dtype " + scale.dtypeName +
                "; block scales must be F32, BF16 or F8_E8M0");
  return toF32(scale);
}

// w = e4m3 * scale of its 128 x 128 block (DeepSeek's weight_dequant).
std::vector<float> Checkpoint::dequantizeStored(const TensorView &view) const {
  const TensorView &scale = *scales_.at(view.name);
  const int64_t block = kFp8CheckpointBlock;
  if (view.shape.size() != 2 || scale.shape.size() != 2 ||
      scale.shape[0] != (view.shape[0] + block - 1) / block || scale.shape[1] != (view.shape[1] + block - 1) / block)
    throw Error(scale.file + ": scale tensor " + inQuotes(scale.name) + " has shape " + formatShape(scale.shape) +
                " but " + inQuotes(view.name) + " " + formatShape(view.shape) +
                " needs one scale per 128 x 128 block");
  std::vector<float> values = toF32(view);
  const std::vector<float> scales = scaleValues(scale);
  const int64_t cols = view.shape[1], scaleCols = scale.shape[1];
  for (size_t i = 0; i < values.size(); ++i) {
    const int64_t r = static_cast<int64_t>(i) / cols, c = static_cast<int64_t>(i) % cols;
    values[i] *= scales[static_cast<size_t>((r / block) * scaleCols + c / block)];
  }
  return values;
}

std::optional<Checkpoint::QuantizedView> Checkpoint::quantizedView(const std::string &canonical) const {
  const Resolved &r = resolved(canonical);
  if (!r.stored || !quantized_.count(r.stored->name))
    return std::nullopt;
  rejectQuantized(*r.stored);
  return QuantizedView{r.stored, scales_.at(r.stored->name)};
}

bool Checkpoint::has(const std::string &canonical) const { return tensors_.count(canonical) != 0; }

std::vector<int64_t> Checkpoint::shape(const std::string &canonical) const {
  return resolved(canonical).spec.shape;
}

const TensorView *Checkpoint::storedView(const std::string &canonical) const {
  return resolved(canonical).stored;
}

std::vector<float> Checkpoint::readF32(const std::string &canonical) const {
  const Resolved &r = resolved(canonical);
  if (r.stored) {
    rejectQuantized(*r.stored);
    return quantized_.count(r.stored->name) ? dequantizeStored(*r.stored) : toF32(*r.stored);
  }
  // Stack per-expert tensors: gate_up_proj[e] = [w1_e; w3_e], down_proj[e] = w2_e.
  std::vector<float> out;
  const int64_t experts = config_.numExperts;
  for (int64_t expert = 0; expert < experts; ++expert) {
    const size_t e = static_cast<size_t>(expert);
    for (const TensorView *view : r.down.empty() ? std::vector<const TensorView *>{r.gate[e], r.up[e]}
                                                 : std::vector<const TensorView *>{r.down[e]}) {
      rejectQuantized(*view);
      std::vector<float> part = quantized_.count(view->name) ? dequantizeStored(*view) : toF32(*view);
      out.insert(out.end(), part.begin(), part.end());
    }
  }
  return out;
}

std::vector<int32_t> Checkpoint::readI32(const std::string &canonical) const {
  const Resolved &r = resolved(canonical);
  if (!r.stored || r.spec.weightClass != WeightClass::Int)
    throw Error(dir_ + ": " + inQuotes(canonical) + " is not an integer tensor; use readF32");
  return toI32(*r.stored);
}

} // namespace v4c
