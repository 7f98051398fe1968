#include "runtime/Model.h"

#include <algorithm>

#include "common/Error.h"

namespace v4rt {

std::unique_ptr<Model> Model::load(const std::string &path, const LoadOptions &options) {
  std::unique_ptr<Model> model(new Model());
  OpenOptions open;
  open.verifyChecksums = options.verifyChecksums;
  open.generateDummyWeights = true; // `--weights dummy` artifacts: weights generated on the host
  model->artifact_ = Artifact::open(path, open);
  model->pool_ = std::make_unique<ThreadPool>(options.threads);
  model->bind(path);
  return model;
}

namespace {
// Bytes of one token's row of a decode step's operand: a session's share in
// a batched decode bucket (docs/ops.md, "Batched decode").
uint64_t tokenRowBytes(const std::string &path, const Bucket &bucket, const std::string &kernel,
                       const ArgRef &arg) {
  if (arg.kind == ArgKind::Weight || arg.kind == ArgKind::Cache)
    return 0;
  v4c::check(!arg.shape.empty() && arg.shape[0] == bucket.tokens,
             path + ": bucket " + bucket.name + ": a '" + kernel +
                 "' operand is not token-major (its first dimension is not the bucket's " +
                 std::to_string(bucket.tokens) + " tokens); recompile the artifact");
  return arg.byteSize() / static_cast<uint64_t>(bucket.tokens);
}
} // namespace

void Model::bind(const std::string &path) {
  const Program &program = artifact_->program();
  if (program.target != "cpu")
    throw v4c::Error(path + ": compiled for target '" + program.target +
                     "', which needs the CUDA backend (this runtime runs 'cpu' artifacts)");
  // f32 / i32, plus the quantized kernels' e4m3 codes (F8E4M3) and e2m1
  // codes and ue8m0 scales (one byte each, U8); see docs/quantization.md.
  for (const Weight &weight : program.weights)
    v4c::check(weight.dtype == DType::F32 || weight.dtype == DType::I32 || weight.dtype == DType::F8E4M3 ||
                   weight.dtype == DType::U8,
               path + ": weight \"" + weight.name + "\" is " + dtypeName(weight.dtype) +
                   "; the CPU backend needs f32/i32 weights or quantized f8e4m3/u8 ones");
  v4c::check(program.outputs.size() == 1 && program.outputs[0].name == "logits",
             path + ": artifact has no 'logits' output");
  vocabSize_ = program.outputs[0].width;
  while (idsInput_ < program.inputs.size() && program.inputs[idsInput_].name != "ids")
    ++idsInput_;
  v4c::check(idsInput_ < program.inputs.size(), path + ": artifact has no 'ids' input");

  bool havePrefill = false;
  for (const Bucket &bucket : program.buckets) {
    BoundBucket bound;
    bound.bucket = &bucket;
    for (const Step &step : bucket.steps) {
      const std::string &name = program.kernels[step.kernel].name;
      BoundStep b;
      b.fn = findCpuKernel(name);
      v4c::check(b.fn != nullptr, path + ": bucket " + bucket.name + " uses kernel '" + name +
                                      "', which this runtime does not have");
      b.step = &step;
      for (const auto *args : {&step.ins, &step.outs})
        for (const ArgRef &arg : *args)
          b.perSession = b.perSession || arg.kind == ArgKind::Cache;
      if (bucket.kind == BucketKind::Decode) {
        for (const ArgRef &arg : step.ins)
          b.inRowBytes.push_back(tokenRowBytes(path, bucket, name, arg));
        for (const ArgRef &arg : step.outs)
          b.outRowBytes.push_back(tokenRowBytes(path, bucket, name, arg));
      }
      for (const Attr &attr : step.attrs)
        b.floatAttrs.emplace_back(attr.floats.begin(), attr.floats.end());
      bound.steps.push_back(std::move(b));
    }
    maxArenaBytes_ = std::max(maxArenaBytes_, bucket.arenaBytes);
    const size_t index = buckets_.size();
    buckets_.push_back(std::move(bound));
    if (bucket.kind == BucketKind::Decode) {
      v4c::check(bucket.batch >= 1 && bucket.tokens == bucket.batch,
                 path + ": decode bucket " + bucket.name + " has tokens " + std::to_string(bucket.tokens) +
                     " and batch " + std::to_string(bucket.batch) + "; a decode step runs one token per session");
      decodeBatches_.push_back(bucket.batch);
      decodeBatchIndices_.push_back(index);
    } else if (bucket.kind == BucketKind::Prefill &&
               (!havePrefill || bucket.tokens > program.buckets[prefillIndex_].tokens)) {
      prefillIndex_ = index;
      havePrefill = true;
    }
  }
  v4c::check(havePrefill, path + ": artifact has no prefill bucket");
  // Ascending by batch; one bucket per batch size.
  std::vector<size_t> order(decodeBatches_.size());
  for (size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return decodeBatches_[a] < decodeBatches_[b]; });
  std::vector<int64_t> batches;
  std::vector<size_t> indices;
  for (size_t i : order) {
    v4c::check(batches.empty() || batches.back() != decodeBatches_[i],
               path + ": two decode buckets of batch " + std::to_string(decodeBatches_[i]));
    batches.push_back(decodeBatches_[i]);
    indices.push_back(decodeBatchIndices_[i]);
  }
  decodeBatches_ = std::move(batches);
  decodeBatchIndices_ = std::move(indices);
  // A single session decodes with the smallest decode bucket (decode_1, or
  // decode_B run over one row); without one, a prefill chunk of one token is
  // a valid decode step.
  decodeIndex_ = decodeBatchIndices_.empty() ? prefillIndex_ : decodeBatchIndices_.front();
}

const BoundBucket *Model::decodeBucketFor(int64_t sessions) const {
  if (decodeBatches_.empty())
    return nullptr;
  for (size_t i = 0; i < decodeBatches_.size(); ++i)
    if (decodeBatches_[i] >= sessions)
      return &buckets_[decodeBatchIndices_[i]];
  return &buckets_[decodeBatchIndices_.back()];
}

} // namespace v4rt
