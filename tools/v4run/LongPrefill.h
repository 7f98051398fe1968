// bench's prefill of a long prompt (up to the 1M tokens of issue 6): fed in
// pieces of many chunks, with a progress line per piece, so a run that is
// stopped (a time budget, or a killed process) still says how far it got
// and how fast.
#pragma once

#include <cstdint>

#include "tools/v4run/Runner.h"

namespace v4run {

struct PrefillRun {
  int64_t tokens = 0;    // tokens fed
  double seconds = 0.0;  // host clock, until the last piece's results were on the host
  bool complete = true;  // all `count` tokens fed (false: the budget stopped it)
};

// Feeds ids[0, count) to `session` in pieces of `piece` tokens (the
// backend chunks each piece), printing "prefill: N/count tokens ..." after
// each piece when there are several. With `budgetSeconds` > 0, stops after
// the first piece that ends past it. `lastLogits` receives the logits of the
// last token fed when the prompt is complete.
PrefillRun prefillInPieces(RunnerSession &session, const int32_t *ids, int64_t count, int64_t piece,
                           double budgetSeconds, float *lastLogits);

} // namespace v4run
