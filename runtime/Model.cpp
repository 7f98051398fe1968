#include "runtime/Model.h"

#include "common/Error.h"

namespace v4rt {

std::unique_ptr<Model> Model::load(const std::string &path, const LoadOptions &options) {
  std::unique_ptr<Model> model(new Model());
  OpenOptions open;
  open.verifyChecksums = options.verifyChecksums;
  model->artifact_ = Artifact::open(path, open);
  model->pool_ = std::make_unique<ThreadPool>(options.threads);
  model->bind(path);
  return model;
}

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

  bool havePrefill = false, haveDecode = false;
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
      for (const Attr &attr : step.attrs)
        b.floatAttrs.emplace_back(attr.floats.begin(), attr.floats.end());
      bound.steps.push_back(std::move(b));
    }
    maxArenaBytes_ = std::max(maxArenaBytes_, bucket.arenaBytes);
    const size_t index = buckets_.size();
    buckets_.push_back(std::move(bound));
    if (bucket.kind == BucketKind::Decode && bucket.tokens == 1 && bucket.batch == 1) {
      decodeIndex_ = index;
      haveDecode = true;
    } else if (bucket.kind == BucketKind::Prefill &&
               (!havePrefill || bucket.tokens > program.buckets[prefillIndex_].tokens)) {
      prefillIndex_ = index;
      havePrefill = true;
    }
  }
  v4c::check(havePrefill, path + ": artifact has no prefill bucket");
  if (!haveDecode) // a prefill chunk of one token is a valid decode step
    decodeIndex_ = prefillIndex_;
}

} // namespace v4rt
