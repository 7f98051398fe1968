#include "tools/v4run/BenchCommand.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/Error.h"
#include "runtime/Sampler.h"
#include "tools/v4run/ContextLimit.h"
#include "tools/v4run/DecodeTraffic.h"
#include "tools/v4run/LongPrefill.h"
#include "tools/v4run/Runner.h"
#include "tools/v4run/StepTimer.h"
#include "tools/v4run/StepWork.h"

namespace v4run {
namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

} // namespace

int runBench(const BenchOptions &options) {
  v4c::check(options.promptLength >= 1, "--prompt-len must be >= 1");
  v4c::check(options.decodeSteps >= 1, "--decode must be >= 1");
  v4c::check(options.warmupSteps >= 0, "--warmup must be >= 0");
  v4c::check(options.batch >= 1 && options.batch <= kMaxBatchSessions,
             "--batch must be 1 to " + std::to_string(kMaxBatchSessions) + " sessions");
  v4c::check(options.prefillBudgetSeconds >= 0, "--prefill-budget must be >= 0");
  v4c::check(options.bandwidth > 0 && std::isfinite(options.bandwidth),
             "--bandwidth must be a positive number of bytes/s (e.g. 3.0e12)");
  v4c::check(options.maxContext >= 0, "--max-context must be >= 0 (0: the model's)");
  checkFitsContext(options.artifact, {options.promptLength, options.warmupSteps, options.decodeSteps},
                   "--prompt-len + --warmup + --decode");
  RunnerOptions runnerOptions;
  runnerOptions.threads = options.threads;
  runnerOptions.maxContext = options.maxContext;
  // B sessions at the config's maximum context (1M tokens for V4) would not
  // fit the device together: size them for what the bench feeds.
  if (options.batch > 1 && options.maxContext == 0)
    runnerOptions.maxContext = options.promptLength + options.warmupSteps + options.decodeSteps + 1;
  const auto loadStart = Clock::now();
  std::unique_ptr<Runner> runner = openRunner(options.artifact, runnerOptions);
  const double loadS = secondsSince(loadStart);
  const int64_t V = runner->vocabSize();
  int64_t P = options.promptLength;
  const std::vector<int32_t> prompt = syntheticIds(P, V);
  std::vector<float> logits(static_cast<size_t>(V));

  // Warm-up: one prefill chunk in a throwaway session (first launches, page faults).
  {
    std::unique_ptr<RunnerSession> warm = runner->newSession();
    warm->prefillLast(prompt.data(), std::min(P, runner->prefillChunk()), logits.data());
  }
  // B sessions at context P: the first one's prefill is timed.
  const size_t B = static_cast<size_t>(options.batch);
  std::vector<std::unique_ptr<RunnerSession>> sessions;
  std::vector<RunnerSession *> batch;
  std::vector<int32_t> next(B);
  // The first one in pieces of >= 16K tokens (progress lines for long prompts;
  // --prefill-budget stops it early, and decode then runs at the context reached).
  const int64_t piece = runner->prefillChunk() * std::max<int64_t>(1, 16384 / runner->prefillChunk());
  sessions.push_back(runner->newSession());
  batch.push_back(sessions.back().get());
  const PrefillRun prefill =
      prefillInPieces(*sessions.back(), prompt.data(), P, piece, options.prefillBudgetSeconds, logits.data());
  const double prefillS = prefill.seconds;
  P = prefill.tokens;
  next[0] = prefill.complete ? v4rt::argmax(logits.data(), V) : prompt[static_cast<size_t>(P)];
  for (size_t b = 1; b < B; ++b) {
    sessions.push_back(runner->newSession());
    batch.push_back(sessions.back().get());
    sessions.back()->prefillLast(prompt.data(), P, logits.data());
    next[b] = v4rt::argmax(logits.data(), V);
  }

  // Greedy decode: warm-up steps (the first captures the CUDA graph), then timed ones.
  std::vector<double> deviceMs, hostMs;
  std::vector<float> batchLogits(B * static_cast<size_t>(V));
  for (int64_t i = 0; i < options.warmupSteps + options.decodeSteps; ++i) {
    const auto stepStart = Clock::now();
    if (B == 1)
      batch[0]->decode(next[0], batchLogits.data());
    else
      runner->decodeBatch(batch.data(), B, next.data(), batchLogits.data());
    const double host = secondsSince(stepStart) * 1e3;
    for (size_t b = 0; b < B; ++b)
      next[b] = v4rt::argmax(batchLogits.data() + b * V, V);
    if (i < options.warmupSteps)
      continue;
    hostMs.push_back(host);
    const double device = B == 1 ? batch[0]->lastDecodeDeviceMs() : runner->lastDecodeBatchDeviceMs();
    if (device >= 0) // GPU: CUDA events around the step's launches (all runs of a split batch)
      deviceMs.push_back(device);
  }
  const bool deviceClock = !deviceMs.empty();
  const double decodeMs = deviceClock ? median(deviceMs) : median(hostMs);
  const double hostDecodeMs = median(hostMs);

  const DecodeTraffic traffic = decodeTraffic(runner->program(), P, options.batch);
  const double rooflineMs = static_cast<double>(traffic.total()) / options.bandwidth * 1e3;
  const double ratio = decodeMs / rooflineMs;
  const double prefillTokensPerS = static_cast<double>(P) / std::max(prefillS, 1e-12);
  // KV cache: what a token adds, next to V4-MODEL.md's figure, and the whole at context P.
  const WorkModel work(runner->program());
  const double kvBytesPerToken = work.cacheBytesPerToken();
  const double kvBytesPerTokenDoc = modelDocCacheBytesPerToken(runner->program().configJson);
  const double kvBytesAtContext = kvBytesPerToken * static_cast<double>(P);

  std::printf("bench: %s on %s (loaded in %.2f s)\n", options.artifact.c_str(), runner->describe().c_str(), loadS);
  std::printf("prefill: %lld tokens in %.2f ms: %.1f tokens/s%s\n", static_cast<long long>(P), prefillS * 1e3,
              prefillTokensPerS, prefill.complete ? "" : " (stopped by --prefill-budget)");
  const std::string docFigure = kvBytesPerTokenDoc < 0 ? std::string("n/a: not V4-Flash's head sizes")
                                                       : std::to_string(static_cast<int64_t>(kvBytesPerTokenDoc)) +
                                                             " for these layers in bf16";
  std::printf("kv cache: %.1f bytes/token (compressed entries and indexer keys; V4-MODEL.md: %s); %.3f GB at "
              "context %lld\n",
              kvBytesPerToken, docFigure.c_str(), kvBytesAtContext / 1e9, static_cast<long long>(P));
  std::printf("decode: %lld steps of %zu session(s) at context %lld: median %.4f ms/token (%s; host %.4f ms); "
              "%.1f tokens/s\n",
              static_cast<long long>(options.decodeSteps), B, static_cast<long long>(P), decodeMs,
              deviceClock ? "CUDA events" : "host clock", hostDecodeMs, static_cast<double>(B) * 1e3 / decodeMs);
  std::printf("bytes per decode step: %llu (weights %llu, routed experts at k/E of %llu; cache %llu)\n",
              static_cast<unsigned long long>(traffic.total()), static_cast<unsigned long long>(traffic.weightBytes),
              static_cast<unsigned long long>(traffic.routedExpertBytes),
              static_cast<unsigned long long>(traffic.cacheBytes));
  std::printf("roofline: %.4f ms at %.2f TB/s; measured / roofline = %.2f\n", rooflineMs, options.bandwidth / 1e12,
              ratio);
  const nlohmann::json line = {
      {"bench", "v4run"},
      {"artifact", options.artifact},
      {"target", runner->program().target},
      {"backend", runner->describe()},
      {"prompt_len", P},
      {"context", P},
      {"prefill_complete", prefill.complete},
      {"kv_cache_bytes_per_token", kvBytesPerToken},
      {"kv_cache_bytes_per_token_v4_model_md", kvBytesPerTokenDoc < 0 ? nlohmann::json() : nlohmann::json(kvBytesPerTokenDoc)},
      {"kv_cache_bytes_at_context", kvBytesAtContext},
      {"decode_steps", options.decodeSteps},
      {"batch", options.batch},
      {"prefill_tokens_per_s", prefillTokensPerS},
      {"prefill_ms", prefillS * 1e3},
      {"decode_ms_per_token", decodeMs},
      {"decode_ms_per_step", decodeMs}, // one step yields `batch` tokens
      {"decode_clock", deviceClock ? "cuda_events" : "host"},
      {"decode_host_ms_per_token", hostDecodeMs},
      {"decode_tokens_per_s", static_cast<double>(B) * 1e3 / decodeMs},
      {"bytes_per_decode_step", traffic.total()},
      {"weight_bytes_per_decode_step", traffic.weightBytes},
      {"cache_bytes_per_decode_step", traffic.cacheBytes},
      {"roofline_bandwidth", options.bandwidth},
      {"roofline_ms", rooflineMs},
      {"roofline_ratio", ratio},
  };
  std::printf("%s\n", line.dump().c_str());
  return 0;
}

} // namespace v4run
