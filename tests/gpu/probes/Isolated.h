// Runs a piece of the device half in a child process (fork), so that a
// sticky CUDA error, a crash or a hang costs one probe and names itself,
// instead of poisoning the context of every later probe or stopping the
// program. The parent process never initializes CUDA.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace v4probe {

struct IsolatedResult {
  bool ok = false;
  std::string error; // when !ok: the exception's message, the signal, or the time-out
  std::vector<uint8_t> bytes;
};

// `body` runs in a forked child; its bytes (or its exception's message)
// come back through a pipe. A child still running after `timeoutSeconds`
// is killed.
IsolatedResult runIsolated(const std::function<std::vector<uint8_t>()> &body, int timeoutSeconds);

} // namespace v4probe
