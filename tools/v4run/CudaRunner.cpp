// The CUDA backend behind the Runner interface. Built only when <cuda.h> is
// available (V4RUN_HAVE_CUDA); otherwise openCudaRunner explains what is missing.
#include "tools/v4run/Runner.h"

#include "common/Error.h"

#ifdef V4RUN_HAVE_CUDA
#include "runtime/cuda/CudaDecodeBatch.h"
#include "runtime/cuda/CudaModel.h"
#include "runtime/cuda/CudaSession.h"
#include "runtime/cuda/CudaPrefixCache.h"
#include "runtime/cuda/LaunchParams.h"
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
    reused_ = session_.prefill(ids, count, lastLogits, true);
  }
  int64_t lastPrefillReused() const override { return reused_; }
  void decode(int32_t id, float *logits) override { session_.decode(id, logits); }
  int64_t position() const override { return session_.position(); }
  double lastDecodeDeviceMs() const override { return session_.lastDecodeMilliseconds(); }
  v4rt::cuda::CudaSession &session() { return session_; }

private:
  v4rt::cuda::CudaSession session_;
  int64_t reused_ = 0;
};

class CudaRunner final : public Runner {
public:
  CudaRunner(const std::string &path, const RunnerOptions &options) {
    v4rt::cuda::CudaLoadOptions load;
    load.verifyChecksums = options.verifyChecksums;
    load.maxContext = options.maxContext;
    load.deviceKvBytes = options.deviceKvBytes;
    load.deviceKvSessions = options.deviceKvSessions;
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
    options.prefixCache = prefixCache_.get();
    return std::make_unique<CudaRunnerSession>(*model_, options);
  }
  void attachPrefixCache(const v4rt::PrefixCacheOptions &options, uint64_t deviceTierBytes) override {
    // device -> host (pinned) -> disk
    prefixCache_ = v4rt::cuda::makeCudaPrefixCache(*model_, options, deviceTierBytes);
  }
  const v4rt::PrefixCache *prefixCache() const override { return prefixCache_.get(); }
  void decodeBatch(RunnerSession *const *sessions, size_t n, const int32_t *ids, float *logits) override {
    std::vector<v4rt::cuda::CudaSession *> cudaSessions;
    for (size_t i = 0; i < n; ++i) {
      auto *session = dynamic_cast<CudaRunnerSession *>(sessions[i]);
      v4c::check(session != nullptr, "decodeBatch: session " + std::to_string(i) + " is not a session of this runner");
      cudaSessions.push_back(&session->session());
    }
    if (!decodeBatch_) // its graphs are captured once per batched bucket
      decodeBatch_ = std::make_unique<v4rt::cuda::CudaDecodeBatch>(*model_);
    decodeBatch_->decode(cudaSessions.data(), n, ids, logits);
  }
  double lastDecodeBatchDeviceMs() const override {
    return decodeBatch_ ? decodeBatch_->lastStepMilliseconds() : -1.0;
  }
  bool kvPoolStats(RunnerKvPoolStats &out) const override {
    const v4rt::cuda::DeviceKvPoolStats stats = model_->kvPool().stats();
    out.byteBudget = stats.byteBudget;
    out.bytesInUse = stats.bytesInUse;
    out.sessionBytes = model_->sessionKvBytes();
    out.residentSessions = stats.resident;
    out.preemptions = stats.preemptions;
    out.swapIns = stats.swapIns;
    out.bytesMoved = stats.bytesMoved;
    return true;
  }

private:
  std::unique_ptr<v4rt::cuda::CudaModel> model_;
  std::unique_ptr<v4rt::cuda::CudaDecodeBatch> decodeBatch_; // destroyed before the model
  // Destroyed before the model: its device tier frees device memory.
  std::unique_ptr<v4rt::PrefixCache> prefixCache_;
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
