#include "tools/v4run/DecodeTraffic.h"

#include <set>

#include <nlohmann/json.hpp>

#include "common/Error.h"
#include "tools/v4run/StepWork.h"

namespace v4run {

const v4rt::Bucket &decodeBucketOf(const v4rt::Program &program, int64_t batch) {
  const v4rt::Bucket *batched = nullptr, *single = nullptr, *prefill = nullptr;
  for (const v4rt::Bucket &bucket : program.buckets) {
    if (bucket.kind == v4rt::BucketKind::Decode && bucket.tokens == bucket.batch) {
      if (bucket.batch == 1)
        single = &bucket;
      if (bucket.batch >= batch && (!batched || bucket.batch < batched->batch))
        batched = &bucket;
    }
    if (bucket.kind == v4rt::BucketKind::Prefill && (!prefill || bucket.tokens > prefill->tokens))
      prefill = &bucket;
  }
  if (batched)
    return *batched;
  if (single)
    return *single;
  v4c::check(prefill != nullptr, "the artifact has no prefill or decode bucket");
  return *prefill;
}

DecodeTraffic decodeTraffic(const v4rt::Program &program, int64_t context, int64_t batch) {
  const WorkModel model(program);
  const v4rt::Bucket &bucket = decodeBucketOf(program, batch);
  // A batch of B sessions: the B-row bucket's rows are sessions. A
  // single-session bucket (or the prefill fallback) is one session; B > 1
  // there means B sessions each running it, which only scales the caches.
  const bool rowsAreSessions = bucket.kind == v4rt::BucketKind::Decode && bucket.batch > 1;
  const RunShape run{rowsAreSessions ? batch : 1, context};
  const uint64_t sessionCopies = rowsAreSessions ? 1 : static_cast<uint64_t>(batch);
  DecodeTraffic traffic;
  std::set<uint32_t> weightsSeen;
  for (const v4rt::Step &step : bucket.steps) {
    std::set<uint32_t> cachesSeen;
    for (const auto *args : {&step.ins, &step.outs})
      for (const v4rt::ArgRef &arg : *args) {
        if (arg.kind == v4rt::ArgKind::Weight && weightsSeen.insert(arg.index).second) {
          const v4rt::Weight &weight = program.weights.at(arg.index);
          if (weight.shape.size() == 3 && weight.shape[0] == model.routedExperts())
            traffic.routedExpertBytes += weight.size;
          traffic.weightBytes += model.weightBytes(step, arg, batch);
        }
        if (arg.kind == v4rt::ArgKind::Cache && cachesSeen.insert(arg.index).second)
          traffic.cacheBytes += sessionCopies * (model.cacheReadBytes(bucket, step, arg, run) +
                                                 model.cacheWrittenBytes(bucket, step, arg, run));
      }
  }
  return traffic;
}

double modelDocCacheBytesPerToken(const std::string &configJson) {
  const nlohmann::json config = nlohmann::json::parse(configJson, nullptr, false);
  const auto types = config.is_object() ? config.find("layer_types") : config.end();
  v4c::check(config.is_object() && types != config.end() && types->is_array(),
             "the artifact's model config has no \"layer_types\"");
  // The figures are V4-Flash's (head_dim 512, index_head_dim 128, bf16).
  if (config.value("head_dim", int64_t{0}) != 512 || config.value("index_head_dim", int64_t{0}) != 128)
    return -1.0;
  double bytes = 0.0;
  for (const nlohmann::json &type : *types) {
    if (type == "compressed_sparse_attention")
      bytes += 320.0; // V4-MODEL.md: ~320 bytes per token (bf16)
    else if (type == "heavily_compressed_attention")
      bytes += 8.0; // V4-MODEL.md: ~8 bytes per token (bf16)
  }
  return bytes;
}

} // namespace v4run
