// v4bench-agent's view of a model: sessions that prefill a context (restoring
// cached pages) and decode, and the prefix cache's tiers. Two backends: cpu
// artifacts through the C API (runtime/api, host -> disk tiers), GPU
// artifacts through the CUDA backend (runtime/cuda: device -> pinned host ->
// disk, runtime/cuda/CudaPrefixCache.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace v4bench {

struct TraceCacheOptions {
  std::string directory; // disk tier; empty: none
  uint64_t deviceBytes = 0, hostBytes = 0, diskBytes = 0; // 0: no device / host tier; disk: 16 GiB
  std::string swaCache = "full";
};

struct TraceTier {
  std::string name; // "device", "host (pinned)", "host", "disk"
  uint64_t pages = 0, bytes = 0, pinnedBytes = 0, pinFailures = 0;
};

struct TraceCacheStats {
  std::vector<TraceTier> tiers; // top to bottom
  uint64_t windowTokensRecomputed = 0;
  const TraceTier *find(const std::string &prefix) const; // first tier whose name starts so
};

class TraceSession {
public:
  virtual ~TraceSession() = default;
  // Feeds the whole context; returns the last row's logits and, in
  // `reused`, the prompt tokens restored from the cache.
  virtual std::vector<float> prefillLast(const std::vector<int32_t> &ids, int64_t &reused) = 0;
  virtual std::vector<float> decode(int32_t id) = 0;
};

class TraceModel {
public:
  virtual ~TraceModel() = default;
  virtual int64_t vocabSize() const = 0;
  // Sessions made afterwards use the cache.
  virtual void attachCache(const TraceCacheOptions &options) = 0;
  virtual TraceCacheStats cacheStats() const = 0;
  virtual std::unique_ptr<TraceSession> newSession() = 0;
};

// "cpu", "sm_90a", ... (read without hashing the weights).
std::string artifactTarget(const std::string &path);
std::unique_ptr<TraceModel> openCpuTraceModel(const std::string &path, unsigned threads, bool verifyChecksums);
// GPU artifacts: sessions up to `maxContext` tokens. Throws where the bench
// was built without the CUDA backend or no device runs the target.
std::unique_ptr<TraceModel> openCudaTraceModel(const std::string &path, int64_t maxContext, bool verifyChecksums);

} // namespace v4bench
