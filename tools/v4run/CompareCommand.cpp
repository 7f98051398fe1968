#include "tools/v4run/CompareCommand.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "common/Error.h"
#include "runtime/Model.h"
#include "runtime/PagePayload.h"
#include "runtime/Sampler.h"
#include "runtime/Session.h"
#include "runtime/artifact/ArtifactReader.h"
#include "tools/v4run/PromptIds.h"

#ifdef V4RUN_HAVE_CUDA
#include "runtime/cuda/CudaModel.h"
#include "runtime/cuda/CudaSession.h"
#endif

namespace v4run {

#ifdef V4RUN_HAVE_CUDA
namespace {

using v4rt::ArgKind;
using v4rt::ArgRef;

std::string shapeText(const std::vector<int64_t> &shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    text += (i ? "x" : "") + std::to_string(shape[i]);
  return text + "]";
}

// "" when every bucket of the CPU program has a GPU bucket of the same name
// whose steps correspond one to one (GPU artifacts may carry more decode
// buckets: v4c's default batch sizes differ per target), else the first
// difference.
std::string stepListMismatch(const v4rt::Program &gpu, const v4rt::Program &cpu) {
  if (gpu.caches.size() != cpu.caches.size())
    return "the artifacts have different cache slots";
  for (const v4rt::Bucket &c : cpu.buckets) {
    const v4rt::Bucket *match = nullptr;
    for (const v4rt::Bucket &candidate : gpu.buckets)
      if (candidate.name == c.name)
        match = &candidate;
    if (!match)
      return "the GPU artifact has no bucket " + c.name;
    const v4rt::Bucket &g = *match;
    if (g.tokens != c.tokens || g.steps.size() != c.steps.size())
      return "bucket " + c.name + ": GPU " + std::to_string(g.tokens) + " tokens, " + std::to_string(g.steps.size()) +
             " steps vs CPU " + std::to_string(c.tokens) + " tokens, " + std::to_string(c.steps.size()) + " steps";
    for (size_t s = 0; s < g.steps.size(); ++s) {
      const v4rt::Step &gs = g.steps[s], &cs = c.steps[s];
      const std::string where = "bucket " + g.name + " step " + std::to_string(s) + " (GPU " +
                                gpu.kernels[gs.kernel].name + ", CPU " + cpu.kernels[cs.kernel].name + ")";
      if (gs.ins.size() != cs.ins.size() || gs.outs.size() != cs.outs.size())
        return where + ": different argument counts";
      for (size_t o = 0; o < gs.outs.size(); ++o)
        if (gs.outs[o].kind != cs.outs[o].kind || gs.outs[o].shape != cs.outs[o].shape)
          return where + ": output " + std::to_string(o) + " is " + shapeText(gs.outs[o].shape) + " vs " +
                 shapeText(cs.outs[o].shape);
    }
  }
  return {};
}

bool tokenMajor(const ArgRef &arg, int64_t bucketTokens) { return !arg.shape.empty() && arg.shape[0] == bucketTokens; }

// The CPU step's output `o` as floats: the `tokens` live rows, or every valid
// row of a cache slot.
std::vector<float> cpuOutput(const v4rt::KernelArgs &args, const v4rt::Bucket &bucket, size_t o) {
  const ArgRef &arg = args.step().outs[o];
  if (arg.kind == ArgKind::Cache) {
    const auto *cache = static_cast<const v4rt::CacheBuffer *>(args.outs[o]);
    std::vector<float> values;
    values.reserve(static_cast<size_t>(cache->rows * cache->width));
    for (int64_t r = 0; r < cache->rows; ++r)
      values.insert(values.end(), cache->row(r), cache->row(r) + cache->width);
    return values;
  }
  uint64_t elements = arg.byteSize() / v4rt::dtypeSize(arg.dtype);
  if (tokenMajor(arg, bucket.tokens))
    elements = elements / static_cast<uint64_t>(bucket.tokens) * static_cast<uint64_t>(args.tokens);
  std::vector<float> values(elements);
  if (arg.dtype == v4rt::DType::I32) {
    const auto *ints = static_cast<const int32_t *>(args.outs[o]);
    std::transform(ints, ints + elements, values.begin(), [](int32_t v) { return static_cast<float>(v); });
  } else {
    v4c::check(arg.dtype == v4rt::DType::F32, "compare: CPU output of dtype " +
                                                  std::string(v4rt::dtypeName(arg.dtype)) + " is not supported");
    const auto *floats = static_cast<const float *>(args.outs[o]);
    std::copy(floats, floats + elements, values.begin());
  }
  return values;
}

struct StepError {
  double maxAbs = 0.0, maxRef = 0.0;
  bool sizeMismatch = false;
  double relative() const { return maxAbs / std::max(maxRef, 1e-30); }
};

StepError compareValues(const std::vector<float> &gpu, const std::vector<float> &cpu) {
  StepError e;
  if (gpu.size() != cpu.size()) {
    e.sizeMismatch = true;
    e.maxAbs = INFINITY;
    return e;
  }
  for (size_t i = 0; i < cpu.size(); ++i) {
    const double d = std::fabs(static_cast<double>(gpu[i]) - cpu[i]);
    e.maxAbs = std::isnan(d) ? INFINITY : std::max(e.maxAbs, d);
    e.maxRef = std::max(e.maxRef, std::fabs(static_cast<double>(cpu[i])));
  }
  return e;
}

} // namespace

int runCompare(const CompareOptions &options) {
  const std::vector<int32_t> prompt = parsePromptIds(options.promptIds);
  v4c::check(options.decodeSteps >= 0, "--decode must be >= 0");
  v4c::check(options.tolerance > 0, "--tolerance must be positive (e.g. 1e-4)");
  v4c::check(options.maxContext >= 0, "--max-context must be >= 0 (0: the model's)");
  {
    // The plans first (no device needed): they must correspond step for step.
    v4rt::OpenOptions manifestOnly;
    manifestOnly.verifyChecksums = false;
    const auto gpuPlan = v4rt::Artifact::open(options.gpuArtifact, manifestOnly);
    const auto cpuPlan = v4rt::Artifact::open(options.cpuArtifact, manifestOnly);
    v4c::check(gpuPlan->program().target != "cpu", options.gpuArtifact + " is a cpu artifact; give the GPU one first");
    v4c::check(cpuPlan->program().target == "cpu", options.cpuArtifact + " targets " + cpuPlan->program().target +
                                                       "; the second artifact must be the cpu one");
    const std::string mismatch = stepListMismatch(gpuPlan->program(), cpuPlan->program());
    if (!mismatch.empty()) {
      std::fprintf(stderr, "compare: the step lists do not correspond (%s); compile both artifacts from the same "
                           "checkpoint with the same options except --target\n",
                   mismatch.c_str());
      return 2;
    }
  }
  v4rt::LoadOptions cpuLoad;
  cpuLoad.threads = options.threads;
  std::unique_ptr<v4rt::Model> cpuModel = v4rt::Model::load(options.cpuArtifact, cpuLoad);
  v4rt::cuda::CudaLoadOptions gpuLoad;
  gpuLoad.maxContext = options.maxContext;
  std::unique_ptr<v4rt::cuda::CudaModel> gpuModel = v4rt::cuda::CudaModel::load(options.gpuArtifact, gpuLoad);
  const v4rt::Program &gpu = gpuModel->program();
  const v4rt::Program &cpu = cpuModel->program();
  v4c::check(gpuModel->vocabSize() == cpuModel->vocabSize(), "compare: the artifacts' vocab sizes differ");
  const int64_t V = cpuModel->vocabSize();
  std::printf("compare: %s (%s on %s) vs %s (cpu), tolerance %.1e\n", options.gpuArtifact.c_str(),
              gpu.target.c_str(), gpuModel->device().name().c_str(), options.cpuArtifact.c_str(), options.tolerance);

  v4rt::Session cpuSession(*cpuModel);
  v4rt::cuda::CudaSession gpuSession(*gpuModel);
  // The CPU run of each piece is recorded step by step, then the GPU run of
  // the same piece is compared with it as it goes.
  std::vector<std::vector<std::vector<float>>> cpuOutputs; // [step][output]
  const v4rt::Bucket *cpuBucket = nullptr;
  cpuSession.setStepHook([&](const v4rt::BoundBucket &bound, size_t stepIndex, const v4rt::KernelArgs &args) {
    cpuBucket = bound.bucket;
    if (cpuOutputs.size() <= stepIndex)
      cpuOutputs.resize(stepIndex + 1);
    cpuOutputs[stepIndex].clear();
    for (size_t o = 0; o < args.outs.size(); ++o)
      cpuOutputs[stepIndex].push_back(cpuOutput(args, *bound.bucket, o));
  });
  int runIndex = 0;
  bool flagged = false;
  int64_t stepsOver = 0, stepsCompared = 0;
  gpuSession.setStepObserver([&](const v4rt::cuda::StepReport &report) {
    const v4rt::Bucket &bucket = *report.bucket->bucket;
    v4c::check(cpuBucket && cpuBucket->name == bucket.name,
               "compare: the GPU ran bucket " + bucket.name + " but the CPU ran " +
                   (cpuBucket ? cpuBucket->name : std::string("none")));
    const v4rt::Step &step = bucket.steps[report.stepIndex];
    const v4rt::Step &cpuStep = cpuBucket->steps[report.stepIndex];
    StepError worst;
    size_t worstOutput = 0;
    bool compared = false;
    for (size_t o = 0; o < step.outs.size(); ++o) {
      const ArgRef &out = step.outs[o];
      if (out.kind == ArgKind::Cache && gpu.caches.at(out.index).dtype == v4rt::DType::F8E4M3)
        continue; // fp8 rows (codes + scales): their effect shows in the steps that read them
      const std::vector<float> &reference = cpuOutputs.at(report.stepIndex).at(o);
      int64_t rows = report.tokens;
      if (out.kind == ArgKind::Cache)
        rows = static_cast<int64_t>(reference.size()) / gpu.caches.at(out.index).width;
      const StepError e = compareValues(gpuSession.readArgument(*report.bucket, out, rows), reference);
      if (!compared || !(e.relative() <= worst.relative())) {
        worst = e;
        worstOutput = o;
      }
      compared = true;
    }
    if (!compared) {
      if (!options.quiet)
        std::printf("run %d %s step %3zu %-40s [%s] not compared (fp8 cache rows)\n", runIndex, bucket.name.c_str(),
                    report.stepIndex, gpu.kernels[step.kernel].name.c_str(), cpu.kernels[cpuStep.kernel].name.c_str());
      return;
    }
    ++stepsCompared;
    const bool over = !(worst.relative() <= options.tolerance);
    stepsOver += over;
    if (over || !options.quiet)
      std::printf("run %d %s step %3zu %-40s [%s] out%zu max abs %.3e rel %.3e%s%s\n", runIndex, bucket.name.c_str(),
                  report.stepIndex, gpu.kernels[step.kernel].name.c_str(), cpu.kernels[cpuStep.kernel].name.c_str(),
                  worstOutput, worst.maxAbs, worst.relative(), worst.sizeMismatch ? " (sizes differ)" : "",
                  over && !flagged ? "  <-- first step over tolerance" : "");
    flagged = flagged || over;
  });

  // The CPU session cuts prefill chunks at page boundaries: feed both the
  // same pieces so they run the same buckets with the same token counts.
  const int64_t page = v4rt::pageTokensFor(cpu.caches);
  const int64_t chunk = std::min(cpuModel->prefillBucket().bucket->tokens, gpuModel->prefillBucket().bucket->tokens);
  std::vector<float> logits(prompt.size() * static_cast<size_t>(V)), gpuLogits(logits.size());
  for (int64_t done = 0; done < static_cast<int64_t>(prompt.size()); ++runIndex) {
    const int64_t n = std::min({chunk, static_cast<int64_t>(prompt.size()) - done, page - done % page});
    std::printf("run %d: prefill %lld tokens at position %lld\n", runIndex, static_cast<long long>(n),
                static_cast<long long>(done));
    cpuSession.prefill(prompt.data() + done, n, logits.data() + done * V);
    gpuSession.prefill(prompt.data() + done, n, gpuLogits.data() + done * V);
    done += n;
  }
  int32_t next = v4rt::argmax(logits.data() + (prompt.size() - 1) * V, V);
  std::vector<float> step(static_cast<size_t>(V)), gpuStep(step.size());
  for (int64_t i = 0; i < options.decodeSteps; ++i, ++runIndex) {
    std::printf("run %d: decode token %d at position %lld\n", runIndex, next,
                static_cast<long long>(cpuSession.position()));
    cpuSession.decode(next, step.data());
    gpuSession.decode(next, gpuStep.data());
    next = v4rt::argmax(step.data(), V);
  }
  std::printf("compare: %lld steps, %lld over tolerance %.1e%s\n", static_cast<long long>(stepsCompared),
              static_cast<long long>(stepsOver), options.tolerance, stepsOver ? " (first one flagged above)" : "");
  return stepsOver ? 1 : 0;
}
#else
int runCompare(const CompareOptions &options) {
  throw v4c::Error("compare needs the CUDA backend, and this v4run was built without it (cuda.h was not found); " +
                   options.gpuArtifact + " cannot be run");
}
#endif

} // namespace v4run
