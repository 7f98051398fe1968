// A loaded GPU artifact bound to the CUDA backend: the module's entries
// resolved per step, the weights on the device (uploaded from the mapped file
// or filled by `v4_fill_dummy`), and per bucket one device arena, the input
// and output buffers and the `dyn` buffer (codegen/cuda/KernelEmitter.h).
//
// Sessions (CudaSession) own only their cache slots; every launch goes to the
// model's one stream, so sessions of one model run one after another.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/artifact/ArtifactReader.h"
#include "runtime/cuda/CudaDriver.h"
#include "runtime/cuda/DeviceKvPool.h"
#include "runtime/cuda/DeviceObjects.h"

namespace v4rt::cuda {

struct CudaLoadOptions {
  bool verifyChecksums = true;
  // Longest context a session supports (sizes the Entries slots); 0: the
  // config's max_position_embeddings.
  int64_t maxContext = 0;
  // Device bytes for sessions' cache slots (DeviceKvPool): sessions beyond
  // it are preempted to pinned host memory. 0: 90% of the memory free after
  // loading, less 256 MiB.
  uint64_t deviceKvBytes = 0;
  // When > 0 (and deviceKvBytes is 0): a pool of exactly this many sessions.
  int64_t deviceKvSessions = 0;
};

struct DeviceStep {
  const Step *step = nullptr;
  CUfunction function = nullptr;
  std::string where; // describeStep(): how errors name this launch
};

struct DeviceBucket {
  const Bucket *bucket = nullptr;
  DeviceBuffer arena;
  DeviceBuffer dyn;                  // int32 dyn[kDynValues]; dyn[0] = tokens present
  std::vector<DeviceBuffer> inputs;  // Program::inputs order, tokens x width each
  std::vector<DeviceBuffer> outputs; // Program::outputs order
  std::vector<DeviceStep> steps;
};

// A bucket's launches bound to one set of cache addresses (a session's slots,
// or a batched bucket's slot tables): per step the entry ABI's parameter
// values, and the pointers into them that cuLaunchKernel takes. Moving keeps
// the pointers valid (the inner vectors' storage does not move); copying
// would not, so it is not allowed.
struct BoundLaunches {
  std::vector<std::vector<uint64_t>> values;
  std::vector<std::vector<void *>> params;
  BoundLaunches() = default;
  BoundLaunches(BoundLaunches &&) = default;
  BoundLaunches &operator=(BoundLaunches &&) = default;
  BoundLaunches(const BoundLaunches &) = delete;
  BoundLaunches &operator=(const BoundLaunches &) = delete;
};

constexpr int64_t kDynValues = 16; // dyn[0] used; room for more dynamic values

class CudaModel {
public:
  static std::unique_ptr<CudaModel> load(const std::string &path, const CudaLoadOptions &options = {});
  ~CudaModel();
  CudaModel(const CudaModel &) = delete;
  CudaModel &operator=(const CudaModel &) = delete;

  const Program &program() const { return artifact_->program(); }
  std::string identity() const { return artifact_->identity(); }
  const CudaDevice &device() const { return *device_; }
  const DriverApi &api() const { return device_->api(); }
  CUstream stream() const { return stream_->get(); }
  int64_t vocabSize() const { return vocabSize_; }
  int64_t maxContext() const { return maxContext_; }
  DType logitsDtype() const { return program().outputs[0].dtype; }

  // The largest prefill chunk, and the decode step (the one-token, one-session
  // decode bucket, else the prefill chunk run for one token).
  const DeviceBucket &prefillBucket() const { return buckets_[prefillIndex_]; }
  const DeviceBucket &decodeBucket() const { return buckets_[decodeIndex_]; }
  const std::vector<DeviceBucket> &buckets() const { return buckets_; }
  CUdeviceptr weightAddress(size_t index) const { return weights_[index].get(); }
  uint64_t deviceBytes() const { return deviceBytes_; }
  // The parameters of every step of `bucket` with cache slot s at
  // `cacheAddresses[s]` (Program::caches order).
  BoundLaunches bindLaunches(const DeviceBucket &bucket, const std::vector<uint64_t> &cacheAddresses) const;
  // Launches one step on the model's stream; an error names the step.
  void launch(const DeviceStep &step, void **params) const;
  // Device bytes of one session's cache slots (every slot at maxContext).
  uint64_t sessionKvBytes() const;
  // The budget sessions' cache slots share (sessions run one call at a time).
  DeviceKvPool &kvPool() const { return *kvPool_; }

private:
  CudaModel() = default;
  void loadModules();
  void uploadWeights();
  void fillDummyWeight(size_t index);
  void bindBuckets();

  std::string path_;
  std::unique_ptr<Artifact> artifact_;
  const CudaDevice *device_ = nullptr;
  std::unique_ptr<Stream> stream_;
  std::vector<CUmodule> modules_;
  CUfunction fillDummy_ = nullptr;
  std::vector<DeviceBuffer> weights_;
  std::vector<DeviceBucket> buckets_;
  size_t prefillIndex_ = 0, decodeIndex_ = 0;
  int64_t vocabSize_ = 0, maxContext_ = 0;
  uint64_t deviceBytes_ = 0;
  std::unique_ptr<DeviceKvPool> kvPool_;
};

} // namespace v4rt::cuda
