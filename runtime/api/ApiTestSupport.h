// Shared by the C API tests: compiled conformance artifacts, statuses as
// strings, logit comparisons.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/api/v4rt.h"

namespace v4rt::apitest {

// Compiles tests/conformance/<caseName> with the built v4c and `options`
// (e.g. "--target sm_90a --decode-batch 1"), once per process and options;
// returns the artifact's path (removed when the process exits).
std::string compiledCase(const std::string &caseName, const std::string &options);

// The message of `status`, which it frees; "" for success.
std::string takeMessage(v4rt_status status);

// Max over rows (of `vocab` floats) of max |a - b| / max |b|: the
// conformance tests' relative error per position.
float maxRowRelativeError(const std::vector<float> &a, const std::vector<float> &b, int64_t vocab);

// Row `row` of `all` (rows of `vocab` floats).
std::vector<float> logitRow(const std::vector<float> &all, int64_t row, int64_t vocab);

int32_t argmax(const std::vector<float> &logits);

// `count` deterministic pseudo-random ids in [2, vocab).
std::vector<int32_t> promptIds(int64_t count, int64_t vocab, uint32_t seed);

} // namespace v4rt::apitest
