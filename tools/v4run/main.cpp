// v4run: runs v4c artifacts (no compiler in it).
//   v4run generate MODEL.v4a --prompt-ids 5,17,300 -n 16
//   v4run generate MODEL.v4a --prompt-ids ... --cache-dir DIR   (prefix reuse)
//   v4run generate MODEL.v4a --prompt-ids 5,17;300 --batch 8   (continuous batching)
//   v4run verify MODEL.v4a --golden GOLDEN.safetensors
//   v4run cache stats DIR | v4run cache verify DIR [--remove-bad] | v4run cache clear DIR
//   v4run bench MODEL.v4a --prompt-len 4096 --decode 64 --batch 1
//   v4run consistency MODEL.v4a --prompt-len 300
//   v4run profile MODEL.v4a --bucket decode --context 4096   (launch by launch vs the ceilings)
//   v4run compare GPU.v4a CPU.v4a --prompt-ids 5,17,300   (launch by launch)
//   v4run device --target sm_90a
//   v4run info MODEL.v4a   (target, buckets, kernels, modules, weights)
// GPU (sm_*) artifacts run on the CUDA backend (runtime/cuda).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/Error.h"
#include "runtime/PrefixCache.h"
#include "runtime/Sampler.h"
#include "runtime/api/v4rt.hpp"
#include "tools/CommandLine.h"
#include "tools/v4run/BenchCommand.h"
#include "tools/v4run/CacheCommand.h"
#include "tools/v4run/CompareCommand.h"
#include "tools/v4run/ConfigCommand.h"
#include "tools/v4run/ConsistencyCommand.h"
#include "tools/v4run/ContextLimit.h"
#include "tools/v4run/DeviceCommand.h"
#include "tools/v4run/DeviceGenerate.h"
#include "tools/v4run/InfoCommand.h"
#include "tools/v4run/ProfileCommand.h"
#include "tools/v4run/InterleaveCheck.h"
#include "tools/v4run/PrefixReuseCheck.h"
#include "tools/v4run/PromptIds.h"
#include "tools/v4run/GenerateBatch.h"
#include "tools/v4run/Runner.h"
#include "tools/v4run/Verify.h"

