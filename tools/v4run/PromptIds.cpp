#include "tools/v4run/PromptIds.h"

#include <algorithm>
#include <climits>
#include <cstdio>

#include "common/Error.h"
#include "common/ParseInteger.h"

namespace v4run {

std::vector<std::string> splitItems(const std::string &text, char separator) {
  std::vector<std::string> items;
  size_t begin = 0;
  while (true) {
    const size_t end = text.find(separator, begin);
    items.push_back(text.substr(begin, end == std::string::npos ? std::string::npos : end - begin));
    if (end == std::string::npos)
      return items;
    begin = end + 1;
  }
}

std::vector<int32_t> parsePromptIds(const std::string &text) {
  v4c::check(!text.empty(), "--prompt-ids: give at least one token id");
  std::vector<int32_t> ids;
  for (const std::string &item : splitItems(text, ',')) {
    v4c::check(!item.empty(), "--prompt-ids: an empty item in '" + text + "' (want e.g. 5,17,300)");
    const std::optional<long long> value = v4c::parseInteger(item);
    if (!value || *value < 0 || *value > INT32_MAX)
      throw v4c::Error("--prompt-ids: '" + item + "' is not a token id (want e.g. 5,17,300)");
    ids.push_back(static_cast<int32_t>(*value));
  }
  return ids;
}

void printGeneration(const std::vector<int32_t> &generated, size_t promptTokens, double prefillSeconds,
                     double decodeSeconds) {
  for (size_t i = 0; i < generated.size(); ++i)
    std::printf("%s%d", i ? "," : "", generated[i]);
  std::printf("\n");
  const size_t decoded = generated.empty() ? 0 : generated.size() - 1;
  std::printf("prefill: %zu tokens in %.1f ms (%.1f tokens/s); decode: %zu tokens in %.1f ms "
              "(%.1f tokens/s)\n",
              promptTokens, prefillSeconds * 1e3, promptTokens / std::max(prefillSeconds, 1e-9), decoded,
              decodeSeconds * 1e3, decoded / std::max(decodeSeconds, 1e-9));
}

} // namespace v4run
