// v4bench-agent: replays a multi-turn agent trace with and without the disk
// KV cache. Each turn appends --append deterministic pseudo-random ids to a
// growing context and runs it as a NEW session (a new request): prefill the
// whole context, decode --decode tokens (appended too, as an agent would).
// With several --swa-cache strategies, the cached replay runs once per
// strategy, each on an empty directory. Prints a table per mode, a summary of
// page bytes on disk and prefill tokens saved per strategy, and one JSON line.
//   v4bench-agent MODEL.v4a [--turns 20] [--append 2048] [--decode 4] [--cache-dir DIR]
//                 [--swa-cache full,periodic:1024,zero]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <unistd.h>

#include "runtime/api/v4rt.hpp"

namespace {

struct Options {
  std::string artifact, cacheDir;
  std::vector<std::string> swaCaches{"full"};
  int turns = 20;
  int64_t append = 2048, decode = 4;
  unsigned threads = 0;
  uint32_t seed = 1;
};

struct Totals {
  int64_t computed = 0, saved = 0;
  double ms = 0;
  std::vector<int32_t> lastIds; // the final turn's generated ids
  v4rt_cache_stats cache{};     // with a cache: its counters at the end
};

// Without a strategy: no cache. With one: a disk cache in `cacheDir`.
Totals replay(const Options &options, const std::string *swaCache, const std::string &cacheDir) {
  v4rt::ModelHandle model(options.artifact, options.threads);
  const bool withCache = swaCache != nullptr;
  if (withCache)
    model.attachCache(cacheDir, 0, 0, "", *swaCache);
  const int64_t V = model.vocabSize();
  std::mt19937 generator(options.seed);
  std::uniform_int_distribution<int32_t> pick(2, static_cast<int32_t>(V - 1));
  std::vector<int32_t> context;
  Totals totals;
  std::printf("\n%s%s\n%5s %9s %16s %12s %10s\n",
              withCache ? "with disk cache, --swa-cache " : "no cache",
              withCache ? swaCache->c_str() : "", "turn", "context", "prefill computed",
              "tokens saved", "ms");
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
  if (withCache)
    totals.cache = model.cacheStats();
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
  app.add_option("--swa-cache", options.swaCaches,
                 "window strategies to compare, comma-separated: full, periodic:P, zero")
      ->delimiter(',');
  app.add_option("--threads", options.threads, "worker threads (0 = all cores)");
  app.add_option("--seed", options.seed, "trace seed");
  CLI11_PARSE(app, argc, argv);
  namespace fs = std::filesystem;
  const bool ownDir = options.cacheDir.empty();
  try {
    if (ownDir)
      options.cacheDir =
          (fs::temp_directory_path() / ("v4bench-agent-" + std::to_string(::getpid()))).string();
    if (options.swaCaches.empty())
      throw std::runtime_error("--swa-cache: give at least one strategy (full, periodic:P, zero)");
    {
      // A bad strategy fails now rather than after the uncached replay (a
      // host-only cache checks it against the model's page size).
      v4rt::ModelHandle probe(options.artifact, 1, /*verifyChecksums=*/false);
      for (const std::string &strategy : options.swaCaches)
        probe.attachCache("", 0, 1, "", strategy);
    }
    fs::remove_all(options.cacheDir); // every run starts cold
    const Totals cold = replay(options, nullptr, "");
    std::vector<Totals> cached;
    for (size_t i = 0; i < options.swaCaches.size(); ++i) {
      // One subdirectory per strategy: each replay starts from an empty cache.
      const std::string dir = options.swaCaches.size() == 1
                                  ? options.cacheDir
                                  : (fs::path(options.cacheDir) / std::to_string(i)).string();
      cached.push_back(replay(options, &options.swaCaches[i], dir));
    }
    if (ownDir)
      fs::remove_all(options.cacheDir);

    std::printf("\n%-16s %6s %14s %10s %16s %12s %12s %10s %8s\n", "swa-cache", "pages",
                "disk bytes", "bytes/page", "prefill computed", "tokens saved", "recomputed", "ms",
                "same ids");
    std::printf("%-16s %6s %14s %10s %16lld %12s %12s %10.1f %8s\n", "(no cache)", "-", "-", "-",
                static_cast<long long>(cold.computed), "-", "-", cold.ms, "-");
    bool allSame = true;
    std::string strategiesJson;
    for (size_t i = 0; i < cached.size(); ++i) {
      const Totals &t = cached[i];
      const bool same = t.lastIds == cold.lastIds;
      allSame = allSame && same;
      const unsigned long long pages = t.cache.disk_pages, bytes = t.cache.disk_bytes;
      std::printf("%-16s %6llu %14llu %10llu %16lld %12lld %12llu %10.1f %8s\n",
                  options.swaCaches[i].c_str(), pages, bytes, pages ? bytes / pages : 0,
                  static_cast<long long>(t.computed), static_cast<long long>(t.saved),
                  static_cast<unsigned long long>(t.cache.window_tokens_recomputed), t.ms,
                  same ? "yes" : "NO");
      char entry[512];
      std::snprintf(entry, sizeof(entry),
                    "%s{\"swa_cache\": \"%s\", \"disk_pages\": %llu, \"disk_bytes\": %llu, "
                    "\"prefill_computed\": %lld, \"tokens_saved\": %lld, \"window_recomputed\": "
                    "%llu, \"ms\": %.1f, \"speedup\": %.2f, \"same_final_ids\": %s}",
                    i ? ", " : "", options.swaCaches[i].c_str(), pages, bytes,
                    static_cast<long long>(t.computed), static_cast<long long>(t.saved),
                    static_cast<unsigned long long>(t.cache.window_tokens_recomputed), t.ms,
                    cold.ms / std::max(t.ms, 1e-9), same ? "true" : "false");
      strategiesJson += entry;
    }
    // "disk_cache"/"speedup": the first strategy, as before strategies were compared.
    const Totals &first = cached.front();
    std::printf("\n{\"turns\": %d, \"append\": %lld, \"decode\": %lld, "
                "\"no_cache\": {\"prefill_computed\": %lld, \"ms\": %.1f}, "
                "\"disk_cache\": {\"prefill_computed\": %lld, \"tokens_saved\": %lld, "
                "\"ms\": %.1f}, "
                "\"speedup\": %.2f, \"same_final_ids\": %s, \"strategies\": [%s]}\n",
                options.turns, static_cast<long long>(options.append),
                static_cast<long long>(options.decode), static_cast<long long>(cold.computed),
                cold.ms, static_cast<long long>(first.computed),
                static_cast<long long>(first.saved), first.ms, cold.ms / std::max(first.ms, 1e-9),
                allSame ? "true" : "false", strategiesJson.c_str());
    return allSame ? 0 : 1;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "v4bench-agent: error: %s\n", e.what());
    return 1;
  }
}
