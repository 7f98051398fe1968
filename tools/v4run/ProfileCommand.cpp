#include "tools/v4run/ProfileCommand.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/Error.h"
#include "runtime/artifact/ArtifactReader.h"
#include "tools/v4run/ContextLimit.h"
#include "tools/v4run/DecodeTraffic.h"
#include "tools/v4run/Runner.h"
#include "tools/v4run/StepTimer.h"
#include "tools/v4run/StepWork.h"

namespace v4run {
namespace {

// The bucket the options name and its live rows.
struct Target {
  const v4rt::Bucket *bucket = nullptr;
  RunShape run;
  int64_t sessions = 1;
};

Target pickBucket(const v4rt::Program &program, const ProfileOptions &options) {
  Target target;
  if (options.bucket == "decode") {
    const v4rt::Bucket &bucket = decodeBucketOf(program, options.batch);
    const bool batched = bucket.kind == v4rt::BucketKind::Decode && bucket.batch > 1;
    v4c::check(options.batch == 1 || (batched && bucket.batch >= options.batch),
               "profile: the artifact has no decode bucket for " + std::to_string(options.batch) +
                   " sessions (v4c compile --decode-batch " + std::to_string(options.batch) + ")");
    target.bucket = &bucket;
    target.run.rows = batched ? options.batch : 1;
    target.sessions = batched ? options.batch : 1;
  } else {
    v4c::check(options.batch == 1, "profile: --batch applies to --bucket decode");
    for (const v4rt::Bucket &bucket : program.buckets)
      if (bucket.kind == v4rt::BucketKind::Prefill && (!target.bucket || bucket.tokens > target.bucket->tokens))
        target.bucket = &bucket;
    v4c::check(target.bucket != nullptr, "profile: the artifact has no prefill bucket");
    const int64_t tokens = options.tokens ? options.tokens : target.bucket->tokens;
    v4c::check(tokens >= 1 && tokens <= target.bucket->tokens,
               "profile: --tokens must be 1 to " + std::to_string(target.bucket->tokens) + " (bucket " +
                   target.bucket->name + ")");
    target.run.rows = tokens;
  }
  v4c::check(!target.bucket->steps.empty(), "profile: bucket " + target.bucket->name + " has no steps");
  target.run.context = options.context;
  return target;
}

double peakOf(MathKind math, const ProfileOptions &options) {
  switch (math) {
  case MathKind::F32:
    return options.peakF32;
  case MathKind::BF16:
    return options.peakBf16;
  case MathKind::FP8:
    return 2.0 * options.peakBf16;
  case MathKind::None:
    break;
  }
  return 0.0;
}

std::string bytesText(double bytes) {
  char text[32];
  if (bytes >= 1e9)
    std::snprintf(text, sizeof text, "%.2f GB", bytes / 1e9);
  else if (bytes >= 1e6)
    std::snprintf(text, sizeof text, "%.2f MB", bytes / 1e6);
  else if (bytes >= 1e3)
    std::snprintf(text, sizeof text, "%.1f KB", bytes / 1e3);
  else
    std::snprintf(text, sizeof text, "%.0f B", bytes);
  return text;
}

std::string shortened(const std::string &text, size_t width) {
  return text.size() <= width ? text : text.substr(0, width - 3) + "...";
}

// One row of the table: the step's work, its median time and what follows.
struct Row {
  size_t index = 0;
  std::string kernel;
  StepWork work;
  double us = 0.0;
  double rooflineUs = 0.0; // max(bytes / bandwidth, FLOPs / peak)
  bool computeBound = false;
};

double gbPerS(double bytes, double us) { return us > 0 ? bytes / us * 1e-3 : 0.0; }
double tflopPerS(double flops, double us) { return us > 0 ? flops / us * 1e-6 : 0.0; }
double percent(double part, double whole) { return whole > 0 ? 100.0 * part / whole : 0.0; }

} // namespace

double median(std::vector<double> values) {
  v4c::check(!values.empty(), "no samples to take a median of");
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

int runProfile(const ProfileOptions &options) {
  v4c::check(options.bucket == "decode" || options.bucket == "prefill", "--bucket must be decode or prefill");
  v4c::check(options.context >= 0, "--context must be >= 0");
  v4c::check(options.batch >= 1, "--batch must be >= 1");
  v4c::check(options.repeat >= 1, "--repeat must be >= 1");
  v4c::check(options.warmup >= 0, "--warmup must be >= 0");
  v4c::check(options.fill == "compute" || options.fill == "tiled", "--fill must be compute or tiled");
  v4c::check(options.fillChunk >= 1, "--fill-chunk must be >= 1");
  v4c::check(options.bandwidth > 0 && options.peakBf16 > 0 && options.peakF32 > 0,
             "--bandwidth and the peaks must be positive");
  v4c::check(options.tokens >= 0, "--tokens must be >= 1 (0: the bucket's)");
  v4c::check(options.maxContext >= 0, "--max-context must be >= 0 (0: context + the bucket)");
  checkFitsContext(options.artifact, {options.context, std::max<int64_t>(options.tokens, 1)},
                   "--context + the profiled tokens");

  // The bucket from the manifest first: on GPU artifacts it sizes the sessions.
  v4rt::OpenOptions manifestOnly;
  manifestOnly.verifyChecksums = false;
  const std::unique_ptr<v4rt::Artifact> manifest = v4rt::Artifact::open(options.artifact, manifestOnly);
  const bool timed = !options.modelOnly;
  std::unique_ptr<StepTimer> timer;
  if (timed && isDeviceTarget(manifest->program().target)) {
    const Target target = pickBucket(manifest->program(), options);
    const int64_t tokensPerSession = target.sessions > 1 ? 1 : target.run.rows;
    const int64_t capacity = std::max(options.maxContext, options.context + tokensPerSession);
    timer = openCudaStepTimer(options.artifact, capacity, options.graphs, options.prime);
  } else if (timed) {
    timer = openCpuStepTimer(options.artifact, options.threads);
  }
  const v4rt::Program &program = timer ? timer->program() : manifest->program();
  const Target target = pickBucket(program, options);
  const v4rt::Bucket &bucket = *target.bucket;
  double fillS = 0.0;
  StepTimings timings;
  if (timer) {
    fillS = timer->fill(options.context, target.sessions, options.fill == "tiled", options.fillChunk);
    timings = timer->time(bucket, target.run, options.warmup, options.repeat);
  }
  const std::string backend = timer ? timer->describe() : "nothing run (--model-only)";
  const std::string clock = timer ? timer->clock() : "none";

  const WorkModel model(program);
  std::vector<Row> rows;
  double stepsUs = 0.0, rooflineUs = 0.0, bytes = 0.0, flops = 0.0;
  for (size_t s = 0; s < bucket.steps.size(); ++s) {
    Row row;
    row.index = s;
    row.kernel = program.kernels.at(bucket.steps[s].kernel).name;
    row.work = model.step(bucket, bucket.steps[s], target.run);
    row.us = timed ? median(timings.stepUs.at(s)) : 0.0;
    const double memoryUs = static_cast<double>(row.work.bytes()) / options.bandwidth * 1e6;
    const double peak = peakOf(row.work.math, options);
    const double computeUs = peak > 0 ? row.work.flops / peak * 1e6 : 0.0;
    row.rooflineUs = std::max(memoryUs, computeUs);
    row.computeBound = computeUs > memoryUs;
    stepsUs += row.us;
    rooflineUs += row.rooflineUs;
    bytes += static_cast<double>(row.work.bytes());
    flops += row.work.flops;
    rows.push_back(row);
  }
  const double bucketUs = timed ? median(timings.bucketUs) : 0.0;
  // Cells that need a time: "-" when nothing ran.
  auto timedCell = [&](const char *spec, double value) {
    char text[32];
    std::snprintf(text, sizeof text, spec, value);
    return timed ? std::string(text) : std::string("-");
  };

  std::printf("profile: %s on %s (%s)\n", options.artifact.c_str(), backend.c_str(), clock.c_str());
  std::printf("bucket %s: %lld row(s) at context %lld, %zu steps", bucket.name.c_str(),
              static_cast<long long>(target.run.rows), static_cast<long long>(options.context), bucket.steps.size());
  if (timed)
    std::printf("; filled in %.2f s (%s); median of %lld runs after %lld warm-up", fillS, options.fill.c_str(),
                static_cast<long long>(options.repeat), static_cast<long long>(options.warmup));
  std::printf("\n");
  if (!options.quiet) {
    std::printf("%5s  %-44s %-20s %10s %10s %10s %10s %9s %8s %4s %6s\n", "step", "kernel", "op", "us", "bytes",
                "GFLOP", "ceil us", "GB/s", "TFLOP/s", "bnd", "%ceil");
    for (const Row &row : rows)
      std::printf("%5zu  %-44s %-20s %10s %10s %10.4f %10.2f %9s %8s %4s %6s\n", row.index,
                  shortened(row.kernel, 44).c_str(), row.work.op.c_str(), timedCell("%.2f", row.us).c_str(),
                  bytesText(static_cast<double>(row.work.bytes())).c_str(), row.work.flops / 1e9, row.rooflineUs,
                  timedCell("%.1f", gbPerS(static_cast<double>(row.work.bytes()), row.us)).c_str(),
                  timedCell("%.2f", tflopPerS(row.work.flops, row.us)).c_str(), row.computeBound ? "flop" : "mem",
                  timedCell("%.1f", percent(row.rooflineUs, row.us)).c_str());
  }

  // Per op kind, slowest first.
  struct OpTotal {
    int64_t steps = 0;
    double us = 0.0, bytes = 0.0, flops = 0.0, rooflineUs = 0.0;
  };
  std::map<std::string, OpTotal> byOp;
  for (const Row &row : rows) {
    OpTotal &total = byOp[row.work.op];
    total.steps += 1;
    total.us += row.us;
    total.bytes += static_cast<double>(row.work.bytes());
    total.flops += row.work.flops;
    total.rooflineUs += row.rooflineUs;
  }
  std::vector<std::pair<std::string, OpTotal>> ops(byOp.begin(), byOp.end());
  // Slowest first (by ceiling when nothing ran).
  std::stable_sort(ops.begin(), ops.end(), [&](const auto &a, const auto &b) {
    return timed ? a.second.us > b.second.us : a.second.rooflineUs > b.second.rooflineUs;
  });
  std::printf("%-22s %5s %11s %6s %10s %10s %10s %9s %8s %6s\n", "op", "steps", "us", "share", "bytes", "GFLOP",
              "ceil us", "GB/s", "TFLOP/s", "%ceil");
  for (const auto &[op, total] : ops)
    std::printf("%-22s %5lld %11s %6s %10s %10.4f %10.2f %9s %8s %6s\n", op.c_str(),
                static_cast<long long>(total.steps), timedCell("%.2f", total.us).c_str(),
                timedCell("%.1f%%", percent(total.us, stepsUs)).c_str(), bytesText(total.bytes).c_str(),
                total.flops / 1e9, total.rooflineUs, timedCell("%.1f", gbPerS(total.bytes, total.us)).c_str(),
                timedCell("%.2f", tflopPerS(total.flops, total.us)).c_str(),
                timedCell("%.1f", percent(total.rooflineUs, total.us)).c_str());
  std::printf("total: bucket %s us alone, steps sum %s us; moves %s, %.4f GFLOP; ceiling %.2f us "
              "(%.2f TB/s, bf16 %.0f TFLOP/s): %s%% of it\n",
              timedCell("%.2f", bucketUs).c_str(), timedCell("%.2f", stepsUs).c_str(), bytesText(bytes).c_str(),
              flops / 1e9, rooflineUs, options.bandwidth / 1e12, options.peakBf16 / 1e12,
              timedCell("%.1f", percent(rooflineUs, bucketUs)).c_str());

  nlohmann::json stepRows = nlohmann::json::array();
  for (const Row &row : rows)
    stepRows.push_back({{"step", row.index},
                        {"kernel", row.kernel},
                        {"op", row.work.op},
                        {"us", row.us},
                        {"bytes", row.work.bytes()},
                        {"weight_bytes", row.work.weightBytes},
                        {"activation_bytes", row.work.activationBytes},
                        {"cache_read_bytes", row.work.cacheReadBytes},
                        {"cache_written_bytes", row.work.cacheWrittenBytes},
                        {"flops", row.work.flops},
                        {"math", mathKindName(row.work.math)},
                        {"ceiling_us", row.rooflineUs},
                        {"ceiling_pct", percent(row.rooflineUs, row.us)}});
  nlohmann::json opRows = nlohmann::json::array();
  for (const auto &[op, total] : ops)
    opRows.push_back({{"op", op},
                      {"steps", total.steps},
                      {"us", total.us},
                      {"share", total.us / std::max(stepsUs, 1e-12)},
                      {"bytes", total.bytes},
                      {"flops", total.flops},
                      {"gb_per_s", gbPerS(total.bytes, total.us)},
                      {"tflop_per_s", tflopPerS(total.flops, total.us)},
                      {"ceiling_pct", percent(total.rooflineUs, total.us)}});
  const nlohmann::json line = {{"profile", "v4run"},
                               {"artifact", options.artifact},
                               {"target", program.target},
                               {"backend", backend},
                               {"clock", clock},
                               {"timed", timed},
                               {"bucket", bucket.name},
                               {"rows", target.run.rows},
                               {"context", options.context},
                               {"fill", options.fill},
                               {"fill_s", fillS},
                               {"repeat", options.repeat},
                               {"bucket_us", bucketUs},
                               {"steps_us", stepsUs},
                               {"bytes", bytes},
                               {"flops", flops},
                               {"ceiling_us", rooflineUs},
                               {"bandwidth", options.bandwidth},
                               {"peak_bf16", options.peakBf16},
                               {"steps", stepRows},
                               {"ops", opRows}};
  std::printf("%s\n", line.dump().c_str());
  return 0;
}

} // namespace v4run
