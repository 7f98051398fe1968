// v4bench-agent: replays a multi-turn agent trace with and without the disk
// KV cache. Each turn appends --append deterministic pseudo-random ids to a
// growing context and runs it as a NEW session (a new request): prefill the
// whole context, decode --decode tokens (appended too, as an agent would).
// Prints a table per mode and one JSON line with the totals.
//   v4bench-agent MODEL.v4a [--turns 20] [--append 2048] [--decode 4] [--cache-dir DIR]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <unistd.h>

#include "runtime/api/v4rt.hpp"

namespace {

struct Options {
  std::string artifact, cacheDir;
  int turns = 20;
  int64_t append = 2048, decode = 4;
  unsigned threads = 0;
  uint32_t seed = 1;
};

struct Totals {
  int64_t computed = 0, saved = 0;
  double ms = 0;
  std::vector<int32_t> lastIds; // the final turn's generated ids
};

Totals replay(const Options &options, bool withCache) {
  v4rt::ModelHandle model(options.artifact, options.threads);
  if (withCache)
    model.attachCache(options.cacheDir);
  const int64_t V = model.vocabSize();
  std::mt19937 generator(options.seed);
  std::uniform_int_distribution<int32_t> pick(2, static_cast<int32_t>(V - 1));
  std::vector<int32_t> context;
  Totals totals;
  std::printf("\n%s\n%5s %9s %16s %12s %10s\n", withCache ? "with disk cache" : "no cache", "turn",
              "context", "prefill computed", "tokens saved", "ms");
  for (int turn = 1; turn <= options.turns; ++turn) {
    for (int64_t i = 0; i < options.append; ++i)
      context.push_back(pick(generator));
    const auto start = std::chrono::steady_clock::now();
    v4rt::SessionHandle session(model);
    int64_t reused = 0;
    std::vector<float> logits = session.prefillLast(context, &reused);
    std::vector<int32_t> generated;
    for (int64_t i = 0; i < options.decode; ++i) {
      const int32_t next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) -
                                                logits.begin());
      generated.push_back(next);
      logits = session.decode(next);
    }
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    const int64_t computed = static_cast<int64_t>(context.size()) - reused;
    std::printf("%5d %9zu %16lld %12lld %10.1f\n", turn, context.size(),
                static_cast<long long>(computed), static_cast<long long>(reused), ms);
    totals.computed += computed;
    totals.saved += reused;
    totals.ms += ms;
    totals.lastIds = generated;
    context.insert(context.end(), generated.begin(), generated.end());
  }
  return totals;
}

} // namespace

int main(int argc, char **argv) {
  CLI::App app{"v4bench-agent: multi-turn agent trace with and without the disk KV cache"};
  Options options;
  app.add_option("artifact", options.artifact, "compiled model (.v4a)")->required();
  app.add_option("--turns", options.turns, "turns (new sessions)")->check(CLI::PositiveNumber);
  app.add_option("--append", options.append, "tokens appended per turn")->check(CLI::PositiveNumber);
  app.add_option("--decode", options.decode, "tokens decoded per turn")->check(CLI::NonNegativeNumber);
  app.add_option("--cache-dir", options.cacheDir, "disk tier directory (default: a fresh temp dir)");
  app.add_option("--threads", options.threads, "worker threads (0 = all cores)");
  app.add_option("--seed", options.seed, "trace seed");
  CLI11_PARSE(app, argc, argv);
  namespace fs = std::filesystem;
  const bool ownDir = options.cacheDir.empty();
  try {
    if (ownDir)
      options.cacheDir =
          (fs::temp_directory_path() / ("v4bench-agent-" + std::to_string(::getpid()))).string();
    fs::remove_all(options.cacheDir); // every run starts cold
    const Totals cold = replay(options, false);
    const Totals cached = replay(options, true);
    if (ownDir)
      fs::remove_all(options.cacheDir);
    std::printf("\n{\"turns\": %d, \"append\": %lld, \"decode\": %lld, "
                "\"no_cache\": {\"prefill_computed\": %lld, \"ms\": %.1f}, "
                "\"disk_cache\": {\"prefill_computed\": %lld, \"tokens_saved\": %lld, \"ms\": %.1f}, "
                "\"speedup\": %.2f, \"same_final_ids\": %s}\n",
                options.turns, static_cast<long long>(options.append),
                static_cast<long long>(options.decode), static_cast<long long>(cold.computed),
                cold.ms, static_cast<long long>(cached.computed),
                static_cast<long long>(cached.saved), cached.ms, cold.ms / std::max(cached.ms, 1e-9),
                cold.lastIds == cached.lastIds ? "true" : "false");
    return cold.lastIds == cached.lastIds ? 0 : 1;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "v4bench-agent: error: %s\n", e.what());
    return 1;
  }
}