namespace {

struct GenerateOptions {
  std::string artifact, promptIds;
  int64_t count = 16;
  unsigned threads = 0;
  v4rt::SamplingOptions sampling;
  // Prefix reuse (off without a directory or a host budget).
  std::string cacheDir, tenant, swaCache = "full";
  uint64_t cacheDiskBytes = 0, cacheHostBytes = 0;
  uint64_t cacheDeviceBytes = 0, deviceKvBytes = 0; // GPU artifacts: device page tier, device KV pool
  int64_t maxContext = 0; // GPU artifacts: session context (0: the config's)
  int64_t batch = 1;      // sessions decoding together (0: one per ';'-separated prompt)
  // Cache options typed in (not defaults): they mean nothing without a tier.
  bool tenantGiven = false, swaCacheGiven = false, cacheDiskBytesGiven = false;
};

// Options that only shape a cache must come with one: one line saying which
// option needs which, rather than running uncached as if they were honoured.
void checkCacheOptions(const GenerateOptions &options) {
  if (options.cacheDiskBytesGiven) {
    v4c::check(options.cacheDiskBytes > 0,
               "--cache-disk-bytes must be > 0 (the disk tier's budget; leave it out for 16 GiB)");
    v4c::check(!options.cacheDir.empty(), "--cache-disk-bytes needs --cache-dir (it is the disk tier's budget)");
  }
  const bool anyTier = !options.cacheDir.empty() || options.cacheHostBytes > 0 || options.cacheDeviceBytes > 0;
  const char *tiers = "--cache-dir, --cache-host-bytes or (GPU artifacts) --cache-device-bytes";
  v4c::check(!options.tenantGiven || anyTier, std::string("--tenant needs a cache tier: ") + tiers);
  v4c::check(!options.swaCacheGiven || anyTier, std::string("--swa-cache needs a cache tier: ") + tiers);
}

int runGenerate(const GenerateOptions &options) {
  using Clock = std::chrono::steady_clock;
  // --batch N, or several prompts "5,17;300": sessions decoding together.
  const bool batched = options.batch != 1 || options.promptIds.find(';') != std::string::npos;
  const std::vector<std::vector<int32_t>> prompts =
      batched ? v4run::batchPrompts(options.promptIds, options.batch == 1 ? 0 : options.batch)
              : std::vector<std::vector<int32_t>>{v4run::parsePromptIds(options.promptIds)};
  const std::vector<int32_t> &prompt = prompts.front();
  v4c::check(options.count >= 0, "-n must be >= 0");
  v4c::check(std::isfinite(options.sampling.temperature),
             "--temperature must be a finite number >= 0 (0: greedy)");
  v4c::check(options.maxContext >= 0, "--max-context must be >= 0 (0: the model's)");
  v4rt::parseSwaCacheStrategy(options.swaCache); // a bad strategy says so first, cache or not
  checkCacheOptions(options);
  size_t longest = 0;
  for (const std::vector<int32_t> &p : prompts)
    longest = std::max(longest, p.size());
  // The last generated token is sampled, never fed.
  v4run::checkFitsContext(options.artifact,
                          {static_cast<int64_t>(longest), std::max<int64_t>(options.count - 1, 0)},
                          "the prompt + -n");
  if (v4run::isDeviceTarget(v4run::artifactTarget(options.artifact))) {
    if (batched) { // continuous batching on the GPU (runtime/cuda/CudaDecodeBatch.h)
      v4c::check(options.cacheDir.empty() && options.cacheHostBytes == 0 && options.cacheDeviceBytes == 0,
                 "--cache-dir / --cache-*-bytes with --batch: GPU prefix reuse runs one session for now");
      v4run::RunnerOptions runnerOptions;
      runnerOptions.maxContext = options.maxContext;
      runnerOptions.deviceKvBytes = options.deviceKvBytes;
      std::unique_ptr<v4run::Runner> runner = v4run::openRunner(options.artifact, runnerOptions);
      return v4run::runRunnerGenerateBatch(*runner, prompts, options.count, options.sampling);
    }
    v4run::DeviceGenerateOptions device;
    device.maxContext = options.maxContext;
    device.deviceKvBytes = options.deviceKvBytes;
    device.cache.directory = options.cacheDir;
    if (options.cacheDiskBytes > 0)
      device.cache.diskBytes = options.cacheDiskBytes;
    device.cache.hostBytes = options.cacheHostBytes;
    device.cache.tenantSalt = options.tenant;
    device.cache.strategy = v4rt::parseSwaCacheStrategy(options.swaCache);
    device.cacheDeviceBytes = options.cacheDeviceBytes;
    return v4run::runDeviceGenerate(options.artifact, prompt, options.count, options.sampling, device);
  }
  v4c::check(options.cacheDeviceBytes == 0 && options.deviceKvBytes == 0,
             "--cache-device-bytes / --device-kv-bytes: GPU artifacts only (a cpu artifact has no device memory)");
  v4rt::ModelHandle model(options.artifact, options.threads);
  const bool cached = !options.cacheDir.empty() || options.cacheHostBytes > 0;
  if (cached)
    model.attachCache(options.cacheDir, options.cacheDiskBytes, options.cacheHostBytes,
                      options.tenant, options.swaCache);
  if (batched)
    return v4run::runGenerateBatch(model, prompts, options.count, options.sampling,
                                   cached ? &options.swaCache : nullptr);
  v4rt::SessionHandle session(model);
  v4rt::Sampler sampler(options.sampling);
  const int64_t V = model.vocabSize();

  const auto t0 = Clock::now();
  int64_t reused = 0;
  std::vector<float> logits = session.prefillLast(prompt, &reused);
  const auto t1 = Clock::now();
  std::vector<int32_t> generated;
  const float *last = logits.data();
  for (int64_t i = 0; i < options.count; ++i) {
    const int32_t next = sampler.next(last, V);
    generated.push_back(next);
    if (i + 1 == options.count)
      break;
    logits = session.decode(next);
    last = logits.data();
  }
  const auto t2 = Clock::now();
  v4run::printGeneration(generated, prompt.size(), std::chrono::duration<double>(t1 - t0).count(),
                  std::chrono::duration<double>(t2 - t1).count());
  if (cached)
    v4run::printGenerateCacheSummary(model.cacheStats(), reused, options.swaCache);
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  CLI::App app{"v4run: run a v4c artifact (generate, verify, cache)"};
  app.require_subcommand(1);

  GenerateOptions gen;
  CLI::App *generate = app.add_subcommand("generate", "generate tokens from a prompt of token ids");
  generate->add_option("artifact", gen.artifact, "compiled model (.v4a)")->required();
  generate->add_option("--prompt-ids", gen.promptIds, "comma-separated token ids")->required();
  generate->add_option("-n,--max-tokens", gen.count, "tokens to generate");
  generate->add_option("--temperature", gen.sampling.temperature, "0 = greedy");
  generate->add_option("--top-p", gen.sampling.topP, "nucleus sampling mass");
  generate->add_option("--seed", gen.sampling.seed, "sampling seed")->check(v4tools::nonNegativeInteger());
  generate->add_option("--threads", gen.threads, "worker threads (0 = all cores)")
      ->check(v4tools::threadCount());
  generate->add_option("--cache-dir", gen.cacheDir, "KV page directory: reuse and store prefixes");
  generate->add_option("--cache-disk-bytes", gen.cacheDiskBytes, "with --cache-dir: disk tier budget, > 0 (default 16 GiB)")
      ->check(v4tools::nonNegativeInteger());
  generate->add_option("--cache-host-bytes", gen.cacheHostBytes, "host-memory tier budget (0 = none)")
      ->check(v4tools::nonNegativeInteger());
  generate->add_option("--cache-device-bytes", gen.cacheDeviceBytes,
                       "GPU artifacts: device-memory page tier budget (0 = none)")
      ->check(v4tools::nonNegativeInteger());
  generate->add_option("--device-kv-bytes", gen.deviceKvBytes,
                       "GPU artifacts: device memory for sessions' KV caches (0 = 90% of what is free)")
      ->check(v4tools::nonNegativeInteger());
  generate->add_option("--tenant", gen.tenant, "with a cache tier: pages are shared within a tenant only");
  generate->add_option("--swa-cache", gen.swaCache,
                       "window state in pages: full (every page), periodic:P (every P tokens, a "
                       "multiple of the page size; the tail is recomputed) or zero (recomputed)");
  generate->add_option("--max-context", gen.maxContext, "GPU artifacts: longest session (default: the model's)");
  generate->add_option("--batch", gen.batch,
                       "sessions decoding together (copies of the prompt, or of the ';'-separated prompts in turn)");

  v4run::VerifyOptions ver;
  CLI::App *verify = app.add_subcommand("verify", "compare with a conformance case's golden logits");
  verify->add_option("artifact", ver.artifact, "compiled model (.v4a)")->required();
  verify->add_option("--golden", ver.golden, "golden.safetensors of the case")->required();
  verify->add_option("--tolerance", ver.tolerance, "max relative error per position");
  verify->add_option("--threads", ver.threads, "worker threads (0 = all cores)")->check(v4tools::threadCount());
  verify->add_option("--max-context", ver.maxContext, "GPU artifacts: longest session (default: the model's)");
  verify->add_option("--token-margin", ver.tokenMargin,
                     "greedy tokens may differ where the reference's top-2 logits differ by <= this "
                     "(default: the tolerance on GPU artifacts, 0 on cpu)");
  verify->add_flag("--per-position", ver.perPosition, "also print every position's relative error per mode");

  v4run::BenchOptions benchOptions;
  CLI::App *bench = app.add_subcommand("bench", "prefill tokens/s, decode ms/token, bytes per step vs roofline");
  bench->add_option("artifact", benchOptions.artifact, "compiled model (.v4a)")->required();
  bench->add_option("--prompt-len,--context", benchOptions.promptLength,
                    "prompt tokens (synthetic ids): decode runs at this context");
  bench->add_option("--prefill-budget", benchOptions.prefillBudgetSeconds,
                    "seconds: stop a long prefill after this (0 = none); decode runs at the context reached");
  bench->add_option("--decode", benchOptions.decodeSteps, "timed decode steps");
  bench->add_option("--batch", benchOptions.batch, "sessions decoding together (the artifact's decode_B buckets)");
  bench->add_option("--warmup", benchOptions.warmupSteps, "decode steps before timing");
  bench->add_option("--bandwidth", benchOptions.bandwidth, "roofline bytes/s (default 3.0e12)");
  bench->add_option("--threads", benchOptions.threads, "worker threads (0 = all cores)")
      ->check(v4tools::threadCount());
  bench->add_option("--max-context", benchOptions.maxContext, "GPU artifacts: longest session");

  v4run::ProfileOptions prof;
  CLI::App *profile = app.add_subcommand("profile", "a bucket launch by launch: time, bytes, FLOPs vs the ceilings");
  profile->add_option("artifact", prof.artifact, "compiled model (.v4a)")->required();
  profile->add_option("--bucket", prof.bucket, "decode or prefill");
  profile->add_option("--context", prof.context, "tokens each session holds before the profiled run");
  profile->add_option("--batch", prof.batch, "decode: sessions (a batched decode bucket)");
  profile->add_option("--tokens", prof.tokens, "prefill: live rows (default: the bucket's)");
  profile->add_option("--repeat", prof.repeat, "timed runs (median)");
  profile->add_option("--warmup", prof.warmup, "runs before timing");
  profile->add_option("--fill", prof.fill, "compute (prefill the context) or tiled (GPU: compute --fill-chunk "
                                           "tokens, copy their compressed entries up to the context)");
  profile->add_option("--fill-chunk", prof.fillChunk, "tiled: tokens computed before tiling");
  profile->add_flag("!--no-graph", prof.graphs, "GPU: plain launches only (no CUDA graph)");
  profile->add_option("--prime", prof.prime,
                      "GPU: graph replays queued before each timed run (default, or < 0: auto)");
  profile->add_option("--bandwidth", prof.bandwidth, "bytes/s ceiling (default 3.0e12)");
  profile->add_option("--peak-tflops", prof.peakBf16, "bf16 FLOP/s ceiling (default 798e12; fp8 twice)");
  profile->add_option("--peak-f32", prof.peakF32, "f32 FLOP/s ceiling without tensor cores (default 67e12)");
  profile->add_option("--threads", prof.threads, "worker threads (cpu; 0 = all cores)")
      ->check(v4tools::threadCount());
  profile->add_option("--max-context", prof.maxContext, "GPU: session capacity (default: context + the bucket)");
  profile->add_flag("--quiet", prof.quiet, "only the per-op summary and the JSON line");
  profile->add_flag("--model-only", prof.modelOnly,
                    "bytes, FLOPs and ceilings from the artifact alone: nothing runs, no device needed");

  v4run::ConsistencyOptions consistencyOptions;
  CLI::App *consistency =
      app.add_subcommand("consistency", "one prefill vs chunked prefill vs token-by-token decode agree");
  consistency->add_option("artifact", consistencyOptions.artifact, "compiled model (.v4a)")->required();
  consistency->add_option("--prompt-len", consistencyOptions.promptLength, "prompt tokens (synthetic ids)");
  consistency->add_option("--tolerance", consistencyOptions.tolerance, "max relative error per position");
  consistency->add_option("--threads", consistencyOptions.threads, "worker threads (0 = all cores)")
      ->check(v4tools::threadCount());
  consistency->add_option("--max-context", consistencyOptions.maxContext, "GPU artifacts: longest session");
  v4run::InterleaveOptions interleave;
  consistency->add_option("--sessions", interleave.sessions,
                          "GPU artifacts: run this many sessions interleaved through a small device KV pool "
                          "(with --pool-sessions) and compare each with running it alone");
  consistency->add_option("--pool-sessions", interleave.poolSessions, "sessions the device KV pool holds");
  consistency->add_option("--decode", interleave.decodeSteps,
                          "with --sessions or --batch: greedy decode steps per session");
  v4run::PrefixReuseOptions prefixReuse;
  consistency->add_option("--swa-cache", prefixReuse.swaCache,
                          "GPU artifacts: a second session restores the first one's pages (full, periodic:P, "
                          "zero) and must give its logits");
  consistency->add_option("--cache-device-bytes", prefixReuse.deviceTierBytes,
                          "with --swa-cache: device page tier")
      ->check(v4tools::nonNegativeInteger());
  consistency->add_option("--cache-host-bytes", prefixReuse.hostTierBytes, "with --swa-cache: host page tier")
      ->check(v4tools::nonNegativeInteger());
  consistency->add_option("--batch", consistencyOptions.batch,
                          "check continuous batching: this many sessions (prompts of --prompt-len, one token "
                          "shorter each) decoded together vs each alone")
      ->check(v4tools::integerIn(2, v4run::kMaxBatchSessions));
  consistency->add_option("--batch-tolerance", consistencyOptions.batchTolerance,
                          "with --batch: max relative error of batched vs alone logits (default 1e-5)");

  v4run::CompareOptions compareOptions;
  CLI::App *compare = app.add_subcommand("compare", "a GPU artifact vs its CPU twin, launch by launch");
  compare->add_option("gpu_artifact", compareOptions.gpuArtifact, "GPU artifact (.v4a)")->required();
  compare->add_option("cpu_artifact", compareOptions.cpuArtifact, "the same model compiled for cpu")->required();
  compare->add_option("--prompt-ids", compareOptions.promptIds, "comma-separated token ids")->required();
  compare->add_option("--decode", compareOptions.decodeSteps, "greedy decode steps after the prompt");
  compare->add_option("--tolerance", compareOptions.tolerance, "max |gpu - cpu| / max |cpu| per step output");
  compare->add_option("--threads", compareOptions.threads, "CPU worker threads (0 = all cores)")
      ->check(v4tools::threadCount());
  compare->add_option("--max-context", compareOptions.maxContext, "GPU session context");
  compare->add_flag("--quiet", compareOptions.quiet, "print only the steps over tolerance");

  std::string deviceTarget = "sm_90a";
  CLI::App *device = app.add_subcommand("device", "can this machine run a target's artifacts? (exit 2: no)");
  device->add_option("--target", deviceTarget, "sm_90a, sm_80, ...");

  std::string configArtifact;
  CLI::App *config = app.add_subcommand("config", "print the model config (config.json) of an artifact");
  config->add_option("artifact", configArtifact, "compiled model (.v4a)")->required();

  std::string infoArtifact;
  CLI::App *info = app.add_subcommand("info", "target, buckets, kernels, modules, weight bytes of an artifact");
  info->add_option("artifact", infoArtifact, "compiled model (.v4a)")->required();
  bool infoChecksums = true;
  info->add_flag("!--no-checksums", infoChecksums, "read the manifest only: do not hash the weights");

  std::string cacheDir;
  CLI::App *cache = app.add_subcommand("cache", "inspect or empty a KV page directory");
  cache->require_subcommand(1);
  CLI::App *cacheStats = cache->add_subcommand("stats", "pages, bytes, orphans (no page is read: see verify)");
  cacheStats->add_option("directory", cacheDir, "cache directory")->required();
  bool removeBad = false;
  CLI::App *cacheVerify = cache->add_subcommand(
      "verify", "read every page: good / corrupt / foreign counts (exit 2: corrupt pages remain)");
  cacheVerify->add_option("directory", cacheDir, "cache directory")->required();
  cacheVerify->add_flag("--remove-bad", removeBad, "delete the corrupt pages (page files only)");
  CLI::App *cacheClear = cache->add_subcommand("clear", "delete every page in the directory");
  cacheClear->add_option("directory", cacheDir, "cache directory")->required();

  if (const int status = v4tools::parseCommandLine(app, argc, argv, "v4run"); status >= 0)
    return status;
  // -1 stands for "the default" here; a margin typed in must be a real one.
  if (verify->count("--token-margin") > 0 && !(ver.tokenMargin >= 0)) {
    std::fprintf(stderr, "v4run: error: --token-margin must be >= 0\n");
    return v4tools::kExitUsage;
  }
  try {
    if (*generate) {
      gen.tenantGiven = generate->count("--tenant") > 0;
      gen.swaCacheGiven = generate->count("--swa-cache") > 0;
      gen.cacheDiskBytesGiven = generate->count("--cache-disk-bytes") > 0;
      return runGenerate(gen);
    }
    if (*cacheStats)
      return v4run::runCacheStats(cacheDir);
    if (*cacheVerify)
      return v4run::runCacheVerify(cacheDir, removeBad);
    if (*cacheClear)
      return v4run::runCacheClear(cacheDir);
    if (*bench)
      return v4run::runBench(benchOptions);
    if (*profile)
      return v4run::runProfile(prof);
    if (*consistency && consistency->count("--sessions") > 0) {
      interleave.artifact = consistencyOptions.artifact;
      interleave.maxContext = consistencyOptions.maxContext;
      if (consistency->count("--prompt-len") > 0)
        interleave.promptLength = consistencyOptions.promptLength;
      return v4run::runInterleaveCheck(interleave);
    }
    if (*consistency && consistency->count("--swa-cache") > 0) {
      prefixReuse.artifact = consistencyOptions.artifact;
      prefixReuse.maxContext = consistencyOptions.maxContext;
      if (consistency->count("--prompt-len") > 0)
        prefixReuse.promptLength = consistencyOptions.promptLength;
      if (consistency->count("--decode") > 0)
        prefixReuse.decodeSteps = interleave.decodeSteps;
      return v4run::runPrefixReuseCheck(prefixReuse);
    }
    if (*consistency) {
      if (consistency->count("--decode") > 0)
        consistencyOptions.decodeSteps = interleave.decodeSteps;
      return v4run::runConsistency(consistencyOptions);
    }
    if (*compare)
      return v4run::runCompare(compareOptions);
    if (*device)
      return v4run::runDevice(deviceTarget);
    if (*config)
      return v4run::runConfig(configArtifact);
    if (*info)
      return v4run::runInfo(infoArtifact, infoChecksums);
    return v4run::runVerify(ver);
  } catch (const std::exception &e) {
    std::fprintf(stderr, "v4run: error: %s\n", e.what());
    return 1;
  }
}
