// v4run: runs v4c artifacts (no compiler in it).
//   v4run generate MODEL.v4a --prompt-ids 5,17,300 -n 16
//   v4run verify MODEL.v4a --golden GOLDEN.safetensors
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/Error.h"
#include "runtime/Sampler.h"
#include "runtime/api/v4rt.hpp"
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
};

int runGenerate(const GenerateOptions &options) {
  using Clock = std::chrono::steady_clock;
  const std::vector<int32_t> prompt = parseIds(options.promptIds);
  v4c::check(options.count >= 0, "-n must be >= 0");
  v4rt::ModelHandle model(options.artifact, options.threads);
  v4rt::SessionHandle session(model);
  v4rt::Sampler sampler(options.sampling);
  const int64_t V = model.vocabSize();

  const auto t0 = Clock::now();
  std::vector<float> logits = session.prefill(prompt);
  const auto t1 = Clock::now();
  std::vector<int32_t> generated;
  const float *last = logits.data() + (prompt.size() - 1) * V;
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
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  CLI::App app{"v4run: run a v4c artifact (generate, verify)"};
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

  v4run::VerifyOptions ver;
  CLI::App *verify = app.add_subcommand("verify", "compare with a conformance case's golden logits");
  verify->add_option("artifact", ver.artifact, "compiled model (.v4a)")->required();
  verify->add_option("--golden", ver.golden, "golden.safetensors of the case")->required();
  verify->add_option("--tolerance", ver.tolerance, "max relative error per position");
  verify->add_option("--threads", ver.threads, "worker threads (0 = all cores)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError &e) {
    return app.exit(e);
  }
  try {
    if (*generate)
      return runGenerate(gen);
    return v4run::runVerify(ver);
  } catch (const std::exception &e) {
    std::fprintf(stderr, "v4run: error: %s\n", e.what());
    return 1;
  }
}
