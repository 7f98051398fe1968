#include "tools/v4run/GenerateBatch.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>

#include "common/Error.h"
#include "tools/v4run/CacheCommand.h"
#include "tools/v4run/PromptIds.h"
#include "tools/v4run/Runner.h"

namespace v4run {
namespace {

// One line of ids per session, then the speed line (both backends).
void printBatchGeneration(const std::vector<std::vector<int32_t>> &generated, int64_t count, int64_t promptTokens,
                          double prefillS, double decodeS, const std::vector<int64_t> &bucketSizes) {
  const size_t n = generated.size();
  for (const std::vector<int32_t> &ids : generated) {
    for (size_t i = 0; i < ids.size(); ++i)
      std::printf("%s%d", i ? "," : "", ids[i]);
    std::printf("\n");
  }
  const int64_t steps = std::max<int64_t>(0, count - 1);
  const int64_t decoded = steps * static_cast<int64_t>(n);
  std::string buckets;
  for (int64_t size : bucketSizes)
    buckets += (buckets.empty() ? "" : ",") + std::to_string(size);
  std::printf("prefill: %zu sessions, %lld tokens computed in %.1f ms (%.1f tokens/s); decode: %zu sessions x "
              "%lld steps = %lld tokens in %.1f ms (%.1f tokens/s; decode buckets %s)\n",
              n, static_cast<long long>(promptTokens), prefillS * 1e3, promptTokens / std::max(prefillS, 1e-9), n,
              static_cast<long long>(steps), static_cast<long long>(decoded), decodeS * 1e3,
              decoded / std::max(decodeS, 1e-9), buckets.empty() ? "none" : buckets.c_str());
}

// One sampler per session, seeded seed, seed + 1, ... (a stream each).
std::vector<v4rt::Sampler> sessionSamplers(const v4rt::SamplingOptions &sampling, size_t n) {
  std::vector<v4rt::Sampler> samplers;
  for (size_t i = 0; i < n; ++i) {
    v4rt::SamplingOptions mine = sampling;
    mine.seed += i;
    samplers.emplace_back(mine);
  }
  return samplers;
}

// Every session's next token from its logits (rowOf(i): V floats), also
// appended to its generated ids.
template <typename RowOf>
void sampleNext(std::vector<v4rt::Sampler> &samplers, RowOf rowOf, int64_t V, std::vector<int32_t> &next,
                std::vector<std::vector<int32_t>> &generated) {
  for (size_t i = 0; i < samplers.size(); ++i) {
    next[i] = samplers[i].next(rowOf(i), V);
    generated[i].push_back(next[i]);
  }
}

} // namespace

std::vector<std::vector<int32_t>> batchPrompts(const std::string &text, int64_t batch) {
  v4c::check(batch >= 0, "--batch must be >= 1 (sessions decoding together)");
  v4c::check(batch <= kMaxBatchSessions,
             "--batch must be at most " + std::to_string(kMaxBatchSessions) + " (sessions decoding together)");
  std::vector<std::vector<int32_t>> prompts;
  for (const std::string &prompt : splitItems(text, ';'))
    prompts.push_back(parsePromptIds(prompt));
  v4c::check(!prompts.empty(), "--prompt-ids: give at least one token id");
  const size_t distinct = prompts.size();
  const size_t sessions = batch == 0 ? distinct : static_cast<size_t>(batch);
  v4c::check(sessions >= distinct, "--batch " + std::to_string(batch) + " is fewer sessions than the " +
                                       std::to_string(distinct) + " prompts given; raise --batch or drop prompts");
  for (size_t i = distinct; i < sessions; ++i)
    prompts.push_back(prompts[i % distinct]);
  return prompts;
}

int runGenerateBatch(v4rt::ModelHandle &model, const std::vector<std::vector<int32_t>> &prompts,
                     int64_t count, const v4rt::SamplingOptions &sampling, const std::string *swaCache) {
  using Clock = std::chrono::steady_clock;
  v4c::check(count >= 0, "-n must be >= 0");
  const size_t n = prompts.size();
  const int64_t V = model.vocabSize();
  std::vector<std::unique_ptr<v4rt::SessionHandle>> sessions;
  std::vector<v4rt::Sampler> samplers = sessionSamplers(sampling, n);
  std::vector<std::vector<float>> lastLogits(n);

  const auto t0 = Clock::now();
  int64_t promptTokens = 0, tokensReused = 0;
  for (size_t i = 0; i < n; ++i) {
    size_t same = 0;
    while (same < i && prompts[same] != prompts[i])
      ++same;
    if (same < i) { // same prompt: branch that session's state, nothing to compute
      sessions.push_back(std::make_unique<v4rt::SessionHandle>(
          sessions[same]->fork(static_cast<int64_t>(prompts[i].size()))));
      lastLogits[i] = lastLogits[same];
      continue;
    }
    sessions.push_back(std::make_unique<v4rt::SessionHandle>(model));
    int64_t reused = 0; // restored from the cache, not computed
    lastLogits[i] = sessions.back()->prefillLast(prompts[i], &reused);
    promptTokens += static_cast<int64_t>(prompts[i].size()) - reused;
    tokensReused += reused;
  }
  const auto t1 = Clock::now();

  std::vector<std::vector<int32_t>> generated(n);
  std::vector<v4rt::SessionHandle *> batch;
  for (auto &session : sessions)
    batch.push_back(session.get());
  std::vector<int32_t> next(n);
  for (int64_t step = 0; step < count; ++step) {
    sampleNext(samplers, [&](size_t i) { return lastLogits[i].data(); }, V, next, generated);
    if (step + 1 == count)
      break;
    const std::vector<float> logits = v4rt::decodeBatch(batch, next);
    for (size_t i = 0; i < n; ++i)
      lastLogits[i].assign(logits.begin() + i * V, logits.begin() + (i + 1) * V);
  }
  const auto t2 = Clock::now();

  printBatchGeneration(generated, count, promptTokens, std::chrono::duration<double>(t1 - t0).count(),
                       std::chrono::duration<double>(t2 - t1).count(), model.decodeBatchSizes());
  if (swaCache)
    printGenerateCacheSummary(model.cacheStats(), tokensReused, *swaCache);
  return 0;
}

int runRunnerGenerateBatch(Runner &runner, const std::vector<std::vector<int32_t>> &prompts, int64_t count,
                           const v4rt::SamplingOptions &sampling) {
  using Clock = std::chrono::steady_clock;
  v4c::check(count >= 0, "-n must be >= 0");
  const size_t n = prompts.size();
  const int64_t V = runner.vocabSize();
  std::vector<std::unique_ptr<RunnerSession>> sessions;
  std::vector<RunnerSession *> batch;
  std::vector<v4rt::Sampler> samplers = sessionSamplers(sampling, n);
  std::vector<float> logits(n * static_cast<size_t>(V));

  const auto t0 = Clock::now();
  int64_t promptTokens = 0;
  for (size_t i = 0; i < n; ++i) {
    sessions.push_back(runner.newSession());
    batch.push_back(sessions.back().get());
    sessions.back()->prefillLast(prompts[i].data(), static_cast<int64_t>(prompts[i].size()), logits.data() + i * V);
    promptTokens += static_cast<int64_t>(prompts[i].size());
  }
  const auto t1 = Clock::now();

  std::vector<std::vector<int32_t>> generated(n);
  std::vector<int32_t> next(n);
  for (int64_t step = 0; step < count; ++step) {
    sampleNext(samplers, [&](size_t i) { return logits.data() + i * V; }, V, next, generated);
    if (step + 1 == count)
      break;
    runner.decodeBatch(batch.data(), n, next.data(), logits.data());
  }
  const auto t2 = Clock::now();
  std::vector<int64_t> bucketSizes;
  for (const v4rt::Bucket &bucket : runner.program().buckets)
    if (bucket.kind == v4rt::BucketKind::Decode)
      bucketSizes.push_back(bucket.batch);
  std::sort(bucketSizes.begin(), bucketSizes.end());
  printBatchGeneration(generated, count, promptTokens, std::chrono::duration<double>(t1 - t0).count(),
                       std::chrono::duration<double>(t2 - t1).count(), bucketSizes);
  return 0;
}

} // namespace v4run
