// "5,17,300" -> token ids, for the commands that take --prompt-ids.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace v4run {

// Throws v4c::Error "--prompt-ids: 'x' is not a token id (want e.g. 5,17,300)".
std::vector<int32_t> parsePromptIds(const std::string &text);

} // namespace v4run
