// v4run: runs v4c artifacts (no compiler in it).
//   v4run generate MODEL.v4a --prompt-ids 5,17,300 -n 16
//   v4run generate MODEL.v4a --prompt-ids ... --cache-dir DIR   (prefix reuse)
//   v4run verify MODEL.v4a --golden GOLDEN.safetensors
//   v4run cache stats DIR | v4run cache clear DIR
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/Error.h"
#include "runtime/PrefixCache.h"
#include "runtime/Sampler.h"
#include "runtime/api/v4rt.hpp"
#include "tools/v4run/CacheCommand.h"
#include "tools/v4run/Verify.h"

namespace {

std::vector<int32_t> parseIds(const std::string &text) {
  std::vector<int32_t> ids;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    size_t used = 0;
    long long value = 0;
    try {
      value = std::stoll(item, &used);
    } catch (const std::exception &) {
      used = 0;
    }
    if (used == 0 || used != item.size() || value < 0 || value > INT32_MAX)
      throw v4c::Error("--prompt-ids: '" + item + "' is not a token id (want e.g. 5,17,300)");
    ids.push_back(static_cast<int32_t>(value));
  }
  v4c::check(!ids.empty(), "--prompt-ids: give at least one token id");
  return ids;
}

struct GenerateOptions {
  std::string artifact, promptIds;
  int64_t count = 16;
  unsigned threads = 0;
  v4rt::SamplingOptions sampling;
  // Prefix reuse (off without a directory or a host budget).
  std::string cacheDir, tenant, swaCache = "full";
  uint64_t cacheDiskBytes = 0, cacheHostBytes = 0;
};

int runGenerate(const GenerateOptions &options) {
  using Clock = std::chrono::steady_clock;
  const std::vector<int32_t> prompt = parseIds(options.promptIds);
  v4c::check(options.count >= 0, "-n must be >= 0");
  v4rt::ModelHandle model(options.artifact, options.threads);
  const bool cached = !options.cacheDir.empty() || options.cacheHostBytes > 0;
  if (cached)
    model.attachCache(options.cacheDir, options.cacheDiskBytes, options.cacheHostBytes,
                      options.tenant, options.swaCache);
  else
    v4rt::parseSwaCacheStrategy(options.swaCache); // same errors with or without a cache
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
  for (size_t i = 0; i < generated.size(); ++i)
    std::printf("%s%d", i ? "," : "", generated[i]);
  std::printf("\n");
  const double prefillS = std::chrono::duration<double>(t1 - t0).count();
  const double decodeS = std::chrono::duration<double>(t2 - t1).count();
  const int64_t decoded = std::max<int64_t>(0, options.count - 1);
  std::printf("prefill: %zu tokens in %.1f ms (%.1f tokens/s); decode: %lld tokens in %.1f ms "
              "(%.1f tokens/s)\n",
              prompt.size(), prefillS * 1e3, prompt.size() / std::max(prefillS, 1e-9),
              static_cast<long long>(decoded), decodeS * 1e3, decoded / std::max(decodeS, 1e-9));
  if (cached) {
    const v4rt_cache_stats stats = model.cacheStats();
    std::printf("prefix hit: %lld tokens reused\n", static_cast<long long>(reused));
    std::printf("kv cache: page %lld tokens; pages hit %llu, missed %llu, stored %llu; disk %llu "
                "pages, %llu bytes; corrupt %llu\n",
                static_cast<long long>(stats.page_tokens),
                static_cast<unsigned long long>(stats.pages_hit),
                static_cast<unsigned long long>(stats.pages_missed),
                static_cast<unsigned long long>(stats.pages_stored),
                static_cast<unsigned long long>(stats.disk_pages),
                static_cast<unsigned long long>(stats.disk_bytes),
                static_cast<unsigned long long>(stats.disk_corrupt));
    if (stats.io_failures > 0)
      std::fprintf(stderr, "v4run: warning: %llu KV cache I/O failures (pages recomputed)\n",
                   static_cast<unsigned long long>(stats.io_failures));
  }
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
  generate->add_option("--seed", gen.sampling.seed, "sampling seed");
  generate->add_option("--threads", gen.threads, "worker threads (0 = all cores)");
  generate->add_option("--cache-dir", gen.cacheDir, "KV page directory: reuse and store prefixes");
  generate->add_option("--cache-disk-bytes", gen.cacheDiskBytes, "disk tier budget (default 16 GiB)");
  generate->add_option("--cache-host-bytes", gen.cacheHostBytes, "host-memory tier budget (0 = none)");
  generate->add_option("--tenant", gen.tenant, "tenant salt: pages are shared within a tenant only");
  generate->add_option("--swa-cache", gen.swaCache, "window state in pages: full (periodic:P, zero: not yet)");

  v4run::VerifyOptions ver;
  CLI::App *verify = app.add_subcommand("verify", "compare with a conformance case's golden logits");
  verify->add_option("artifact", ver.artifact, "compiled model (.v4a)")->required();
  verify->add_option("--golden", ver.golden, "golden.safetensors of the case")->required();
  verify->add_option("--tolerance", ver.tolerance, "max relative error per position");
  verify->add_option("--threads", ver.threads, "worker threads (0 = all cores)");

  std::string cacheDir;
  CLI::App *cache = app.add_subcommand("cache", "inspect or empty a KV page directory");
  cache->require_subcommand(1);
  CLI::App *cacheStats = cache->add_subcommand("stats", "pages, bytes, corrupt pages, orphans");
  cacheStats->add_option("directory", cacheDir, "cache directory")->required();
  CLI::App *cacheClear = cache->add_subcommand("clear", "delete every page in the directory");
  cacheClear->add_option("directory", cacheDir, "cache directory")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError &e) {
    return app.exit(e);
  }
  try {
    if (*generate)
      return runGenerate(gen);
    if (*cacheStats)
      return v4run::runCacheStats(cacheDir);
    if (*cacheClear)
      return v4run::runCacheClear(cacheDir);
    return v4run::runVerify(ver);
  } catch (const std::exception &e) {
    std::fprintf(stderr, "v4run: error: %s\n", e.what());
    return 1;
  }
}
