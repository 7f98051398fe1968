// Test support: the tiny-mixed artifact (fp32, sm_90a) that the runtime's
// emulated-device tests load. ctest's cuda.CudaSessionFork.artifact builds it
// and the host module the emulated driver runs in place of its cubin (the
// test target's compile definitions V4_FORK_TEST_ARTIFACT and
// V4_FORK_TEST_MODULES say where); on a GPU machine, which has no compiler,
// $V4RT_FORK_TEST_ARTIFACT names a copy (bench/prepare_gpu_session.sh) whose
// cubin the real driver loads.
#pragma once

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "common/Error.h"
#include "runtime/cuda/CudaModel.h"

namespace v4rt::cuda {

inline std::string tinyMixedArtifactPath() {
  const char *moved = std::getenv("V4RT_FORK_TEST_ARTIFACT");
  return moved && *moved ? moved : V4_FORK_TEST_ARTIFACT;
}

// The artifact loaded with `options`; null without a device (neither the
// emulated driver nor a GPU). Throws when the artifact is missing.
inline std::unique_ptr<CudaModel> loadTinyMixed(const CudaLoadOptions &options) {
  const std::string path = tinyMixedArtifactPath();
  if (!std::ifstream(path).good())
    throw v4c::Error(path + " is missing: run through ctest, whose cuda.CudaSessionFork.artifact test builds it"
                            " (or set V4RT_FORK_TEST_ARTIFACT to a copy)");
  setenv("V4_EMU_MODULE_DIR", V4_FORK_TEST_MODULES, /*overwrite=*/0); // where the emulator finds the host module
  try {
    return CudaModel::load(path, options);
  } catch (const NoCudaDevice &) {
    return nullptr;
  }
}

} // namespace v4rt::cuda
