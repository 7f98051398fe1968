// One interface over both backends for the v4run commands that only feed
// tokens and read logits (generate on GPU, verify, bench, consistency): the
// CPU Model/Session for "cpu" artifacts, the CUDA backend for sm_* ones.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/PrefixCache.h"
#include "runtime/artifact/Program.h"

namespace v4run {

// --batch of generate, bench and consistency: at most this many sessions
// decoding together (v4c's largest decode bucket).
inline constexpr int64_t kMaxBatchSessions = 4096;

struct RunnerOptions {
  unsigned threads = 0;        // CPU worker threads (0: one per core)
  bool verifyChecksums = true; // hash every weight at load
  int64_t maxContext = 0;      // GPU: longest session (0: the config's max_position_embeddings)
  uint64_t deviceKvBytes = 0;  // GPU: device KV pool for sessions' caches (0: from free memory)
  int64_t deviceKvSessions = 0; // GPU: else a pool of exactly this many max-context sessions
};

// The GPU runner's device KV pool (runtime/cuda/DeviceKvPool.h).
struct RunnerKvPoolStats {
  uint64_t byteBudget = 0, bytesInUse = 0, sessionBytes = 0;
  uint64_t residentSessions = 0, preemptions = 0, swapIns = 0, bytesMoved = 0;
};

class RunnerSession {
public:
  virtual ~RunnerSession() = default;
  // Feeds `count` tokens; `logits` (may be null) receives count x vocab floats.
  virtual void prefill(const int32_t *ids, int64_t count, float *logits) = 0;
  // Feeds `count` tokens; `lastLogits` receives the last row's vocab floats.
  virtual void prefillLast(const int32_t *ids, int64_t count, float *lastLogits) = 0;
  // Feeds one token; `logits` (may be null) receives vocab floats.
  virtual void decode(int32_t id, float *logits) = 0;
  virtual int64_t position() const = 0;
  // Device time of the last decode step in ms (CUDA events), or < 0 when the
  // backend has no device clock (CPU: callers time on the host).
  virtual double lastDecodeDeviceMs() const { return -1.0; }
  // Prompt tokens the last prefillLast restored from the prefix cache and
  // did not compute.
  virtual int64_t lastPrefillReused() const { return 0; }
};

class Runner {
public:
  virtual ~Runner() = default;
  virtual const v4rt::Program &program() const = 0;
  virtual int64_t vocabSize() const = 0;
  // "cpu (16 threads)", "cuda: NVIDIA H100 80GB HBM3 (9.0)".
  virtual std::string describe() const = 0;
  // Largest prefill chunk the backend runs.
  virtual int64_t prefillChunk() const = 0;
  // useGraphs (GPU): replay decode as a CUDA graph; off: plain launches.
  virtual std::unique_ptr<RunnerSession> newSession(bool useGraphs) = 0;
  std::unique_ptr<RunnerSession> newSession() { return newSession(true); }
  // One decode step for n sessions of this runner at once (continuous
  // batching: every weight read once); `logits` (may be null) receives
  // n x vocab floats. Throws where the backend has no batched decode.
  virtual void decodeBatch(RunnerSession *const *sessions, size_t n, const int32_t *ids, float *logits);
  // Device time of the last decodeBatch in ms (CUDA events), or < 0 without
  // a device clock.
  virtual double lastDecodeBatchDeviceMs() const { return -1.0; }
  // Prefix reuse for the sessions made afterwards (GPU runner: a "device"
  // page tier of `deviceTierBytes` on top of the options' host and disk
  // tiers, 0: none). Throws where the runner has none (the CPU path uses
  // the C API's cache).
  virtual void attachPrefixCache(const v4rt::PrefixCacheOptions &options, uint64_t deviceTierBytes);
  // Null before attachPrefixCache.
  virtual const v4rt::PrefixCache *prefixCache() const { return nullptr; }
  // False where the backend has no device KV pool.
  virtual bool kvPoolStats(RunnerKvPoolStats &) const { return false; }
};

// The artifact's target, read without hashing its weights.
std::string artifactTarget(const std::string &path);
bool isDeviceTarget(const std::string &target); // anything but "cpu"

// Opens `path` with the backend its target needs. GPU artifacts without a
// usable device throw v4rt::cuda::NoCudaDevice (a v4c::Error): "no CUDA
// device: <reason>; this artifact targets sm_90a".
std::unique_ptr<Runner> openRunner(const std::string &path, const RunnerOptions &options);

// The CUDA backend's runner (CudaRunner.cpp); builds without <cuda.h> throw.
std::unique_ptr<Runner> openCudaRunner(const std::string &path, const RunnerOptions &options);

// Deterministic, well-spread token ids in [0, vocab) for benches and checks.
std::vector<int32_t> syntheticIds(int64_t count, int64_t vocab, uint64_t seed = 1);

} // namespace v4run
