// Error text shared by the host emulation's checkers (WgmmaEmulation.cpp,
// CpAsyncEmulation.cpp): a kernel call site, and a v4c::Error naming the
// primitive, the site, the block and the thread that broke a rule.
#pragma once

#include "codegen/cuda/testing/HostEmulation.h"

#include <source_location>
#include <string>

#include "common/Error.h"

namespace v4emu {

// "file:line (in function)".
inline std::string describeSite(const std::source_location &where) {
  return std::string(where.file_name()) + ":" + std::to_string(where.line()) + " (in " + where.function_name() + ")";
}

// Throws "v4emu: <what> at <site> (block (x,y,z), thread t): <message>" for
// the running fiber's thread.
[[noreturn]] inline void failAtSite(const std::source_location &where, const char *what, const std::string &message) {
  throw v4c::Error("v4emu: " + std::string(what) + " at " + describeSite(where) + " (block (" +
                   std::to_string(blockIdx.x) + "," + std::to_string(blockIdx.y) + "," + std::to_string(blockIdx.z) +
                   "), thread " + std::to_string(linearThread()) + "): " + message);
}

} // namespace v4emu
