#include "tools/v4run/Runner.h"

#include <thread>

#include "common/Error.h"
#include "runtime/DecodeBatch.h"
#include "runtime/Model.h"
#include "runtime/Session.h"
#include "runtime/artifact/ArtifactReader.h"

namespace v4run {
namespace {

class CpuSession final : public RunnerSession {
public:
  explicit CpuSession(const v4rt::Model &model) : session_(model) {}
  void prefill(const int32_t *ids, int64_t count, float *logits) override {
    session_.prefill(ids, count, logits, v4rt::PrefillLogits::AllRows);
  }
  void prefillLast(const int32_t *ids, int64_t count, float *lastLogits) override {
    session_.prefill(ids, count, lastLogits, v4rt::PrefillLogits::LastRow);
  }
  void decode(int32_t id, float *logits) override { session_.decode(id, logits); }
  int64_t position() const override { return session_.position(); }
  v4rt::Session &session() { return session_; }

private:
  v4rt::Session session_;
};

class CpuRunner final : public Runner {
public:
  CpuRunner(const std::string &path, const RunnerOptions &options) : threads_(options.threads) {
    v4rt::LoadOptions load;
    load.threads = options.threads;
    load.verifyChecksums = options.verifyChecksums;
    model_ = v4rt::Model::load(path, load);
  }
  const v4rt::Program &program() const override { return model_->program(); }
  int64_t vocabSize() const override { return model_->vocabSize(); }
  std::string describe() const override {
    const unsigned threads = threads_ ? threads_ : std::max(1u, std::thread::hardware_concurrency());
    return "cpu (" + std::to_string(threads) + " threads)";
  }
  int64_t prefillChunk() const override { return model_->prefillBucket().bucket->tokens; }
  std::unique_ptr<RunnerSession> newSession(bool) override { return std::make_unique<CpuSession>(*model_); }
  void decodeBatch(RunnerSession *const *sessions, size_t n, const int32_t *ids, float *logits) override {
    std::vector<v4rt::Session *> cpuSessions;
    for (size_t i = 0; i < n; ++i) {
      auto *session = dynamic_cast<CpuSession *>(sessions[i]);
      v4c::check(session != nullptr, "decodeBatch: session " + std::to_string(i) + " is not a cpu session");
      cpuSessions.push_back(&session->session());
    }
    v4rt::decodeBatch(cpuSessions.data(), n, ids, logits);
  }

private:
  std::unique_ptr<v4rt::Model> model_;
  unsigned threads_ = 0;
};

} // namespace

void Runner::decodeBatch(RunnerSession *const *, size_t n, const int32_t *, float *) {
  throw v4c::Error("batched decode of " + std::to_string(n) + " sessions is not available on " + describe() +
                   " yet; use --batch 1");
}

void Runner::attachPrefixCache(const v4rt::PrefixCacheOptions &, uint64_t) {
  throw v4c::Error("prefix reuse through the runner is not available on " + describe());
}

std::string artifactTarget(const std::string &path) { return v4rt::readArtifactTarget(path); }

bool isDeviceTarget(const std::string &target) { return target != "cpu"; }

std::unique_ptr<Runner> openRunner(const std::string &path, const RunnerOptions &options) {
  if (isDeviceTarget(artifactTarget(path)))
    return openCudaRunner(path, options);
  return std::make_unique<CpuRunner>(path, options);
}

std::vector<int32_t> syntheticIds(int64_t count, int64_t vocab, uint64_t seed) {
  v4c::check(vocab > 0, "vocab size must be positive");
  std::vector<int32_t> ids(static_cast<size_t>(count));
  uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
  for (int64_t i = 0; i < count; ++i) {
    state ^= state << 13; // xorshift64: cheap and well spread
    state ^= state >> 7;
    state ^= state << 17;
    ids[static_cast<size_t>(i)] = static_cast<int32_t>(state % static_cast<uint64_t>(vocab));
  }
  return ids;
}

} // namespace v4run
