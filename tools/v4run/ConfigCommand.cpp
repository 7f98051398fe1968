#include "tools/v4run/ConfigCommand.h"

#include <cstdio>

#include <nlohmann/json.hpp>

#include "common/Error.h"
#include "runtime/artifact/ArtifactReader.h"

namespace v4run {

int runConfig(const std::string &artifact) {
  v4rt::OpenOptions open;
  open.verifyChecksums = false; // only the manifest is read
  const std::string text = v4rt::Artifact::open(artifact, open)->program().configJson;
  nlohmann::json config;
  try {
    config = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception &e) {
    throw v4c::Error(artifact + ": the model config is not valid JSON: " + e.what());
  }
  std::printf("%s\n", config.dump(2).c_str());
  return 0;
}

} // namespace v4run
