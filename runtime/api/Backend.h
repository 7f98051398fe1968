// The backends behind the C API (runtime/api/v4rt.h): one model and session
// interface that the CPU backend (CpuBackend.cpp: runtime/Model, Session) and
// the CUDA backend (CudaBackend.cpp: runtime/cuda) implement, so v4rt.cpp only
// checks handles and turns exceptions into statuses. Internal: not installed,
// not part of the C ABI.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/PrefixCache.h"

namespace v4rt::api {

struct ModelOptions {
  unsigned threads = 0;          // CPU: worker threads (0: one per core)
  bool verifyChecksums = true;   // hash every weight at load
  int64_t maxContext = 0;        // GPU: tokens per session (0: max_position_embeddings)
  uint64_t deviceKvBytes = 0;    // GPU: device KV pool budget (0: most of the free memory)
  int64_t deviceKvSessions = 0;  // GPU: pool of exactly this many sessions (deviceKvBytes 0)
};

struct CacheOptions {
  PrefixCacheOptions tiers;      // host and disk tiers, tenant, window strategy
  uint64_t deviceBytes = 0;      // GPU: device page tier budget (0: none)
};

class BackendModel;

class BackendSession {
public:
  virtual ~BackendSession() = default;
  virtual const BackendModel &model() const = 0;
  // Feeds `count` tokens; `logits` (may be null) receives count x vocab floats.
  virtual void prefill(const int32_t *ids, int64_t count, float *logits) = 0;
  // Feeds `count` tokens, restoring a cached prefix in a fresh session;
  // `lastLogits` (may be null) receives the last row. Returns the prompt
  // tokens not computed.
  virtual int64_t prefillLast(const int32_t *ids, int64_t count, float *lastLogits) = 0;
  virtual void decode(int32_t id, float *logits) = 0;
  virtual int64_t position() const = 0;
  virtual int64_t prefillTokensComputed() const = 0;
  virtual std::unique_ptr<BackendSession> fork(int64_t position) const = 0;
  virtual void truncate(int64_t position) = 0;
};

class BackendModel {
public:
  virtual ~BackendModel() = default;
  virtual const std::string &target() const = 0;
  virtual const std::string &identity() const = 0;
  virtual int64_t vocabSize() const = 0;
  // Session counts of the decode buckets, ascending.
  virtual const std::vector<int64_t> &decodeBatchSizes() const = 0;
  // Replaces the prefix cache; sessions created afterwards use it.
  virtual void attachCache(const CacheOptions &options) = 0;
  // Null until attachCache.
  virtual const PrefixCache *cache() const = 0;
  virtual std::unique_ptr<BackendSession> newSession() = 0;
  // One continuous-batching decode step: ids[i] to sessions[i], n distinct
  // sessions of this model (the caller checked they are this model's);
  // `logits` (may be null) receives n x vocab floats.
  virtual void decodeBatch(BackendSession *const *sessions, size_t n, const int32_t *ids, float *logits) = 0;
};

// Opens `path` on the backend of its target (readArtifactTarget): "cpu" on
// the CPU backend, anything else on the CUDA backend.
std::unique_ptr<BackendModel> openBackendModel(const std::string &path, const ModelOptions &options);

std::unique_ptr<BackendModel> openCpuModel(const std::string &path, const ModelOptions &options);
// Throws NoCudaDevice ("no CUDA device: ...") where no device runs `target`,
// and a one-line error where the library was built without the CUDA backend.
std::unique_ptr<BackendModel> openCudaModel(const std::string &path, const std::string &target,
                                            const ModelOptions &options);

} // namespace v4rt::api
