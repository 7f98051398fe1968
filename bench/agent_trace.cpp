// v4bench-agent: replays a multi-turn agent trace with and without the KV
// prefix cache. Each turn appends --append deterministic pseudo-random ids to
// a growing context and runs it as a NEW session (a new request): prefill the
// whole context, decode --decode tokens (appended too, as an agent would).
// With several --swa-cache strategies, the cached replay runs once per
// strategy, each on an empty directory. Prints a table per mode, a summary of
// page bytes per tier and prefill tokens saved per strategy, and one JSON line.
// Every artifact runs through the C API (runtime/api/v4rt.hpp): cpu ones on
// the CPU backend (host -> disk tiers), GPU ones on the CUDA backend
// (device -> pinned host -> disk tiers).
//   v4bench-agent MODEL.v4a [--turns 20] [--append 2048] [--decode 4] [--cache-dir DIR]
//                 [--swa-cache full,periodic:1024,zero] [--cache-device-bytes B]
//                 [--cache-host-bytes B] [--cache-disk-bytes B] [--max-context N]
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <stdlib.h> // mkdtemp

#include "runtime/PrefixCache.h"
#include "runtime/api/v4rt.hpp"
#include "runtime/artifact/ArtifactReader.h"
#include "runtime/kvcache/DiskTier.h"
#include "tools/CommandLine.h"

