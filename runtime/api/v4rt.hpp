// C++ wrappers over the C API: RAII handles, errors as v4rt::RuntimeError.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "runtime/api/v4rt.h"

namespace v4rt {

class RuntimeError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

inline void throwIfError(v4rt_status status) {
  if (!status)
    return;
  std::string message = v4rt_status_message(status);
  v4rt_status_free(status);
  throw RuntimeError(message);
}

class ModelHandle {
public:
  explicit ModelHandle(const std::string &path, unsigned threads = 0, bool verifyChecksums = true) {
    v4rt_model_options options{};
    options.threads = threads;
    options.verify_checksums = verifyChecksums ? 1u : 0u;
    throwIfError(v4rt_model_open(path.c_str(), &options, &model_));
  }
  // All of v4rt_model_options (GPU artifacts: max_context, device KV pool).
  ModelHandle(const std::string &path, const v4rt_model_options &options) {
    throwIfError(v4rt_model_open(path.c_str(), &options, &model_));
  }
  ~ModelHandle() { v4rt_model_close(model_); }
  ModelHandle(const ModelHandle &) = delete;
  ModelHandle &operator=(const ModelHandle &) = delete;

  // Options as in v4rt_cache_options; sessions created afterwards use the cache.
  void attachCache(const std::string &directory, uint64_t diskBytes = 0, uint64_t hostBytes = 0,
                   const std::string &tenantSalt = "", const std::string &swaCache = "full",
                   uint64_t deviceBytes = 0) {
    v4rt_cache_options options{};
    options.directory = directory.c_str();
    options.disk_bytes = diskBytes;
    options.host_bytes = hostBytes;
    options.tenant_salt = tenantSalt.c_str();
    options.swa_cache = swaCache.c_str();
    options.device_bytes = deviceBytes;
    throwIfError(v4rt_model_attach_cache(model_, &options));
  }
  v4rt_cache_stats cacheStats() const {
    v4rt_cache_stats stats{};
    throwIfError(v4rt_model_cache_stats(model_, &stats));
    return stats;
  }

  int64_t vocabSize() const { return v4rt_model_vocab_size(model_); }
  std::string identity() const { return v4rt_model_identity(model_); }
  // "cpu", "sm_90a", ...: the backend the model runs on.
  std::string target() const { return v4rt_model_target(model_); }
  // Session counts of the decode buckets, ascending (see decodeBatch).
  std::vector<int64_t> decodeBatchSizes() const {
    std::vector<int64_t> sizes(v4rt_model_decode_batch_sizes(model_, nullptr, 0));
    v4rt_model_decode_batch_sizes(model_, sizes.data(), sizes.size());
    return sizes;
  }
  v4rt_model *get() const { return model_; }

private:
  v4rt_model *model_ = nullptr;
};

class SessionHandle {
public:
  explicit SessionHandle(const ModelHandle &model) : vocab_(model.vocabSize()) {
    throwIfError(v4rt_session_create(model.get(), &session_));
  }
  ~SessionHandle() { v4rt_session_close(session_); }
  SessionHandle(const SessionHandle &) = delete;
  SessionHandle &operator=(const SessionHandle &) = delete;
  SessionHandle(SessionHandle &&other) noexcept
      : session_(other.session_), vocab_(other.vocab_) {
    other.session_ = nullptr;
  }
  SessionHandle &operator=(SessionHandle &&other) noexcept {
    if (this != &other) {
      v4rt_session_close(session_);
      session_ = other.session_;
      vocab_ = other.vocab_;
      other.session_ = nullptr;
    }
    return *this;
  }

  // Returns ids.size() x vocab logits.
  std::vector<float> prefill(const std::vector<int32_t> &ids) {
    std::vector<float> logits(ids.size() * static_cast<size_t>(vocab_));
    throwIfError(v4rt_session_prefill(session_, ids.data(), ids.size(), logits.data()));
    return logits;
  }
  // Returns the last row's vocab logits; `tokensReused` (if given) receives
  // the prompt tokens restored from the model's cache and not run again.
  std::vector<float> prefillLast(const std::vector<int32_t> &ids, int64_t *tokensReused = nullptr) {
    std::vector<float> logits(static_cast<size_t>(vocab_));
    throwIfError(v4rt_session_prefill_last(session_, ids.data(), ids.size(), logits.data(),
                                           tokensReused));
    return logits;
  }
  std::vector<float> decode(int32_t id) {
    std::vector<float> logits(static_cast<size_t>(vocab_));
    throwIfError(v4rt_session_decode(session_, id, logits.data()));
    return logits;
  }
  int64_t position() const { return v4rt_session_position(session_); }

  // A new session equal to this one after its first `position` tokens.
  SessionHandle fork(int64_t position) const {
    v4rt_session *child = nullptr;
    throwIfError(v4rt_session_fork(session_, position, &child));
    return SessionHandle(child, vocab_);
  }
  // Rolls back to the first `position` tokens.
  void truncate(int64_t position) { throwIfError(v4rt_session_truncate(session_, position)); }
  // Tokens this session ran through prefill plans (not restored, not inherited).
  int64_t prefillTokensComputed() const { return v4rt_session_prefill_tokens_computed(session_); }
  v4rt_session *get() const { return session_; }
  int64_t vocabSize() const { return vocab_; }

private:
  SessionHandle(v4rt_session *session, int64_t vocab) : session_(session), vocab_(vocab) {}

  v4rt_session *session_ = nullptr;
  int64_t vocab_ = 0;
};

// Continuous batching: one decode step feeding ids[i] to *sessions[i] (as
// v4rt_decode_batch); returns sessions.size() x vocab logits, row i for
// sessions[i].
inline std::vector<float> decodeBatch(const std::vector<SessionHandle *> &sessions,
                                      const std::vector<int32_t> &ids) {
  if (ids.size() != sessions.size())
    throw RuntimeError("decodeBatch: " + std::to_string(ids.size()) + " ids for " +
                       std::to_string(sessions.size()) + " sessions; give one id per session");
  std::vector<v4rt_session *> handles;
  int64_t vocab = 0;
  for (SessionHandle *session : sessions) {
    handles.push_back(session ? session->get() : nullptr);
    if (session)
      vocab = session->vocabSize();
  }
  std::vector<float> logits(sessions.size() * static_cast<size_t>(vocab));
  throwIfError(v4rt_decode_batch(handles.data(), handles.size(), ids.data(), logits.data()));
  return logits;
}

} // namespace v4rt
