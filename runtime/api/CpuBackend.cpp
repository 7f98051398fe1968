// The C API's CPU backend: runtime/Model and Session, batched decode through
// runtime/DecodeBatch, the prefix cache's host -> disk tiers.
#include "runtime/api/Backend.h"

#include "common/Error.h"
#include "runtime/DecodeBatch.h"
#include "runtime/Model.h"
#include "runtime/Session.h"

namespace v4rt::api {
namespace {

class CpuModel;

class CpuSession final : public BackendSession {
public:
  CpuSession(const CpuModel &model, std::unique_ptr<Session> session)
      : model_(model), session_(std::move(session)) {}
  const BackendModel &model() const override;
  void prefill(const int32_t *ids, int64_t count, float *logits) override {
    session_->prefill(ids, count, logits, PrefillLogits::AllRows);
  }
  int64_t prefillLast(const int32_t *ids, int64_t count, float *lastLogits) override {
    return session_->prefill(ids, count, lastLogits, PrefillLogits::LastRow);
  }
  void decode(int32_t id, float *logits) override { session_->decode(id, logits); }
  int64_t position() const override { return session_->position(); }
  int64_t prefillTokensComputed() const override { return session_->prefillTokensComputed(); }
  std::unique_ptr<BackendSession> fork(int64_t position) const override {
    return std::make_unique<CpuSession>(model_, session_->fork(position));
  }
  void truncate(int64_t position) override { session_->truncate(position); }
  Session &session() { return *session_; }

private:
  const CpuModel &model_;
  std::unique_ptr<Session> session_;
};

class CpuModel final : public BackendModel {
public:
  CpuModel(const std::string &path, const ModelOptions &options) {
    LoadOptions load;
    load.threads = options.threads;
    load.verifyChecksums = options.verifyChecksums;
    model_ = Model::load(path, load);
    identity_ = model_->identity();
  }
  const std::string &target() const override { return model_->program().target; }
  const std::string &identity() const override { return identity_; }
  int64_t vocabSize() const override { return model_->vocabSize(); }
  const std::vector<int64_t> &decodeBatchSizes() const override { return model_->decodeBatches(); }
  void attachCache(const CacheOptions &options) override {
    v4c::check(options.deviceBytes == 0, "v4rt_cache_options.device_bytes: a device page tier needs a GPU "
                                         "artifact (this one targets cpu)");
    cache_ = std::make_unique<PrefixCache>(*model_, options.tiers);
  }
  const PrefixCache *cache() const override { return cache_.get(); }
  std::unique_ptr<BackendSession> newSession() override {
    return std::make_unique<CpuSession>(*this, std::make_unique<Session>(*model_, cache_.get()));
  }
  void decodeBatch(BackendSession *const *sessions, size_t n, const int32_t *ids, float *logits) override {
    std::vector<Session *> batch(n);
    for (size_t i = 0; i < n; ++i)
      batch[i] = &static_cast<CpuSession *>(sessions[i])->session();
    v4rt::decodeBatch(batch.data(), n, ids, logits);
  }

private:
  std::unique_ptr<Model> model_;
  std::string identity_;
  std::unique_ptr<PrefixCache> cache_; // sessions hold a pointer: they close first
};

const BackendModel &CpuSession::model() const { return model_; }

} // namespace

std::unique_ptr<BackendModel> openCpuModel(const std::string &path, const ModelOptions &options) {
  return std::make_unique<CpuModel>(path, options);
}

} // namespace v4rt::api