namespace {

constexpr int kMaxTurns = 1000000;
constexpr int64_t kMaxTokens = int64_t{1} << 30;

struct Options {
  std::string artifact, cacheDir;
  std::vector<std::string> swaCaches{"full"};
  int turns = 20;
  int64_t append = 2048, decode = 4;
  unsigned threads = 0;
  uint32_t seed = 1;
  uint64_t deviceBytes = 0, hostBytes = 0, diskBytes = 0;
  int64_t maxContext = 0; // GPU: 0 = what the trace needs
  int64_t contextLimit = 0; // the model's max_position_embeddings (checkFitsContext)
  bool gpu = false;
};

struct TraceTier {
  std::string name; // "device", "host (pinned)", "host", "disk"
  uint64_t pages = 0, bytes = 0, pinnedBytes = 0, pinFailures = 0;
};

struct TraceCacheStats {
  std::vector<TraceTier> tiers; // top to bottom: the tiers the options enabled
  uint64_t windowTokensRecomputed = 0;
  const TraceTier *find(const std::string &name) const {
    for (const TraceTier &tier : tiers)
      if (tier.name == name)
        return &tier;
    return nullptr;
  }
};

struct Totals {
  int64_t computed = 0, saved = 0;
  double ms = 0;
  double cpuMs = 0; // CPU time of every thread: what a turn cost on a shared machine
  std::vector<int32_t> lastIds; // the final turn's generated ids
  TraceCacheStats cache;        // with a cache: its tiers at the end
};

std::unique_ptr<v4rt::ModelHandle> openModel(const Options &options) {
  v4rt_model_options open{};
  open.verify_checksums = 1;
  if (options.gpu) {
    const int64_t needed = std::min(options.turns * (options.append + options.decode) + 1, options.contextLimit);
    open.max_context = options.maxContext ? options.maxContext : needed;
    open.device_kv_sessions = 1; // one session at a time: the rest of the memory is the device tier's
  } else {
    open.threads = options.threads;
  }
  return std::make_unique<v4rt::ModelHandle>(options.artifact, open);
}

// The tiers `options` and `cacheDir` enabled, top to bottom.
TraceCacheStats cacheStats(const v4rt::ModelHandle &model, const Options &options, const std::string &cacheDir) {
  const v4rt_cache_stats stats = model.cacheStats();
  TraceCacheStats out;
  if (options.deviceBytes > 0)
    out.tiers.push_back({"device", stats.device_pages, stats.device_bytes, 0, 0});
  if (options.hostBytes > 0)
    out.tiers.push_back({stats.host_pinned ? "host (pinned)" : "host", stats.host_pages, stats.host_bytes,
                         stats.host_pinned_bytes, stats.host_pin_failures});
  if (!cacheDir.empty())
    out.tiers.push_back({"disk", stats.disk_pages, stats.disk_bytes, 0, 0});
  out.windowTokensRecomputed = stats.window_tokens_recomputed;
  return out;
}

// "device 4 pages 8640 bytes, host (pinned) 2 pages 4320 bytes (4320 pinned), disk ..."
std::string describeTiers(const TraceCacheStats &stats) {
  std::string text;
  for (const TraceTier &tier : stats.tiers) {
    text += (text.empty() ? "" : ", ") + tier.name + " " + std::to_string(tier.pages) + " pages " +
            std::to_string(tier.bytes) + " bytes";
    if (tier.name.find("pinned") != std::string::npos)
      text += " (" + std::to_string(tier.pinnedBytes) + " pinned)";
    if (tier.pinFailures)
      text += " [" + std::to_string(tier.pinFailures) + " pages left pageable: pinning failed]";
  }
  return text;
}

std::string tiersJson(const TraceCacheStats &stats) {
  std::string json;
  for (const TraceTier &tier : stats.tiers) {
    char entry[256];
    std::snprintf(entry, sizeof(entry),
                  "%s{\"name\": \"%s\", \"pages\": %llu, \"bytes\": %llu, \"pinned_bytes\": %llu, "
                  "\"pin_failures\": %llu}",
                  json.empty() ? "" : ", ", tier.name.c_str(), static_cast<unsigned long long>(tier.pages),
                  static_cast<unsigned long long>(tier.bytes), static_cast<unsigned long long>(tier.pinnedBytes),
                  static_cast<unsigned long long>(tier.pinFailures));
    json += entry;
  }
  return "[" + json + "]";
}

// Without a strategy: no cache. With one: the tiers the options ask for,
// the disk tier in `cacheDir`.
Totals replay(const Options &options, const std::string *swaCache, const std::string &cacheDir) {
  std::unique_ptr<v4rt::ModelHandle> model = openModel(options);
  const bool withCache = swaCache != nullptr;
  if (withCache)
    model->attachCache(cacheDir, options.diskBytes, options.hostBytes, "", *swaCache, options.deviceBytes);
  const int64_t V = model->vocabSize();
  std::mt19937 generator(options.seed);
  std::uniform_int_distribution<int32_t> pick(2, static_cast<int32_t>(V - 1));
  std::vector<int32_t> context;
  Totals totals;
  std::printf("\n%s%s\n%5s %9s %16s %12s %10s %10s\n", withCache ? "with KV cache, --swa-cache " : "no cache",
              withCache ? swaCache->c_str() : "", "turn", "context", "prefill computed", "tokens saved", "ms",
              "cpu ms");
  for (int turn = 1; turn <= options.turns; ++turn) {
    for (int64_t i = 0; i < options.append; ++i)
      context.push_back(pick(generator));
    const auto start = std::chrono::steady_clock::now();
    const std::clock_t cpuStart = std::clock();
    auto session = std::make_unique<v4rt::SessionHandle>(*model);
    int64_t reused = 0;
    std::vector<float> logits = session->prefillLast(context, &reused);
    std::vector<int32_t> generated;
    for (int64_t i = 0; i < options.decode; ++i) {
      const int32_t next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) -
                                                logits.begin());
      generated.push_back(next);
      logits = session->decode(next);
    }
    session.reset(); // the next turn is a new request
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    const double cpuMs = 1000.0 * static_cast<double>(std::clock() - cpuStart) / CLOCKS_PER_SEC;
    const int64_t computed = static_cast<int64_t>(context.size()) - reused;
    std::printf("%5d %9zu %16lld %12lld %10.1f %10.1f\n", turn, context.size(),
                static_cast<long long>(computed), static_cast<long long>(reused), ms, cpuMs);
    totals.computed += computed;
    totals.saved += reused;
    totals.ms += ms;
    totals.cpuMs += cpuMs;
    totals.lastIds = generated;
    context.insert(context.end(), generated.begin(), generated.end());
  }
  if (withCache) {
    totals.cache = cacheStats(*model, options, cacheDir);
    std::printf("tiers: %s\n", describeTiers(totals.cache).c_str());
  }
  return totals;
}

