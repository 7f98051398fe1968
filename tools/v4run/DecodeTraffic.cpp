#include "tools/v4run/DecodeTraffic.h"

#include <algorithm>
#include <cmath>
#include <set>

#include <nlohmann/json.hpp>

#include "common/Error.h"
#include "runtime/cpu/CacheStorage.h"

namespace v4run {
namespace {

bool sameCacheArg(const v4rt::ArgRef &a, const v4rt::ArgRef &b) {
  return a.kind == v4rt::ArgKind::Cache && b.kind == v4rt::ArgKind::Cache && a.index == b.index;
}

int64_t configInt(const nlohmann::json &config, const char *key) {
  const auto it = config.find(key);
  v4c::check(it != config.end() && it->is_number_integer(),
             std::string("the artifact's model config has no integer \"") + key + "\"");
  return it->get<int64_t>();
}

} // namespace

const v4rt::Bucket &decodeBucketOf(const v4rt::Program &program) {
  const v4rt::Bucket *prefill = nullptr;
  for (const v4rt::Bucket &bucket : program.buckets) {
    if (bucket.kind == v4rt::BucketKind::Decode && bucket.tokens == 1 && bucket.batch == 1)
      return bucket;
    if (bucket.kind == v4rt::BucketKind::Prefill && (!prefill || bucket.tokens > prefill->tokens))
      prefill = &bucket;
  }
  v4c::check(prefill != nullptr, "the artifact has no prefill or decode bucket");
  return *prefill;
}

DecodeTraffic decodeTraffic(const v4rt::Program &program, int64_t context, int64_t batch) {
  const nlohmann::json config = nlohmann::json::parse(program.configJson);
  const int64_t experts = configInt(config, "n_routed_experts");
  const int64_t topK = configInt(config, "num_experts_per_tok");
  const int64_t vocab = configInt(config, "vocab_size");
  const double expertShare =
      1.0 - std::pow(1.0 - static_cast<double>(topK) / static_cast<double>(experts), static_cast<double>(batch));

  const v4rt::Bucket &bucket = decodeBucketOf(program);
  DecodeTraffic traffic;
  std::set<uint32_t> weightsSeen;
  for (const v4rt::Step &step : bucket.steps) {
    bool readsIds = false;
    int64_t indexListWidth = 0; // K of an i32 [T, K] arena input (top-k indices)
    for (const v4rt::ArgRef &arg : step.ins) {
      if (arg.kind == v4rt::ArgKind::Input && arg.index < program.inputs.size() &&
          program.inputs[arg.index].name == "ids")
        readsIds = true;
      if (arg.kind == v4rt::ArgKind::Arena && arg.dtype == v4rt::DType::I32 && arg.shape.size() == 2 &&
          arg.shape[0] == bucket.tokens)
        indexListWidth = arg.shape[1];
    }
    for (const v4rt::ArgRef &arg : step.ins) {
      if (arg.kind == v4rt::ArgKind::Weight && weightsSeen.insert(arg.index).second) {
        const v4rt::Weight &weight = program.weights.at(arg.index);
        if (weight.shape.size() == 3 && weight.shape[0] == experts) {
          traffic.routedExpertBytes += weight.size;
          traffic.weightBytes += static_cast<uint64_t>(std::llround(expertShare * static_cast<double>(weight.size)));
        } else if (readsIds && !weight.shape.empty() && weight.shape[0] == vocab) {
          traffic.weightBytes += std::min<uint64_t>(weight.size, weight.size / vocab * batch);
        } else {
          traffic.weightBytes += weight.size;
        }
      }
      if (arg.kind != v4rt::ArgKind::Cache)
        continue;
      const v4rt::CacheSlot &slot = program.caches.at(arg.index);
      const bool written = std::any_of(step.outs.begin(), step.outs.end(),
                                       [&](const v4rt::ArgRef &out) { return sameCacheArg(arg, out); });
      int64_t rows = 0;
      if (slot.kind == v4rt::CacheKind::CompressState)
        rows = slot.rows;
      else if (written)
        rows = 0; // an append: one row written, nothing read
      else if (slot.kind == v4rt::CacheKind::Window)
        rows = std::min(context, slot.rows);
      else {
        rows = (context + 1) / slot.rate;
        if (indexListWidth > 0)
          rows = std::min(rows, indexListWidth);
      }
      const uint64_t rowBytes = v4rt::cacheRowBytes(v4rt::CacheRowFormat{slot.dtype, slot.ropeWidth}, slot.width);
      traffic.cacheBytes += static_cast<uint64_t>(rows) * rowBytes * static_cast<uint64_t>(batch);
    }
  }
  return traffic;
}

} // namespace v4run
