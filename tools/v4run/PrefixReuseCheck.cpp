#include "tools/v4run/PrefixReuseCheck.h"

#include <cstdio>
#include <vector>

#include "common/Error.h"
#include "tools/v4run/DeviceGenerate.h"
#include "tools/v4run/LogitRows.h"
#include "tools/v4run/Runner.h"

namespace v4run {
namespace {

struct Run {
  std::vector<float> logits; // the prompt's last row, then one row per decode step
  std::vector<int32_t> tokens;
  int64_t reused = 0;
};

Run runSession(Runner &runner, const std::vector<int32_t> &prompt, int64_t steps) {
  const int64_t V = runner.vocabSize();
  Run run;
  run.logits.resize(static_cast<size_t>((steps + 1) * V));
  std::unique_ptr<RunnerSession> session = runner.newSession();
  session->prefillLast(prompt.data(), static_cast<int64_t>(prompt.size()), run.logits.data());
  run.reused = session->lastPrefillReused();
  for (int64_t d = 0; d < steps; ++d) {
    const float *row = run.logits.data() + d * V;
    run.tokens.push_back(greedyToken(row, V));
    session->decode(run.tokens.back(), run.logits.data() + (d + 1) * V);
  }
  return run;
}

} // namespace

int runPrefixReuseCheck(const PrefixReuseOptions &options) {
  RunnerOptions runnerOptions;
  runnerOptions.maxContext = options.maxContext;
  runnerOptions.deviceKvBytes = options.deviceKvBytes;
  std::unique_ptr<Runner> runner = openRunner(options.artifact, runnerOptions);
  v4rt::PrefixCacheOptions cache;
  cache.strategy = v4rt::parseSwaCacheStrategy(options.swaCache);
  cache.hostBytes = options.hostTierBytes;
  if (options.deviceTierBytes == 0 && cache.hostBytes == 0)
    cache.hostBytes = 64ull << 20;
  runner->attachPrefixCache(cache, options.deviceTierBytes);
  const int64_t V = runner->vocabSize();
  const int64_t P = runner->prefixCache()->pageTokens();
  v4c::check(options.promptLength > P, "--prompt-len must exceed the page size (" + std::to_string(P) +
                                           " tokens) for a page to be reused");
  const std::vector<int32_t> prompt = syntheticIds(options.promptLength, V, 7);
  std::printf("prefix reuse: %s on %s, %lld tokens, pages of %lld, --swa-cache %s\n", options.artifact.c_str(),
              runner->describe().c_str(), static_cast<long long>(options.promptLength), static_cast<long long>(P),
              options.swaCache.c_str());

  const Run first = runSession(*runner, prompt, options.decodeSteps);
  const Run second = runSession(*runner, prompt, options.decodeSteps);
  const v4rt::PrefixCacheStats stats = runner->prefixCache()->stats();
  std::printf("prefix reuse: first session reused %lld tokens, second %lld (window rebuild %llu tokens); "
              "pages stored %llu, hit %llu\n",
              static_cast<long long>(first.reused), static_cast<long long>(second.reused),
              static_cast<unsigned long long>(stats.windowTokensRecomputed),
              static_cast<unsigned long long>(stats.pagesStored), static_cast<unsigned long long>(stats.pagesHit));
  for (const v4rt::kvcache::TierStats &tier : stats.tiers.tiers)
    std::printf("prefix reuse: tier %s: %llu pages, %llu bytes (%llu pinned), hits %llu, evictions %llu\n",
                tier.displayName().c_str(), static_cast<unsigned long long>(tier.pages),
                static_cast<unsigned long long>(tier.bytes), static_cast<unsigned long long>(tier.pinnedBytes),
                static_cast<unsigned long long>(tier.hits), static_cast<unsigned long long>(tier.evictions));
  std::printf("prefix reuse: promotions %llu, demotions %llu\n",
              static_cast<unsigned long long>(stats.tiers.promotions),
              static_cast<unsigned long long>(stats.tiers.demotions));
  const double error = maxRowRelativeError(second.logits, first.logits, V);
  const bool reused = first.reused == 0 && second.reused > 0;
  const bool same = first.tokens == second.tokens && error <= options.tolerance;
  std::printf("prefix reuse: restored vs computed: tokens %s, max rel %.3e %s\n",
              first.tokens == second.tokens ? "equal" : "DIFFER", error, same ? "ok" : "FAILED");
  if (!reused)
    std::printf("prefix reuse: the second session did not reuse a prefix: FAILED\n");
  const bool ok = reused && same;
  std::printf("prefix reuse: %s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}

} // namespace v4run