// A fresh empty directory of this run's own under the system's temp dir.
std::string makeTemporaryDirectory() {
  std::string pattern = (std::filesystem::temp_directory_path() / "v4bench-agent-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr)
    throw std::runtime_error("cannot create a temporary cache directory " + pattern);
  return pattern;
}

// Starts a replay cold without losing anything a user keeps in `directory`:
// only KV page files (and dead writers' temporaries) go, as with
// `v4run cache clear`.
void clearPages(const std::string &directory) {
  if (!std::filesystem::is_directory(directory))
    return;
  v4rt::kvcache::DiskTier tier(directory, "", std::numeric_limits<uint64_t>::max());
  const uint64_t removed = tier.clear();
  if (removed > 0)
    std::printf("cleared %llu KV pages from %s (the replay starts cold)\n",
                static_cast<unsigned long long>(removed), directory.c_str());
}

// The trace's last turn holds turns x (append + decode) positions; past the
// model's max_position_embeddings it would run on (for hours) outside what
// the model was built for, so it fails now.
void checkFitsContext(Options &options) {
  v4rt::OpenOptions open;
  open.verifyChecksums = false;
  const std::string text = v4rt::Artifact::open(options.artifact, open)->program().configJson;
  const nlohmann::json config = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  const nlohmann::json *limit = config.is_object() && config.contains("max_position_embeddings")
                                    ? &config["max_position_embeddings"]
                                    : nullptr;
  if (!limit || !limit->is_number_integer() || limit->get<int64_t>() <= 0)
    throw std::runtime_error(options.artifact + ": the model config has no positive max_position_embeddings");
  options.contextLimit = limit->get<int64_t>();
  // turns <= kMaxTurns and append, decode <= kMaxTokens: no overflow.
  const int64_t positions = static_cast<int64_t>(options.turns) * (options.append + options.decode);
  if (positions > limit->get<int64_t>())
    throw std::runtime_error("the trace needs " + std::to_string(positions) + " positions (--turns " +
                             std::to_string(options.turns) + " x (--append " + std::to_string(options.append) +
                             " + --decode " + std::to_string(options.decode) + ")), more than the " +
                             std::to_string(limit->get<int64_t>()) + "-token context of " + options.artifact +
                             "'s model (max_position_embeddings)");
}

// A bad strategy fails now rather than after the uncached replay: the
// prefix cache's own checks against the artifact's page size, no weights read.
void checkStrategies(const Options &options) {
  v4rt::OpenOptions open;
  open.verifyChecksums = false;
  const auto artifact = v4rt::Artifact::open(options.artifact, open);
  for (const std::string &strategy : options.swaCaches) {
    v4rt::PrefixCacheOptions probe;
    probe.hostBytes = 1;
    probe.strategy = v4rt::parseSwaCacheStrategy(strategy);
    v4rt::PrefixCache(artifact->identity(), artifact->program().caches, probe);
  }
}

} // namespace

