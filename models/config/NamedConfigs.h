// Built-in model configurations: the released DeepSeek-V4 sizes, so tools and
// tests can build graphs and plans without a checkpoint on disk.
#pragma once

#include "models/config/ModelConfig.h"

#include <string>
#include <vector>

namespace v4c {

// "v4-flash", "v4-pro", "v4-flash-2layer" (V4-Flash sizes, one CSA and one
// HCA layer, both top-k MoE). Throws v4c::Error listing the known names.
ModelConfig namedConfig(const std::string &name);

// The names namedConfig accepts, in the order its error lists them.
std::vector<std::string> namedConfigNames();

} // namespace v4c
