// Shared by the C API tests: statuses as strings, logit comparisons (and,
// from runtime/TestArtifacts.h, compiled conformance artifacts and prompts).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/TestArtifacts.h"
#include "runtime/api/v4rt.h"

namespace v4rt::apitest {

// Conformance artifacts and prompts: the runtime tests' shared helpers.
using test::compiledConformanceCase;
using test::pseudoRandomIds;

// The message of `status`, which it frees; "" for success.
std::string takeMessage(v4rt_status status);

// Max over rows (of `vocab` floats) of max |a - b| / max |b|: the
// conformance tests' relative error per position.
float maxRowRelativeError(const std::vector<float> &a, const std::vector<float> &b, int64_t vocab);

// Row `row` of `all` (rows of `vocab` floats).
std::vector<float> logitRow(const std::vector<float> &all, int64_t row, int64_t vocab);

int32_t argmax(const std::vector<float> &logits);

} // namespace v4rt::apitest
