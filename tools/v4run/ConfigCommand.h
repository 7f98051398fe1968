// `v4run config ARTIFACT`: the model config an artifact was compiled from, as
// a transformers config.json (bench/vs_hf.sh builds the HF model from it).
#pragma once

#include <string>

namespace v4run {

int runConfig(const std::string &artifact);

} // namespace v4run
