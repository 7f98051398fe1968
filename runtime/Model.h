// A loaded artifact bound to the CPU backend: every plan step resolved to a
// kernel once, so running a bucket is a loop over function pointers.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runtime/artifact/ArtifactReader.h"
#include "runtime/cpu/CpuKernels.h"
#include "runtime/cpu/ThreadPool.h"

namespace v4rt {

struct BoundStep {
  CpuKernelFn fn = nullptr;
  const Step *step = nullptr;
  std::vector<std::vector<float>> floatAttrs; // step->attrs[i].floats as f32
  // Reads or writes a session cache: in a batched decode bucket it runs once
  // per session row (runtime/DecodeBatch.cpp); the other steps run once.
  bool perSession = false;
  // Decode buckets: bytes of one session's row of each in / out (token-major
  // arena, input and output operands; 0 for weights and caches).
  std::vector<uint64_t> inRowBytes, outRowBytes;
};

struct BoundBucket {
  const Bucket *bucket = nullptr;
  std::vector<BoundStep> steps;
};

struct LoadOptions {
  unsigned threads = 0;        // 0: one per core
  bool verifyChecksums = true; // hash every weight at load
};

class Model {
public:
  static std::unique_ptr<Model> load(const std::string &path, const LoadOptions &options = {});

  const Program &program() const { return artifact_->program(); }
  std::string identity() const { return artifact_->identity(); }
  int64_t vocabSize() const { return vocabSize_; }
  // The largest prefill chunk and the decode step (tokens == 1).
  const BoundBucket &prefillBucket() const { return buckets_[prefillIndex_]; }
  const BoundBucket &decodeBucket() const { return buckets_[decodeIndex_]; }
  // Continuous batching: the decode bucket of the fewest sessions >= n, else
  // the largest one (the caller splits); null when the artifact has none.
  const BoundBucket *decodeBucketFor(int64_t sessions) const;
  // Sessions per decode bucket, ascending (v4c compile --decode-batch).
  const std::vector<int64_t> &decodeBatches() const { return decodeBatches_; }
  // Index of the "ids" input in program().inputs (the other is "positions").
  uint32_t idsInput() const { return idsInput_; }
  uint64_t maxArenaBytes() const { return maxArenaBytes_; }
  ThreadPool &pool() const { return *pool_; }

private:
  Model() = default;
  void bind(const std::string &path);

  std::unique_ptr<Artifact> artifact_;
  std::unique_ptr<ThreadPool> pool_;
  std::vector<BoundBucket> buckets_;
  size_t prefillIndex_ = 0, decodeIndex_ = 0;
  std::vector<int64_t> decodeBatches_;     // ascending
  std::vector<size_t> decodeBatchIndices_; // buckets_ index of each
  uint32_t idsInput_ = 0;
  int64_t vocabSize_ = 0;
  uint64_t maxArenaBytes_ = 0;
};

} // namespace v4rt
