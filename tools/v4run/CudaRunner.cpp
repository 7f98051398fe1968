// The CUDA backend behind the Runner interface. Built only when <cuda.h> is
// available (V4RUN_HAVE_CUDA); otherwise openCudaRunner explains what is missing.
#include "tools/v4run/Runner.h"

#include "common/Error.h"

#ifdef V4RUN_HAVE_CUDA
#include "runtime/cuda/CudaModel.h"
#include "runtime/cuda/CudaSession.h"
#endif

namespace v4run {

#ifdef V4RUN_HAVE_CUDA
namespace {

class CudaRunnerSession final : public RunnerSession {
public:
  CudaRunnerSession(const v4rt::cuda::CudaModel &model, const v4rt::cuda::CudaSessionOptions &options)
      : session_(model, options) {}
  void prefill(const int32_t *ids, int64_t count, float *logits) override {
    session_.prefill(ids, count, logits, false);
  }
  void prefillLast(const int32_t *ids, int64_t count, float *lastLogits) override {
    session_.prefill(ids, count, lastLogits, true);
  }
  void decode(int32_t id, float *logits) override { session_.decode(id, logits); }
  int64_t position() const override { return session_.position(); }
  double lastDecodeDeviceMs() const override { return session_.lastDecodeMilliseconds(); }

private:
  v4rt::cuda::CudaSession session_;
};

class CudaRunner final : public Runner {
public:
  CudaRunner(const std::string &path, const RunnerOptions &options) {
    v4rt::cuda::CudaLoadOptions load;
    load.verifyChecksums = options.verifyChecksums;
    load.maxContext = options.maxContext;
    model_ = v4rt::cuda::CudaModel::load(path, load);
  }
  const v4rt::Program &program() const override { return model_->program(); }
  int64_t vocabSize() const override { return model_->vocabSize(); }
  std::string describe() const override {
    const auto &device = model_->device();
    return "cuda: " + device.name() + " (" + std::to_string(device.ccMajor()) + "." +
           std::to_string(device.ccMinor()) + "), max context " + std::to_string(model_->maxContext());
  }
  int64_t prefillChunk() const override { return model_->prefillBucket().bucket->tokens; }
  std::unique_ptr<RunnerSession> newSession(bool useGraphs) override {
    v4rt::cuda::CudaSessionOptions options;
    options.useGraphs = useGraphs;
    return std::make_unique<CudaRunnerSession>(*model_, options);
  }

private:
  std::unique_ptr<v4rt::cuda::CudaModel> model_;
};

} // namespace

std::unique_ptr<Runner> openCudaRunner(const std::string &path, const RunnerOptions &options) {
  return std::make_unique<CudaRunner>(path, options);
}
#else
std::unique_ptr<Runner> openCudaRunner(const std::string &path, const RunnerOptions &) {
  throw v4c::Error(path + ": targets '" + artifactTarget(path) +
                   "', but this v4run was built without the CUDA backend (cuda.h was not found at build time)");
}
#endif

} // namespace v4run
