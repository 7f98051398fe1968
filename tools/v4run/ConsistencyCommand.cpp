#include "tools/v4run/ConsistencyCommand.h"

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "common/Error.h"
#include "runtime/Sampler.h"
#include "tools/v4run/ContextLimit.h"
#include "tools/v4run/LogitRows.h"
#include "tools/v4run/Runner.h"

namespace v4run {
namespace {

// Logits of every prompt row, fed token by token: the first token through
// prefill, then decode steps.
std::vector<float> tokenByToken(Runner &runner, const std::vector<int32_t> &ids, bool useGraphs) {
  const int64_t V = runner.vocabSize();
  std::vector<float> logits(ids.size() * static_cast<size_t>(V));
  std::unique_ptr<RunnerSession> session = runner.newSession(useGraphs);
  session->prefill(ids.data(), 1, logits.data());
  for (size_t t = 1; t < ids.size(); ++t)
    session->decode(ids[t], logits.data() + t * V);
  return logits;
}

bool report(const char *what, const RowDifference &d, double tolerance) {
  const bool ok = d.maxRelative <= tolerance;
  std::printf("consistency: %-28s max rel %.3e (row %lld) max abs %.3e %s\n", what, d.maxRelative,
              static_cast<long long>(d.worstRow), d.maxAbsolute, ok ? "ok" : "FAILED");
  return ok;
}

// One session's greedy decode: the token fed at each step and the logits it gave.
struct Decoded {
  std::vector<int32_t> tokens;
  std::vector<float> logits; // steps x vocab
};

// Session i's prompt: promptLength - i synthetic tokens (at least 1).
std::vector<int32_t> batchPrompt(const ConsistencyOptions &options, int64_t i, int64_t vocab) {
  return syntheticIds(std::max<int64_t>(1, options.promptLength - i), vocab, 11 + static_cast<uint64_t>(i));
}

// Continuous batching vs decoding alone (see ConsistencyCommand.h).
int runBatchConsistency(const ConsistencyOptions &options, Runner &runner) {
  const int64_t n = options.batch, steps = options.decodeSteps, V = runner.vocabSize();
  v4c::check(steps >= 2, "--decode must be >= 2 with --batch (the last session joins at step 1)");
  std::vector<Decoded> alone(n), batched(n);
  std::vector<float> logits(static_cast<size_t>(n * V));
  for (int64_t i = 0; i < n; ++i) {
    const std::vector<int32_t> prompt = batchPrompt(options, i, V);
    std::unique_ptr<RunnerSession> session = runner.newSession();
    session->prefillLast(prompt.data(), static_cast<int64_t>(prompt.size()), logits.data());
    for (int64_t s = 0; s < steps; ++s) {
      alone[i].tokens.push_back(v4rt::argmax(logits.data(), V));
      session->decode(alone[i].tokens.back(), logits.data());
      alone[i].logits.insert(alone[i].logits.end(), logits.begin(), logits.begin() + V);
    }
  }
  std::vector<std::unique_ptr<RunnerSession>> sessions;
  for (int64_t i = 0; i < n; ++i) {
    const std::vector<int32_t> prompt = batchPrompt(options, i, V);
    sessions.push_back(runner.newSession());
    sessions.back()->prefillLast(prompt.data(), static_cast<int64_t>(prompt.size()), logits.data() + i * V);
  }
  for (int64_t s = 0; s < steps; ++s) {
    // Step 0 without the last session: it decodes alone, then joins.
    const int64_t rows = s == 0 ? n - 1 : n;
    std::vector<RunnerSession *> batch;
    std::vector<int32_t> ids;
    for (int64_t i = 0; i < n; ++i) {
      batched[i].tokens.push_back(v4rt::argmax(logits.data() + i * V, V));
      if (i < rows) {
        batch.push_back(sessions[i].get());
        ids.push_back(batched[i].tokens.back());
      }
    }
    if (rows < n)
      sessions[n - 1]->decode(batched[n - 1].tokens.back(), logits.data() + (n - 1) * V);
    runner.decodeBatch(batch.data(), batch.size(), ids.data(), logits.data());
    for (int64_t i = 0; i < n; ++i)
      batched[i].logits.insert(batched[i].logits.end(), logits.begin() + i * V, logits.begin() + (i + 1) * V);
  }
  bool ok = true;
  for (int64_t i = 0; i < n; ++i) {
    const std::string what = "batched vs alone, session " + std::to_string(i);
    ok = report(what.c_str(), compareRows(batched[i].logits, alone[i].logits, V), options.batchTolerance) && ok;
    const bool sameTokens = batched[i].tokens == alone[i].tokens;
    std::printf("consistency: %-28s %s\n", ("greedy tokens, session " + std::to_string(i)).c_str(),
                sameTokens ? "equal" : "DIFFER");
    ok = ok && sameTokens;
  }
  std::printf("consistency: %s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}

} // namespace

int runConsistency(const ConsistencyOptions &options) {
  const int64_t P = options.promptLength;
  v4c::check(P >= 3, "--prompt-len must be >= 3 (three uneven chunks)");
  v4c::check(options.tolerance > 0 && options.batchTolerance > 0,
             "--tolerance and --batch-tolerance must be positive (e.g. 1e-4)");
  v4c::check(options.batch == 0 || (options.batch >= 2 && options.batch <= kMaxBatchSessions),
             "--batch must be 2 to " + std::to_string(kMaxBatchSessions) + " sessions");
  v4c::check(options.decodeSteps >= 1, "--decode must be >= 1");
  v4c::check(options.maxContext >= 0, "--max-context must be >= 0 (0: the model's)");
  checkFitsContext(options.artifact, {P, options.batch > 1 ? options.decodeSteps : 0},
                   options.batch > 1 ? "--prompt-len + --decode" : "--prompt-len");
  RunnerOptions runnerOptions;
  runnerOptions.threads = options.threads;
  runnerOptions.maxContext = options.maxContext;
  std::unique_ptr<Runner> runner = openRunner(options.artifact, runnerOptions);
  const int64_t V = runner->vocabSize();
  const std::vector<int32_t> ids = syntheticIds(P, V, 7);
  std::printf("consistency: %s on %s, %lld tokens, prefill chunk %lld\n", options.artifact.c_str(),
              runner->describe().c_str(), static_cast<long long>(P), static_cast<long long>(runner->prefillChunk()));
  if (options.batch > 1) {
    std::printf("consistency: %lld sessions (prompts of %lld down to %lld tokens), %lld greedy steps, batched "
                "vs alone\n",
                static_cast<long long>(options.batch), static_cast<long long>(P),
                static_cast<long long>(std::max<int64_t>(1, P - options.batch + 1)),
                static_cast<long long>(options.decodeSteps));
    return runBatchConsistency(options, *runner);
  }

  // 1. One prefill of the whole prompt (the backend's own chunking).
  std::vector<float> whole(static_cast<size_t>(P * V));
  runner->newSession()->prefill(ids.data(), P, whole.data());
  // 2. Uneven chunks: a third, one token, the rest (none aligned to a chunk
  //    or a compression rate unless the prompt makes it so).
  std::vector<float> chunked(static_cast<size_t>(P * V));
  {
    std::unique_ptr<RunnerSession> session = runner->newSession();
    const int64_t cuts[] = {0, P / 3, P / 3 + 1, P};
    for (int c = 0; c < 3; ++c)
      session->prefill(ids.data() + cuts[c], cuts[c + 1] - cuts[c], chunked.data() + cuts[c] * V);
  }
  // 3. One token at a time.
  const std::vector<float> decoded = tokenByToken(*runner, ids, true);

  bool ok = report("chunked prefill vs prefill", compareRows(chunked, whole, V), options.tolerance);
  ok = report("token-by-token vs prefill", compareRows(decoded, whole, V), options.tolerance) && ok;
  if (isDeviceTarget(runner->program().target)) {
    // 4. The same decode with plain launches: a captured graph must replay
    //    exactly what the launches compute.
    ok = report("graph replay vs launches", compareRows(decoded, tokenByToken(*runner, ids, false), V),
                options.graphTolerance) &&
         ok;
  }
  std::printf("consistency: %s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}

} // namespace v4run
