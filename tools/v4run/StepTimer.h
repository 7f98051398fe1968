// How `v4run profile` times one bucket's launches on a backend: the CPU
// reference runtime (host clock between step-hook calls, ProfileCommand.cpp)
// or the CUDA backend (CUDA events around each launch, CudaProfile.cpp).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/artifact/Program.h"
#include "tools/v4run/StepWork.h"

namespace v4run {

struct StepTimings {
  std::vector<std::vector<double>> stepUs; // [step][timed run] microseconds
  std::vector<double> bucketUs;            // [timed run] the whole bucket, first launch to last
};

class StepTimer {
public:
  virtual ~StepTimer() = default;
  virtual const v4rt::Program &program() const = 0;
  virtual std::string describe() const = 0;
  virtual std::string clock() const = 0; // "cuda events", "host clock"
  // Gives `sessions` sessions `context` tokens of state; `tiled`: compute
  // only the first `fillChunk` tokens and tile their compressed entries.
  // Returns the seconds it took.
  virtual double fill(int64_t context, int64_t sessions, bool tiled, int64_t fillChunk) = 0;
  // Runs `bucket` (of program()) warmup + repeat times at `run` and returns
  // the timed runs.
  virtual StepTimings time(const v4rt::Bucket &bucket, const RunShape &run, int64_t warmup, int64_t repeat) = 0;
};

// The median of samples (profile's and bench's per-step statistic).
double median(std::vector<double> values);

std::unique_ptr<StepTimer> openCpuStepTimer(const std::string &path, unsigned threads);
// Throws v4rt::cuda::NoCudaDevice without a device, and a v4c::Error when
// this v4run was built without the CUDA backend.
// `graphs`: the bucket runs as one CUDA graph between the timed runs and in
// front of them (`prime` replays; < 0: enough to cover the host's enqueue
// time, from the warm-up runs); false: plain launches only.
std::unique_ptr<StepTimer> openCudaStepTimer(const std::string &path, int64_t maxContext, bool graphs,
                                             int64_t prime);

} // namespace v4run
