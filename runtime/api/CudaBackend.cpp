// The C API's CUDA backend: runtime/cuda's CudaModel and CudaSession, batched
// decode through CudaDecodeBatch, the prefix cache's device -> pinned host ->
// disk tiers (makeCudaPrefixCache). Built only with the CUDA backend (cuda.h
// at configure time); NoCudaBackend.cpp stands in otherwise.
//
// Sessions of one model share its stream, bucket buffers and KV pool, so
// every call that touches the device holds the model's mutex (the C API lets
// sessions of one model be used from different threads) and makes the
// device's context current on the calling thread.
#include "runtime/api/Backend.h"

#include <algorithm>
#include <exception>
#include <mutex>

#include "common/Error.h"
#include "runtime/cuda/CudaDecodeBatch.h"
#include "runtime/cuda/CudaModel.h"
#include "runtime/cuda/CudaPrefixCache.h"
#include "runtime/cuda/CudaSession.h"

namespace v4rt::api {
namespace {

class CudaModel;

class CudaSession final : public BackendSession {
public:
  CudaSession(const CudaModel &model, std::unique_ptr<cuda::CudaSession> session)
      : model_(model), session_(std::move(session)) {}
  ~CudaSession() override;
  const BackendModel &model() const override;
  void prefill(const int32_t *ids, int64_t count, float *logits) override;
  int64_t prefillLast(const int32_t *ids, int64_t count, float *lastLogits) override;
  void decode(int32_t id, float *logits) override;
  int64_t position() const override { return session_->position(); }
  int64_t prefillTokensComputed() const override { return session_->prefillTokensComputed(); }
  std::unique_ptr<BackendSession> fork(int64_t position) const override;
  void truncate(int64_t position) override;
  cuda::CudaSession &session() { return *session_; }

private:
  const CudaModel &model_;
  std::unique_ptr<cuda::CudaSession> session_;
};

class CudaModel final : public BackendModel {
public:
  CudaModel(const std::string &path, const std::string &target, const ModelOptions &options) : target_(target) {
    cuda::CudaLoadOptions load;
    load.verifyChecksums = options.verifyChecksums;
    load.maxContext = options.maxContext;
    load.deviceKvBytes = options.deviceKvBytes;
    load.deviceKvSessions = options.deviceKvSessions;
    model_ = cuda::CudaModel::load(path, load);
    identity_ = model_->identity();
    decodeBatchSizes_ = v4rt::decodeBatchSizes(model_->program());
  }
  // The members free device memory and events: on the closing thread, the
  // device's context must be current.
  ~CudaModel() override { lockForClose(); }
  const std::string &target() const override { return target_; }
  const std::string &identity() const override { return identity_; }
  int64_t vocabSize() const override { return model_->vocabSize(); }
  const std::vector<int64_t> &decodeBatchSizes() const override { return decodeBatchSizes_; }
  void attachCache(const CacheOptions &options) override {
    auto lock = lockDevice();
    cache_.reset(); // its device tier's memory is free before the new one takes its budget
    cache_ = cuda::makeCudaPrefixCache(*model_, options.tiers, options.deviceBytes);
  }
  const PrefixCache *cache() const override { return cache_.get(); }
  std::unique_ptr<BackendSession> newSession() override {
    auto lock = lockDevice();
    cuda::CudaSessionOptions options;
    options.prefixCache = cache_.get();
    return std::make_unique<CudaSession>(*this, std::make_unique<cuda::CudaSession>(*model_, options));
  }
  void decodeBatch(BackendSession *const *sessions, size_t n, const int32_t *ids, float *logits) override {
    auto lock = lockDevice();
    std::vector<cuda::CudaSession *> batch(n);
    for (size_t i = 0; i < n; ++i)
      batch[i] = &static_cast<CudaSession *>(sessions[i])->session();
    if (!decodeBatch_) // its graphs are captured once per batched bucket, then replayed
      decodeBatch_ = std::make_unique<cuda::CudaDecodeBatch>(*model_);
    decodeBatch_->decode(batch.data(), n, ids, logits);
  }

  // Held by every call that touches the device; the context made current.
  std::unique_lock<std::mutex> lockDevice() const {
    std::unique_lock<std::mutex> lock(mutex_);
    model_->device().makeCurrent();
    return lock;
  }
  // The same for a session's destructor, which must not throw (a driver that
  // fails here fails the session's own cleanup calls too, which ignore it).
  std::unique_lock<std::mutex> lockForClose() const {
    std::unique_lock<std::mutex> lock(mutex_);
    try {
      model_->device().makeCurrent();
    } catch (const std::exception &) {
    }
    return lock;
  }

private:
  std::string target_, identity_;
  std::vector<int64_t> decodeBatchSizes_;
  mutable std::mutex mutex_;
  // Destroyed in reverse: the cache (its device tier frees device memory) and
  // the batched buckets go before the model.
  std::unique_ptr<cuda::CudaModel> model_;
  std::unique_ptr<PrefixCache> cache_; // sessions hold a pointer: they close first
  std::unique_ptr<cuda::CudaDecodeBatch> decodeBatch_;
};

CudaSession::~CudaSession() {
  // Leaving the KV pool and syncing the stream touch what other sessions use.
  std::unique_lock<std::mutex> lock = model_.lockForClose();
  session_.reset();
}

const BackendModel &CudaSession::model() const { return model_; }

void CudaSession::prefill(const int32_t *ids, int64_t count, float *logits) {
  auto lock = model_.lockDevice();
  session_->prefill(ids, count, logits, /*lastRowOnly=*/false);
}

int64_t CudaSession::prefillLast(const int32_t *ids, int64_t count, float *lastLogits) {
  auto lock = model_.lockDevice();
  return session_->prefill(ids, count, lastLogits, /*lastRowOnly=*/true);
}

void CudaSession::decode(int32_t id, float *logits) {
  auto lock = model_.lockDevice();
  session_->decode(id, logits);
}

std::unique_ptr<BackendSession> CudaSession::fork(int64_t position) const {
  auto lock = model_.lockDevice();
  return std::make_unique<CudaSession>(model_, session_->fork(position));
}

void CudaSession::truncate(int64_t position) {
  auto lock = model_.lockDevice();
  session_->truncate(position);
}

} // namespace

std::unique_ptr<BackendModel> openCudaModel(const std::string &path, const std::string &target,
                                            const ModelOptions &options) {
  return std::make_unique<CudaModel>(path, target, options);
}

} // namespace v4rt::api
