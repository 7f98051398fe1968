#include "tools/v4run/DeviceGenerate.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "common/Error.h"
#include "runtime/api/CacheStats.h"
#include "tools/v4run/CacheCommand.h"
#include "tools/v4run/PromptIds.h"
#include "tools/v4run/Runner.h"

namespace v4run {
namespace {

// The lines the CPU path prints (printGenerateCacheSummary: store failures
// included), then every tier with its pinned bytes.
void printCacheReport(const Runner &runner, int64_t reused, const std::string &swaCache) {
  const v4rt::PrefixCacheStats stats = runner.prefixCache()->stats();
  std::string tiers;
  for (const v4rt::kvcache::TierStats &tier : stats.tiers.tiers) {
    tiers += (tiers.empty() ? "" : ", ") + tier.displayName() + " " + std::to_string(tier.pages) + " pages " +
             std::to_string(tier.bytes) + " bytes";
    if (tier.pinned)
      tiers += " (" + std::to_string(tier.pinnedBytes) + " pinned)";
    if (tier.pinFailures > 0)
      std::fprintf(stderr, "v4run: warning: %llu %s-tier pages stayed in pageable memory (cuMemAllocHost failed)\n",
                   static_cast<unsigned long long>(tier.pinFailures), tier.name.c_str());
  }
  printGenerateCacheSummary(v4rt::toApiCacheStats(stats), reused, swaCache);
  std::printf("kv tiers: %s; promotions %llu, demotions %llu\n", tiers.c_str(),
              static_cast<unsigned long long>(stats.tiers.promotions),
              static_cast<unsigned long long>(stats.tiers.demotions));
  const std::string lastWarning = runner.prefixCache()->lastWarning();
  if ((stats.ioFailures > 0 || stats.storeFailures > 0) && !lastWarning.empty())
    std::fprintf(stderr, "v4run: warning: last KV cache failure: %s\n", lastWarning.c_str());
}

} // namespace

void printKvPool(const Runner &runner) {
  RunnerKvPoolStats pool;
  if (!runner.kvPoolStats(pool))
    return;
  std::printf("kv pool: budget %llu bytes, session %llu bytes, in use %llu, resident sessions %llu, preemptions "
              "%llu, swap-ins %llu, bytes moved %llu\n",
              static_cast<unsigned long long>(pool.byteBudget), static_cast<unsigned long long>(pool.sessionBytes),
              static_cast<unsigned long long>(pool.bytesInUse), static_cast<unsigned long long>(pool.residentSessions),
              static_cast<unsigned long long>(pool.preemptions), static_cast<unsigned long long>(pool.swapIns),
              static_cast<unsigned long long>(pool.bytesMoved));
}

int runDeviceGenerate(const std::string &artifact, const std::vector<int32_t> &prompt, int64_t count,
                      const v4rt::SamplingOptions &sampling, const DeviceGenerateOptions &options) {
  using Clock = std::chrono::steady_clock;
  v4c::check(count >= 0, "-n must be >= 0");
  RunnerOptions runnerOptions;
  runnerOptions.maxContext = options.maxContext;
  runnerOptions.deviceKvBytes = options.deviceKvBytes;
  std::unique_ptr<Runner> runner = openRunner(artifact, runnerOptions);
  if (options.cached())
    runner->attachPrefixCache(options.cache, options.cacheDeviceBytes);
  std::unique_ptr<RunnerSession> session = runner->newSession();
  v4rt::Sampler sampler(sampling);
  const int64_t V = runner->vocabSize();
  std::vector<float> logits(static_cast<size_t>(V));

  const auto t0 = Clock::now();
  session->prefillLast(prompt.data(), static_cast<int64_t>(prompt.size()), logits.data());
  const auto t1 = Clock::now();
  std::vector<int32_t> generated;
  for (int64_t i = 0; i < count; ++i) {
    const int32_t next = sampler.next(logits.data(), V);
    generated.push_back(next);
    if (i + 1 == count)
      break;
    session->decode(next, logits.data());
  }
  const auto t2 = Clock::now();
  printGeneration(generated, prompt.size(), std::chrono::duration<double>(t1 - t0).count(),
                  std::chrono::duration<double>(t2 - t1).count());
  if (options.cached())
    printCacheReport(*runner, session->lastPrefillReused(), options.cache.strategy.name());
  if (options.cached() || options.deviceKvBytes > 0)
    printKvPool(*runner);
  return 0;
}

} // namespace v4run
