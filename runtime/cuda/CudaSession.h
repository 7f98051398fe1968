// One sequence on the GPU: its cache slots (device memory only) and position.
//
// prefill runs the model's prefill bucket chunk by chunk; decode runs the
// decode bucket, captured into a CUDA graph on the first decode and replayed
// afterwards (ids, positions and dyn are copied into the bucket's buffers
// before each replay, all on the model's stream; the logits come back once
// per step).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/cuda/CudaModel.h"

namespace v4rt::cuda {

struct CudaSessionOptions {
  // Replay the decode bucket as a CUDA graph (off: plain launches, for the
  // graph-vs-launch equality check).
  bool useGraphs = true;
  // Synchronise after every launch so a failing kernel is named (also set by
  // the environment variable V4_CUDA_SYNC=1).
  bool syncEachStep = false;
};

// What the step observer sees after each launch (stepwise mode).
struct StepReport {
  const DeviceBucket *bucket = nullptr;
  size_t stepIndex = 0;
  int64_t tokens = 0;   // tokens present in this run (dyn[0])
  int64_t position = 0; // position of the run's first token
};

class CudaSession {
public:
  explicit CudaSession(const CudaModel &model, const CudaSessionOptions &options = {});
  ~CudaSession();
  CudaSession(const CudaSession &) = delete;
  CudaSession &operator=(const CudaSession &) = delete;

  // Feeds `count` tokens in chunks of the prefill bucket. `logits` receives
  // count x vocab floats, or only the last row's vocab floats when
  // `lastRowOnly`, or nothing when null.
  void prefill(const int32_t *ids, int64_t count, float *logits, bool lastRowOnly = false);
  // Feeds one token; `logits` (may be null) receives vocab floats.
  void decode(int32_t id, float *logits);
  int64_t position() const { return position_; }
  // Device time of the last decode step (CUDA events around the launches).
  float lastDecodeMilliseconds() const { return lastDecodeMs_; }

  // Stepwise mode (the compare tool): every launch is synchronised and
  // reported; graphs are not used while an observer is set.
  void setStepObserver(std::function<void(const StepReport &)> observer) { observer_ = std::move(observer); }
  // The current device contents of one argument of a bucket's step as
  // floats (any float or integer dtype): the `rows` leading rows of a
  // token-major arena/input/output argument (other shapes: all of it), the
  // first `rows` rows of a cache slot (at most those allocated), or a whole
  // weight.
  std::vector<float> readArgument(const DeviceBucket &bucket, const ArgRef &arg, int64_t rows) const;

private:
  struct Launches {
    std::vector<std::vector<uint64_t>> values; // per step: the ABI's parameter values
    std::vector<std::vector<void *>> params;   // per step: pointers into `values`
  };
  const Launches &launchesFor(const DeviceBucket &bucket);
  void checkIds(const int32_t *ids, int64_t count) const;
  void checkContext(int64_t count) const;
  // Copies ids, positions and dyn for a run of `count` tokens into the
  // bucket's buffers (async, on the model's stream).
  void stageInputs(const DeviceBucket &bucket, const int32_t *ids, int64_t count);
  void launchSteps(const DeviceBucket &bucket, int64_t count);
  void copyLogits(const DeviceBucket &bucket, int64_t firstRow, int64_t rows, float *logits);
  void replayDecodeGraph(const DeviceBucket &bucket);

  const CudaModel &model_;
  CudaSessionOptions options_;
  std::vector<DeviceBuffer> caches_; // Program::caches order
  std::vector<int64_t> cacheRows_;   // rows allocated per slot
  std::vector<std::unique_ptr<Launches>> launches_; // per model bucket, built on first use
  // ids | positions | dyn of one run, twice: a chunk is staged while the
  // previous one's copies may still be queued (each waits for its event).
  PinnedBuffer staging_[2];
  std::unique_ptr<Event> stagingCopied_[2];
  bool stagingPending_[2] = {false, false};
  int stagingNext_ = 0;
  PinnedBuffer decodeLogits_;        // one row of logits
  CUgraph graph_ = nullptr;
  CUgraphExec graphExec_ = nullptr;
  std::unique_ptr<Event> decodeStart_, decodeEnd_;
  float lastDecodeMs_ = 0.0f;
  int64_t position_ = 0;
  std::function<void(const StepReport &)> observer_;
};

} // namespace v4rt::cuda
