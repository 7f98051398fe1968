#include "tools/v4run/ContextLimit.h"

#include <nlohmann/json.hpp>

#include "common/Error.h"
#include "runtime/artifact/ArtifactReader.h"

namespace v4run {

int64_t modelContextLimit(const std::string &path) {
  v4rt::OpenOptions open;
  open.verifyChecksums = false; // the backend that runs the artifact hashes its weights
  const std::string text = v4rt::Artifact::open(path, open)->program().configJson;
  const nlohmann::json config = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  const bool known = config.is_object() && config.contains("max_position_embeddings") &&
                     config["max_position_embeddings"].is_number_integer() &&
                     config["max_position_embeddings"].get<int64_t>() > 0;
  v4c::check(known, path + ": the artifact's model config has no positive max_position_embeddings");
  return config["max_position_embeddings"].get<int64_t>();
}

void checkFitsContext(const std::string &path, std::initializer_list<int64_t> parts, const std::string &what) {
  const int64_t limit = modelContextLimit(path);
  int64_t positions = 0;
  for (int64_t part : parts) // saturates at limit + 1: over the limit either way
    positions = part > limit - positions ? limit + 1 : positions + part;
  v4c::check(positions <= limit, what + " goes past the " + std::to_string(limit) + "-token context of " + path +
                                     "'s model (max_position_embeddings); ask for fewer tokens");
}

} // namespace v4run
