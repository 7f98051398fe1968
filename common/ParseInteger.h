// Strict decimal integer parsing for command-line lists ("5,17,300").
#pragma once

#include <optional>
#include <stdexcept>
#include <string>

namespace v4c {

// The whole of `text` as a decimal integer, or nothing (empty, trailing
// characters, out of range).
inline std::optional<long long> parseInteger(const std::string &text) {
  size_t used = 0;
  long long value = 0;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception &) {
    return std::nullopt;
  }
  if (used == 0 || used != text.size())
    return std::nullopt;
  return value;
}

} // namespace v4c
