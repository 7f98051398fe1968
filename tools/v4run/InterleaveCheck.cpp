#include "tools/v4run/InterleaveCheck.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "common/Error.h"
#include "runtime/Sampler.h"
#include "tools/v4run/DeviceGenerate.h"
#include "tools/v4run/LogitRows.h"
#include "tools/v4run/Runner.h"

namespace v4run {
namespace {

// What one session produced: the prompt's last logits, then one row per
// decode step, and its greedy tokens.
struct Trace {
  std::vector<float> logits;
  std::vector<int32_t> tokens;
};

} // namespace

int runInterleaveCheck(const InterleaveOptions &options) {
  v4c::check(options.sessions >= 2 && options.poolSessions >= 1 && options.poolSessions < options.sessions,
             "--sessions must be >= 2 and --pool-sessions between 1 and sessions - 1 (else nothing is preempted)");
  v4c::check(options.promptLength >= 1 && options.decodeSteps >= 1, "--prompt-len and --decode must be >= 1");
  RunnerOptions runnerOptions;
  runnerOptions.maxContext = options.maxContext;
  runnerOptions.deviceKvSessions = options.poolSessions;
  std::unique_ptr<Runner> runner = openRunner(options.artifact, runnerOptions);
  RunnerKvPoolStats pool;
  v4c::check(runner->kvPoolStats(pool), options.artifact + ": --sessions checks the device KV pool of GPU artifacts");
  const int64_t V = runner->vocabSize(), S = options.sessions, D = options.decodeSteps;
  std::vector<std::vector<int32_t>> prompts;
  for (int64_t s = 0; s < S; ++s)
    prompts.push_back(syntheticIds(options.promptLength + 2 * s, V, 11 + static_cast<uint64_t>(s)));
  std::printf("interleave: %s on %s, %lld sessions, a pool of %lld (%llu bytes each)\n", options.artifact.c_str(),
              runner->describe().c_str(), static_cast<long long>(S), static_cast<long long>(options.poolSessions),
              static_cast<unsigned long long>(pool.sessionBytes));

  // Alone: one session at a time (never preempted: the pool holds it).
  std::vector<Trace> alone(static_cast<size_t>(S));
  for (int64_t s = 0; s < S; ++s) {
    Trace &trace = alone[static_cast<size_t>(s)];
    trace.logits.resize(static_cast<size_t>((D + 1) * V));
    std::unique_ptr<RunnerSession> session = runner->newSession();
    session->prefillLast(prompts[s].data(), static_cast<int64_t>(prompts[s].size()), trace.logits.data());
    for (int64_t d = 0; d < D; ++d) {
      trace.tokens.push_back(greedyToken(trace.logits.data() + d * V, V));
      session->decode(trace.tokens.back(), trace.logits.data() + (d + 1) * V);
    }
  }
  runner->kvPoolStats(pool);
  const uint64_t preemptionsAlone = pool.preemptions;

  // Interleaved: session s prefills in round s, and every live session
  // decodes one step per round, so each step finds its session preempted
  // by the ones that ran since.
  std::vector<Trace> mixed(static_cast<size_t>(S));
  std::vector<std::unique_ptr<RunnerSession>> sessions;
  for (int64_t round = 0; round < S + D; ++round) {
    if (round < S) {
      Trace &trace = mixed[static_cast<size_t>(round)];
      trace.logits.resize(static_cast<size_t>((D + 1) * V));
      sessions.push_back(runner->newSession());
      sessions.back()->prefillLast(prompts[round].data(), static_cast<int64_t>(prompts[round].size()),
                                   trace.logits.data());
    }
    for (int64_t s = 0; s < std::min(round, S); ++s) {
      Trace &trace = mixed[static_cast<size_t>(s)];
      const int64_t d = static_cast<int64_t>(trace.tokens.size());
      if (d >= D)
        continue;
      trace.tokens.push_back(greedyToken(trace.logits.data() + d * V, V));
      sessions[static_cast<size_t>(s)]->decode(trace.tokens.back(), trace.logits.data() + (d + 1) * V);
    }
  }
  runner->kvPoolStats(pool);
  printKvPool(*runner);

  bool ok = preemptionsAlone == 0;
  if (!ok)
    std::printf("interleave: sessions run alone were preempted %llu times: FAILED\n",
                static_cast<unsigned long long>(preemptionsAlone));
  for (int64_t s = 0; s < S; ++s) {
    const Trace &a = alone[static_cast<size_t>(s)], &m = mixed[static_cast<size_t>(s)];
    const double diff = maxRowRelativeError(m.logits, a.logits, V);
    const bool same = a.tokens == m.tokens && diff <= options.tolerance;
    std::printf("interleave: session %lld (%zu prompt tokens): tokens %s, logits max rel %.3e %s\n",
                static_cast<long long>(s), prompts[s].size(), a.tokens == m.tokens ? "equal" : "DIFFER", diff,
                same ? "ok" : "FAILED");
    ok = ok && same;
  }
  const uint64_t preemptions = pool.preemptions - preemptionsAlone;
  const bool preempted = preemptions > 0 && pool.swapIns > 0;
  std::printf("interleave: %llu preemptions, %llu swap-ins %s\n", static_cast<unsigned long long>(preemptions),
              static_cast<unsigned long long>(pool.swapIns), preempted ? "ok" : "FAILED (nothing was preempted)");
  ok = ok && preempted;
  std::printf("interleave: %s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}

} // namespace v4run
