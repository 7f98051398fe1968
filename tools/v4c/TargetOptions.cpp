#include "tools/v4c/TargetOptions.h"

#include "codegen/cuda/CudaCodegen.h"
#include "common/Error.h"

namespace v4c {

bool isCudaTarget(const std::string &target) { return cuda::isCudaTarget(target); }

void checkTargetOptions(const std::string &target, const std::string &precision, const std::string &weights,
                        const std::string &tensorCores) {
  check(target == "cpu" || isCudaTarget(target),
        "unknown target '" + target + "'; valid targets: " + cuda::validTargetList());
  check(precision == "fp32" || precision == "bf16" || precision == "fp8",
        "unknown precision '" + precision + "'; valid: fp32, bf16, fp8");
  check(precision != "bf16" || target != "cpu", "bf16 needs a CUDA target; the CPU backend runs fp32 and fp8");
  check(weights == "checkpoint" || weights == "dummy",
        "unknown --weights '" + weights + "'; valid: checkpoint (read the safetensors), dummy (generated at load)");
  cuda::CudaTargetOptions cudaOptions;
  cudaOptions.tensorCores = cuda::parseTensorCores(tensorCores);
  cuda::checkTargetOptions(target, cudaOptions); // wgmma: sm_90a only, so never cpu
}

std::string activationPrecision(const std::string &target, const std::string &precision) {
  return isCudaTarget(target) && (precision == "bf16" || precision == "fp8") ? "bf16" : "fp32";
}

void finishForTarget(v4rt::Program &program, const std::string &keepSourceDir, const std::string &tensorCores) {
  if (!isCudaTarget(program.target))
    return;
  cuda::CudaCompileOptions options;
  options.keepSourceDir = keepSourceDir;
  options.target.tensorCores = cuda::parseTensorCores(tensorCores);
  cuda::compileProgramForCuda(program, options);
}

} // namespace v4c
