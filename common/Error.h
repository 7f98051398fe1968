// One error type for every non-MLIR library: a one-line, user-facing message.
#pragma once

#include <stdexcept>
#include <string>

namespace v4c {

class Error : public std::runtime_error {
public:
  explicit Error(const std::string &message) : std::runtime_error(message) {}
};

// Throws v4c::Error(message) when `condition` is false.
inline void check(bool condition, const std::string &message) {
  if (!condition)
    throw Error(message);
}

} // namespace v4c
