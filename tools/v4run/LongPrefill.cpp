#include "tools/v4run/LongPrefill.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "common/Error.h"

namespace v4run {

PrefillRun prefillInPieces(RunnerSession &session, const int32_t *ids, int64_t count, int64_t piece,
                           double budgetSeconds, float *lastLogits) {
  v4c::check(count >= 1 && piece >= 1, "prefill: needs at least one token and a positive piece size");
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  PrefillRun run;
  const bool progress = count > piece;
  while (run.tokens < count) {
    const int64_t n = std::min(piece, count - run.tokens);
    const auto pieceStart = Clock::now();
    if (run.tokens + n == count)
      session.prefillLast(ids + run.tokens, n, lastLogits); // returns once the logits are on the host
    else
      session.prefill(ids + run.tokens, n, nullptr); // returns once the piece has run
    run.tokens += n;
    const double pieceS = std::chrono::duration<double>(Clock::now() - pieceStart).count();
    run.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (progress) {
      std::printf("prefill: %lld/%lld tokens in %.2f s (%.1f tokens/s; this piece of %lld: %.1f tokens/s)\n",
                  static_cast<long long>(run.tokens), static_cast<long long>(count), run.seconds,
                  static_cast<double>(run.tokens) / std::max(run.seconds, 1e-12), static_cast<long long>(n),
                  static_cast<double>(n) / std::max(pieceS, 1e-12));
      std::fflush(stdout);
    }
    if (budgetSeconds > 0 && run.seconds > budgetSeconds && run.tokens < count) {
      run.complete = false;
      std::printf("prefill: stopped at %lld of %lld tokens after %.2f s (--prefill-budget %.0f s)\n",
                  static_cast<long long>(run.tokens), static_cast<long long>(count), run.seconds, budgetSeconds);
      std::fflush(stdout);
      break;
    }
  }
  return run;
}

} // namespace v4run
