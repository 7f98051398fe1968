// Which devices can run an artifact's cubins.
//
// Artifacts embed SASS only (no PTX to JIT), so the rules are those of SASS
// binary compatibility:
//  - "sm_90a", "sm_100a" (architecture-specific features such as wgmma):
//    exactly that compute capability (9.0, 10.0);
//  - "sm_80", "sm_89": the same major version with a minor at least the
//    target's (sm_80 code runs on 8.0, 8.6, 8.7, 8.9; not on 9.0, whose SASS
//    differs; compile for sm_90a there).
// Kept free of the driver so it is tested without a GPU.
#pragma once

#include <string>

namespace v4rt::cuda {

struct TargetArch {
  int major = 0, minor = 0;
  bool archSpecific = false; // the 'a' suffix
};

// Parses "sm_90a" -> {9, 0, true}; throws v4c::Error on anything else.
TargetArch parseTargetArch(const std::string &target);

// Empty when a device of compute capability major.minor runs `target`'s
// cubins; otherwise the reason it cannot ("device compute capability 8.0
// cannot run sm_90a code (needs exactly 9.0)").
std::string targetMismatch(const std::string &target, int major, int minor);

} // namespace v4rt::cuda
