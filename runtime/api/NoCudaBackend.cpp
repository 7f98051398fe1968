// The C API built without the CUDA backend (no cuda.h at configure time):
// GPU artifacts are a one-line error naming what is missing.
#include "runtime/api/Backend.h"

#include "common/Error.h"

namespace v4rt::api {

std::unique_ptr<BackendModel> openCudaModel(const std::string &, const std::string &target, const ModelOptions &) {
  // The wording of the CLI's no-device line, so scripts match one pattern.
  throw v4c::Error("no CUDA device: the v4rt C API was built without the CUDA backend (cuda.h was not found at "
                   "build time), which GPU artifacts need; this artifact targets " + target);
}

} // namespace v4rt::api
