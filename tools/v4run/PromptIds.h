// "5,17,300" -> token ids, and the generated ids and speed line, shared by the
// CPU and device paths of `v4run generate`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace v4run {

// "a,b," -> {"a", "b", ""}: every item, empty ones included (so a stray
// separator is an error, not silently dropped).
std::vector<std::string> splitItems(const std::string &text, char separator);

// Throws v4c::Error "--prompt-ids: 'x' is not a token id (want e.g. 5,17,300)".
std::vector<int32_t> parsePromptIds(const std::string &text);

// What `generate` prints: the ids on one line, then
// "prefill: N tokens in X ms (R tokens/s); decode: M tokens in Y ms (S tokens/s)"
// (the first generated token comes from the prefill's logits, so M = ids - 1).
void printGeneration(const std::vector<int32_t> &generated, size_t promptTokens, double prefillSeconds,
                     double decodeSeconds);

} // namespace v4run
