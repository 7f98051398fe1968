// Continuous batching on the GPU: one decode step for several CudaSessions of
// one model, run as one batched decode bucket (v4c compile --decode-batch
// 1,8,32,64 -> decode_8, ...), so every weight is read once per step, not
// once per session.
//
// Row r of the bucket is session r's next token at its own position; each
// cache argument of the bucket's kernels is a device table of the rows' slot
// bases (codegen/cuda/KernelEmitter.h, "Entry ABI"). A step:
//   1. pins the rows' sessions in the model's DeviceKvPool (swapping in a
//      preempted one; none preempts another during the step);
//   2. writes the slot tables, ids, positions and dyn (dyn[0] = rows present)
//      into one pinned staging buffer and copies them to the bucket's device
//      buffers, async on the model's stream;
//   3. replays the bucket as a CUDA graph, captured on its first use (the
//      tables, arena and buffers have fixed addresses; only their contents
//      change), or launches the steps one by one (useGraphs off, V4_CUDA_SYNC);
//   4. copies the rows' logits back and advances each session as its own
//      decode() would.
// Sessions join and leave between steps by being in the list or not.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/cuda/CudaModel.h"

namespace v4rt::cuda {

class CudaSession;

class CudaDecodeBatch {
public:
  // useGraphs off: plain launches (the graph-vs-launch check); V4_CUDA_SYNC=1
  // also synchronises after every launch, naming a failing kernel.
  explicit CudaDecodeBatch(const CudaModel &model, bool useGraphs = true);
  ~CudaDecodeBatch();
  CudaDecodeBatch(const CudaDecodeBatch &) = delete;
  CudaDecodeBatch &operator=(const CudaDecodeBatch &) = delete;

  // Sessions per batched decode bucket (B > 1), ascending; empty when the
  // artifact was compiled with --decode-batch 1 only.
  std::vector<int64_t> batchSizes() const;

  // Feeds ids[i] to sessions[i] (n distinct sessions of this model) as one
  // decode step: the smallest batched bucket with B >= n, or runs of the
  // largest one when n exceeds it; a run of one session (or an artifact
  // without batched buckets) is that session's own decode(). `logits`
  // receives n x vocab floats, row i for session i, or nothing when null.
  // Returns the bucket runs taken. Throws v4c::Error before running
  // anything on a null or repeated session, a session of another model or
  // with a step observer, an id out of range or a full context.
  int64_t decode(CudaSession *const *sessions, size_t n, const int32_t *ids, float *logits);

  // Device time of the last decode() (CUDA events around its runs), ms.
  float lastStepMilliseconds() const { return lastStepMs_; }

private:
  struct BatchedBucket;
  void check(CudaSession *const *sessions, size_t n, const int32_t *ids) const;
  BatchedBucket &bucketFor(int64_t sessions);
  // One run of `bucket` over sessions [0, count); returns its device ms.
  float run(BatchedBucket &bucket, CudaSession *const *sessions, int64_t count, const int32_t *ids, float *logits);
  void stage(BatchedBucket &bucket, CudaSession *const *sessions, int64_t count, const int32_t *ids);
  void launchSteps(BatchedBucket &bucket);
  void replayGraph(BatchedBucket &bucket);

  const CudaModel &model_;
  bool useGraphs_ = true;
  bool syncEachStep_ = false;
  std::vector<std::unique_ptr<BatchedBucket>> buckets_; // ascending batch
  float lastStepMs_ = 0.0f;
};

} // namespace v4rt::cuda
