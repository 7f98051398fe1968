// `v4run generate --batch N` (or several prompts "5,17;300,2"): N sessions
// decoding together through continuous batching (v4rt::decodeBatch).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/Sampler.h"
#include "runtime/api/v4rt.hpp"

namespace v4run {

class Runner;

// The prompts of a batched generate: "a;b;c" gives one session per prompt,
// repeated in turn up to `batch` sessions (batch 0: one per prompt). Throws
// v4c::Error on a bad id, a batch < 0, or fewer sessions than prompts.
std::vector<std::vector<int32_t>> batchPrompts(const std::string &text, int64_t batch);

// Prefills every session (a prompt seen before is forked from the session
// that prefilled it, not computed again), then generates `count` tokens per
// session, one decodeBatch step for all sessions per token. Session i samples
// with seed + i. Prints one line of ids per session, then the speed line
// (prompt tokens restored from the model's cache are not counted computed).
// `swaCache`: the attached cache's window strategy, null when none is
// attached; with one, the cache summary follows (the tokens reused summed
// over the sessions), as after a single-session generate.
int runGenerateBatch(v4rt::ModelHandle &model, const std::vector<std::vector<int32_t>> &prompts,
                     int64_t count, const v4rt::SamplingOptions &sampling, const std::string *swaCache = nullptr);

// The same through a Runner (GPU artifacts: Runner::decodeBatch runs the
// CUDA backend's batched decode buckets), with the same output. GPU sessions
// do not fork: every session prefills its own prompt.
int runRunnerGenerateBatch(Runner &runner, const std::vector<std::vector<int32_t>> &prompts, int64_t count,
                           const v4rt::SamplingOptions &sampling);

} // namespace v4run
