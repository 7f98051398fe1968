// The C API's backend choice: the artifact's target picks it.
#include "runtime/api/Backend.h"

#include "common/Error.h"
#include "runtime/artifact/ArtifactReader.h"

namespace v4rt::api {

std::unique_ptr<BackendModel> openBackendModel(const std::string &path, const ModelOptions &options) {
  const std::string target = readArtifactTarget(path);
  if (target != "cpu")
    return openCudaModel(path, target, options);
  v4c::check(options.maxContext == 0 && options.deviceKvBytes == 0 && options.deviceKvSessions == 0,
             path + ": v4rt_model_options max_context / device_kv_bytes / device_kv_sessions are for GPU "
                    "artifacts; this one targets cpu (set them to 0)");
  return openCpuModel(path, options);
}

} // namespace v4rt::api
