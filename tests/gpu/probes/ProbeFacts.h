// The facts v4probe-primitives checks (ProbeFacts.cpp): each is one or more
// runs of a probe kernel on designed inputs, with the model's expected
// output (our reading of the PTX ISA: Wgmma.cuh's and CpAsync.cuh's facts)
// and a way to name what a wrong output element holds.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "tests/gpu/probes/ProbeShapes.h"

namespace v4probe {

// One kernel run: its outputs as bytes, compared with `expected` (bytes);
// `explain` names the first mismatch (element index, expected bytes, got).
struct ProbeRun {
  std::string label; // which run of the fact ("slice 2, A coded")
  std::function<std::vector<uint8_t>(Runner &)> run;
  std::vector<uint8_t> expected;
  std::function<std::string(const std::vector<uint8_t> &got)> explain; // "" when got == expected
  // The emulation must reject this run (its model does not cover it; only
  // the device's answer is compared): a substring of the expected error.
  std::string emulationRejects;
};

struct Fact {
  std::string id, name;
  std::string what; // the fact, one line (printed with FAIL)
  std::vector<ProbeRun> runs;
};

std::vector<Fact> primitiveFacts();

} // namespace v4probe