int main(int argc, char **argv) {
  CLI::App app{"v4bench-agent: multi-turn agent trace with and without the KV prefix cache"};
  Options options;
  app.add_option("artifact", options.artifact, "compiled model (.v4a): cpu, or sm_* on the CUDA backend")
      ->required();
  app.add_option("--turns", options.turns, "turns (new sessions)")->check(v4tools::integerIn(1, kMaxTurns));
  app.add_option("--append", options.append, "tokens appended per turn")
      ->check(v4tools::integerIn(1, kMaxTokens));
  app.add_option("--decode", options.decode, "tokens decoded per turn")
      ->check(v4tools::integerIn(0, kMaxTokens));
  app.add_option("--cache-dir", options.cacheDir,
                 "disk tier directory (default: a fresh temp dir); its KV pages are cleared first, "
                 "nothing else in it is touched");
  app.add_option("--swa-cache", options.swaCaches,
                 "window strategies to compare, comma-separated: full, periodic:P, zero")
      ->delimiter(',');
  app.add_option("--cache-device-bytes", options.deviceBytes, "GPU artifacts: device page tier budget (0: none)")
      ->check(v4tools::nonNegativeInteger());
  app.add_option("--cache-host-bytes", options.hostBytes,
                 "host page tier budget (0: none; pinned memory on GPU artifacts)")
      ->check(v4tools::nonNegativeInteger());
  app.add_option("--cache-disk-bytes", options.diskBytes, "disk tier budget (0: 16 GiB)")
      ->check(v4tools::nonNegativeInteger());
  app.add_option("--max-context", options.maxContext,
                 "GPU artifacts: longest session (0: turns x (append + decode) + 1)");
  app.add_option("--threads", options.threads, "cpu artifacts: worker threads (0 = all cores)")
      ->check(v4tools::threadCount());
  app.add_option("--seed", options.seed, "trace seed")->check(v4tools::nonNegativeInteger());
  if (const int status = v4tools::parseCommandLine(app, argc, argv, "v4bench-agent"); status >= 0)
    return status;
  namespace fs = std::filesystem;
  const bool ownDir = options.cacheDir.empty();
  // This run's own temporary directory goes on every way out (only its pages are in it).
  struct RemoveOwnDirectory {
    const std::string *path = nullptr;
    ~RemoveOwnDirectory() {
      std::error_code ignored;
      if (path)
        fs::remove_all(*path, ignored);
    }
  } removeOwnDirectory;
  try {
    if (ownDir) {
      options.cacheDir = makeTemporaryDirectory();
      removeOwnDirectory.path = &options.cacheDir;
    }
    if (options.swaCaches.empty())
      throw std::runtime_error("--swa-cache: give at least one strategy (full, periodic:P, zero)");
    const std::string target = v4rt::readArtifactTarget(options.artifact);
    options.gpu = target != "cpu";
    std::printf("v4bench-agent: %s (target %s, %s backend)\n", options.artifact.c_str(), target.c_str(),
                options.gpu ? "CUDA" : "cpu");
    checkFitsContext(options);
    checkStrategies(options);
    const Totals cold = replay(options, nullptr, "");
    std::vector<Totals> cached;
    for (size_t i = 0; i < options.swaCaches.size(); ++i) {
      // One subdirectory per strategy: each replay starts from an empty cache.
      const std::string dir = options.swaCaches.size() == 1
                                  ? options.cacheDir
                                  : (fs::path(options.cacheDir) / std::to_string(i)).string();
      clearPages(dir); // every replay starts cold
      cached.push_back(replay(options, &options.swaCaches[i], dir));
    }

    std::printf("\n%-16s %6s %14s %10s %16s %12s %12s %10s %10s %8s\n", "swa-cache", "pages",
                "disk bytes", "bytes/page", "prefill computed", "tokens saved", "recomputed", "ms",
                "cpu ms", "same ids");
    std::printf("%-16s %6s %14s %10s %16lld %12s %12s %10.1f %10.1f %8s\n", "(no cache)", "-", "-", "-",
                static_cast<long long>(cold.computed), "-", "-", cold.ms, cold.cpuMs, "-");
    bool allSame = true;
    std::string strategiesJson;
    for (size_t i = 0; i < cached.size(); ++i) {
      const Totals &t = cached[i];
      const bool same = t.lastIds == cold.lastIds;
      allSame = allSame && same;
      const TraceTier *disk = t.cache.find("disk");
      const unsigned long long pages = disk ? disk->pages : 0, bytes = disk ? disk->bytes : 0;
      std::printf("%-16s %6llu %14llu %10llu %16lld %12lld %12llu %10.1f %10.1f %8s\n",
                  options.swaCaches[i].c_str(), pages, bytes, pages ? bytes / pages : 0,
                  static_cast<long long>(t.computed), static_cast<long long>(t.saved),
                  static_cast<unsigned long long>(t.cache.windowTokensRecomputed), t.ms, t.cpuMs,
                  same ? "yes" : "NO");
      char entry[512];
      std::snprintf(entry, sizeof(entry),
                    "%s{\"swa_cache\": \"%s\", \"disk_pages\": %llu, \"disk_bytes\": %llu, "
                    "\"prefill_computed\": %lld, \"tokens_saved\": %lld, \"window_recomputed\": "
                    "%llu, \"ms\": %.1f, \"cpu_ms\": %.1f, \"speedup\": %.2f, \"cpu_speedup\": %.2f, "
                    "\"same_final_ids\": %s, \"tiers\": ",
                    i ? ", " : "", options.swaCaches[i].c_str(), pages, bytes,
                    static_cast<long long>(t.computed), static_cast<long long>(t.saved),
                    static_cast<unsigned long long>(t.cache.windowTokensRecomputed), t.ms, t.cpuMs,
                    cold.ms / std::max(t.ms, 1e-9), cold.cpuMs / std::max(t.cpuMs, 1e-9),
                    same ? "true" : "false");
      strategiesJson += entry + tiersJson(t.cache) + "}";
    }
    for (size_t i = 0; i < cached.size(); ++i)
      std::printf("%-16s tiers: %s\n", options.swaCaches[i].c_str(), describeTiers(cached[i].cache).c_str());
    // "disk_cache"/"speedup": the first strategy, as before strategies were compared.
    const Totals &first = cached.front();
    std::printf("\n{\"target\": \"%s\", \"turns\": %d, \"append\": %lld, \"decode\": %lld, "
                "\"no_cache\": {\"prefill_computed\": %lld, \"ms\": %.1f, \"cpu_ms\": %.1f}, "
                "\"disk_cache\": {\"prefill_computed\": %lld, \"tokens_saved\": %lld, "
                "\"ms\": %.1f, \"cpu_ms\": %.1f}, "
                "\"speedup\": %.2f, \"same_final_ids\": %s, \"strategies\": [%s]}\n",
                target.c_str(), options.turns, static_cast<long long>(options.append),
                static_cast<long long>(options.decode), static_cast<long long>(cold.computed),
                cold.ms, cold.cpuMs, static_cast<long long>(first.computed),
                static_cast<long long>(first.saved), first.ms, first.cpuMs, cold.ms / std::max(first.ms, 1e-9),
                allSame ? "true" : "false", strategiesJson.c_str());
    return allSame ? 0 : 1;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "v4bench-agent: error: %s\n", e.what());
    return 1;
  }
}
