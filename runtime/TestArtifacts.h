// Shared by the runtime's test executables (prefix cache, fork, C API...):
// conformance cases compiled with the built v4c, and deterministic prompts.
// Each executable compiles TestArtifacts.cpp with its own V4C_BINARY,
// CONFORMANCE_DIR and TEST_SCRATCH_DIR definitions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace v4rt::test {

// Compiles tests/conformance/<caseName> with the built v4c and `v4cOptions`
// (e.g. "--target sm_90a --decode-batch 1"), once per process and options;
// returns the artifact's path (removed when the process exits). A failed
// compile throws, its output kept in <path>.log.
std::string compiledConformanceCase(const std::string &caseName, const std::string &v4cOptions);

// `count` deterministic pseudo-random ids in [2, vocab).
std::vector<int32_t> pseudoRandomIds(int64_t count, int64_t vocab, uint32_t seed);

} // namespace v4rt::test
