#include "tools/v4run/PromptIds.h"

#include <climits>
#include <sstream>

#include "common/Error.h"

namespace v4run {

std::vector<int32_t> parsePromptIds(const std::string &text) {
  std::vector<int32_t> ids;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    size_t used = 0;
    long long value = 0;
    try {
      value = std::stoll(item, &used);
    } catch (const std::exception &) {
      used = 0;
    }
    if (used == 0 || used != item.size() || value < 0 || value > INT32_MAX)
      throw v4c::Error("--prompt-ids: '" + item + "' is not a token id (want e.g. 5,17,300)");
    ids.push_back(static_cast<int32_t>(value));
  }
  v4c::check(!ids.empty(), "--prompt-ids: give at least one token id");
  return ids;
}

} // namespace v4run
