// The longest context an artifact's model supports (its config's
// max_position_embeddings), so a command asked for more positions fails at
// once with the limit in the message instead of allocating for, or running
// towards, a context the model was never built for.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>

namespace v4run {

// max_position_embeddings of the artifact at `path` (manifest only: no
// weight is hashed). Throws v4c::Error when the config lacks it.
int64_t modelContextLimit(const std::string &path);

// Throws v4c::Error "WHAT goes past the L-token context of ARTIFACT's model
// (max_position_embeddings); ..." when the sum of `parts` (each >= 0,
// summed without overflow) is over the limit.
void checkFitsContext(const std::string &path, std::initializer_list<int64_t> parts, const std::string &what);

} // namespace v4run
