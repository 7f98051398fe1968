#include "runtime/cuda/CudaSession.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "common/Error.h"
#include "runtime/PagePayload.h"
#include "runtime/PrefixCache.h"
#include "runtime/cuda/GraphCapture.h"
#include "runtime/cuda/HostConvert.h"
#include "runtime/cuda/LaunchParams.h"

namespace v4rt::cuda {
namespace {

bool syncRequestedByEnvironment() {
  const char *value = std::getenv("V4_CUDA_SYNC");
  return value && *value && std::strcmp(value, "0") != 0;
}

int64_t maxBucketTokens(const CudaModel &model) {
  int64_t tokens = 1;
  for (const DeviceBucket &bucket : model.buckets())
    tokens = std::max(tokens, bucket.bucket->tokens);
  return tokens;
}

std::string nextSessionName() {
  static int counter = 0; // names only: errors say which session
  return "CUDA session " + std::to_string(++counter);
}

} // namespace

CudaSession::CudaSession(const CudaModel &model, const CudaSessionOptions &options)
    : model_(model), options_(options) {
  options_.syncEachStep = options_.syncEachStep || syncRequestedByEnvironment();
  model.device().makeCurrent();
  const DriverApi &api = model.api();
  // Registered with the pool now (an impossible size fails here); memory is
  // allocated (zeros: a fresh session's state, as on the CPU) when it first runs.
  slots_ = std::make_unique<KvSlots>(api, model.stream(), model.program().caches, model.maxContext(), model.kvPool(),
                                     nextSessionName());
  prefixCache_ = options.prefixCache;
  if (prefixCache_) {
    v4c::check(prefixCache_->slots().size() == model.program().caches.size(),
               "the prefix cache was made for another artifact's cache schema");
    pageTokens_ = prefixCache_->pageTokens();
  } else {
    pageTokens_ = pageTokensFor(model.program().caches);
  }
  launches_.resize(model.buckets().size());
  const int64_t tokens = maxBucketTokens(model);
  for (int i = 0; i < 2; ++i) {
    staging_[i] = PinnedBuffer(api, static_cast<uint64_t>(2 * tokens + kDynValues) * sizeof(int32_t), "input staging");
    stagingCopied_[i] = std::make_unique<Event>(api);
  }
  decodeLogits_ = PinnedBuffer(api, static_cast<uint64_t>(model.vocabSize()) * dtypeSize(model.logitsDtype()),
                               "logits staging");
  decodeStart_ = std::make_unique<Event>(api);
  decodeEnd_ = std::make_unique<Event>(api);
}

CudaSession::~CudaSession() {
  const DriverApi &api = model_.api();
  api.cuStreamSynchronize(model_.stream()); // nothing may still use the caches
  if (graphExec_)
    api.cuGraphExecDestroy(graphExec_);
  if (graph_)
    api.cuGraphDestroy(graph_);
}

void CudaSession::ensureResident() {
  model_.device().makeCurrent();
  slots_->ensureResident();
  refreshAddresses();
}

void CudaSession::refreshAddresses() {
  if (addressGeneration_ == slots_->generation())
    return;
  // Every table and the graph hold the old slot addresses.
  const DriverApi &api = model_.api();
  for (std::unique_ptr<BoundLaunches> &launches : launches_)
    launches.reset();
  if (graphExec_)
    api.cuGraphExecDestroy(graphExec_);
  if (graph_)
    api.cuGraphDestroy(graph_);
  graphExec_ = nullptr;
  graph_ = nullptr;
  addressGeneration_ = slots_->generation();
}

const BoundLaunches &CudaSession::launchesFor(const DeviceBucket &bucket) {
  refreshAddresses();
  const size_t index = static_cast<size_t>(&bucket - model_.buckets().data());
  std::unique_ptr<BoundLaunches> &slot = launches_.at(index);
  if (!slot) {
    std::vector<uint64_t> caches;
    for (size_t s = 0; s < slots_->size(); ++s)
      caches.push_back(slots_->address(s));
    slot = std::make_unique<BoundLaunches>(model_.bindLaunches(bucket, caches));
  }
  return *slot;
}

void CudaSession::checkIds(const int32_t *ids, int64_t count) const {
  for (int64_t i = 0; i < count; ++i)
    if (ids[i] < 0 || ids[i] >= model_.vocabSize())
      throw v4c::Error("token id " + std::to_string(ids[i]) + " is out of range (vocab size " +
                       std::to_string(model_.vocabSize()) + ")");
}

void CudaSession::checkContext(int64_t count) const {
  if (position_ + count > model_.maxContext())
    throw v4c::Error("position " + std::to_string(position_ + count - 1) + " would exceed the session's maximum " +
                     "context of " + std::to_string(model_.maxContext()) +
                     " tokens (raise --max-context, up to the model's max_position_embeddings)");
}

void CudaSession::stageInputs(const DeviceBucket &bucket, const int32_t *ids, int64_t count) {
  const DriverApi &api = model_.api();
  const int64_t tokens = bucket.bucket->tokens;
  const int slot = stagingNext_;
  stagingNext_ ^= 1;
  if (stagingPending_[slot])
    stagingCopied_[slot]->wait(); // its previous copies have read it
  int32_t *stagedIds = staging_[slot].data<int32_t>();
  int32_t *stagedPositions = stagedIds + tokens;
  int32_t *stagedDyn = stagedPositions + tokens;
  std::copy(ids, ids + count, stagedIds);
  for (int64_t t = 0; t < count; ++t)
    stagedPositions[t] = static_cast<int32_t>(position_ + t);
  std::fill(stagedDyn, stagedDyn + kDynValues, 0);
  stagedDyn[0] = static_cast<int32_t>(count);
  stagedDyn[1] = static_cast<int32_t>(frozenTokens_); // the compressor keeps entries below it
  const std::vector<IoSlot> &inputs = model_.program().inputs;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const int32_t *source = inputs[i].name == "ids" ? stagedIds : stagedPositions;
    checkCuda(api,
              api.cuMemcpyHtoDAsync(bucket.inputs[i].get(), source, static_cast<size_t>(count) * sizeof(int32_t),
                                    model_.stream()),
              "cuMemcpyHtoDAsync", "bucket " + bucket.bucket->name + " input " + inputs[i].name);
  }
  checkCuda(api, api.cuMemcpyHtoDAsync(bucket.dyn.get(), stagedDyn, kDynValues * sizeof(int32_t), model_.stream()),
            "cuMemcpyHtoDAsync", "bucket " + bucket.bucket->name + " dyn");
  stagingCopied_[slot]->record(model_.stream());
  stagingPending_[slot] = true;
}

void CudaSession::launchSteps(const DeviceBucket &bucket, int64_t count) {
  const DriverApi &api = model_.api();
  const BoundLaunches &launches = launchesFor(bucket);
  const bool stepwise = options_.syncEachStep || static_cast<bool>(observer_);
  for (size_t s = 0; s < bucket.steps.size(); ++s) {
    const DeviceStep &device = bucket.steps[s];
    model_.launch(device, const_cast<void **>(launches.params[s].data()));
    if (!stepwise)
      continue;
    checkCuda(api, api.cuStreamSynchronize(model_.stream()), "cuStreamSynchronize", "after " + device.where);
    if (observer_) {
      StepReport report;
      report.bucket = &bucket;
      report.stepIndex = s;
      report.tokens = count;
      report.position = position_;
      observer_(report);
    }
  }
}

void CudaSession::copyLogits(const DeviceBucket &bucket, int64_t firstRow, int64_t rows, float *logits) {
  const DriverApi &api = model_.api();
  const int64_t V = model_.vocabSize();
  const DType dtype = model_.logitsDtype();
  const uint64_t rowBytes = static_cast<uint64_t>(V) * dtypeSize(dtype);
  const CUdeviceptr source = bucket.outputs[0].get() + static_cast<uint64_t>(firstRow) * rowBytes;
  if (dtype == DType::F32) {
    checkCuda(api, api.cuMemcpyDtoHAsync(logits, source, rows * rowBytes, model_.stream()), "cuMemcpyDtoHAsync",
              "logits of bucket " + bucket.bucket->name);
    checkCuda(api, api.cuStreamSynchronize(model_.stream()), "cuStreamSynchronize",
              "bucket " + bucket.bucket->name + " (set V4_CUDA_SYNC=1 to name the failing kernel)");
    return;
  }
  std::vector<uint8_t> raw(rows * rowBytes);
  checkCuda(api, api.cuMemcpyDtoHAsync(raw.data(), source, raw.size(), model_.stream()), "cuMemcpyDtoHAsync",
            "logits of bucket " + bucket.bucket->name);
  checkCuda(api, api.cuStreamSynchronize(model_.stream()), "cuStreamSynchronize",
            "bucket " + bucket.bucket->name + " (set V4_CUDA_SYNC=1 to name the failing kernel)");
  convertToFloat(raw.data(), dtype, static_cast<size_t>(rows * V), logits);
}

int64_t CudaSession::prefill(const int32_t *ids, int64_t count, float *logits, bool lastRowOnly) {
  checkUsable();
  checkIds(ids, count);
  checkContext(count);
  if (count <= 0)
    return 0;
  ensureResident();
  const int64_t startPosition = position_;
  bool kernelsQueued = false; // this call's own chunks (a page restore is undone below)
  try {
    int64_t restored = 0, saved = 0;
    if (prefixCache_ && lastRowOnly && position_ == 0) {
      const int64_t computedBefore = prefillTokensComputed_;
      restored = restorePrefix(ids, count);
      saved = restored - (prefillTokensComputed_ - computedBefore);
    }
    const DeviceBucket &bucket = model_.prefillBucket();
    const int64_t chunk = bucket.bucket->tokens;
    const int64_t V = model_.vocabSize();
    for (int64_t done = restored; done < count;) {
      const int64_t n = chunkToPageBoundary(std::min({chunk, count - done, tokensToNextSnapshot()}));
      stageInputs(bucket, ids + done, n);
      kernelsQueued = true;
      launchSteps(bucket, n);
      if (logits && !lastRowOnly)
        copyLogits(bucket, 0, n, logits + done * V);
      else if (logits && done + n == count)
        copyLogits(bucket, n - 1, 1, logits);
      position_ += n;
      slots_->setLiveTokens(position_);
      prefillTokensComputed_ += n;
      notePageProgress(ids + done, n); // best-effort: never throws for the cache's sake
      done += n;
    }
    // Chunks run ahead of the host; errors surface here at the latest.
    checkCuda(model_.api(), model_.api().cuStreamSynchronize(model_.stream()), "cuStreamSynchronize",
              "bucket " + bucket.bucket->name + " (set V4_CUDA_SYNC=1 to name the failing kernel)");
    return saved;
  } catch (const std::exception &e) {
    if (kernelsQueued) {
      // Its kernels changed the caches past the position: no going back.
      failure_ = e.what();
      throw;
    }
    if (position_ != startPosition) { // restored pages, then failed before running a chunk
      try {
        resetToEmpty();
        checkCuda(model_.api(), model_.api().cuStreamSynchronize(model_.stream()), "cuStreamSynchronize",
                  "undoing a page restore");
      } catch (const std::exception &) {
        failure_ = e.what();
      }
    }
    throw;
  }
}

void CudaSession::decode(int32_t id, float *logits) {
  checkUsable();
  checkIds(&id, 1);
  checkContext(1);
  ensureResident();
  const DeviceBucket &bucket = model_.decodeBucket();
  stageInputs(bucket, &id, 1); // failing here changes nothing
  try {
    runDecodeStep(bucket, logits);
  } catch (const std::exception &e) {
    failure_ = e.what(); // the step may have written its cache rows and window state
    throw;
  }
  completeBatchedDecode(id);
}

void CudaSession::checkUsable() const {
  if (!failure_.empty())
    throw v4c::Error("this CUDA session failed earlier and cannot continue (" + failure_ + "): start a new session");
}

void CudaSession::runDecodeStep(const DeviceBucket &bucket, float *logits) {
  const DriverApi &api = model_.api();
  const bool graphs = options_.useGraphs && !options_.syncEachStep && !observer_;
  decodeStart_->record(model_.stream());
  if (graphs)
    replayDecodeGraph(bucket);
  else
    launchSteps(bucket, 1);
  decodeEnd_->record(model_.stream());
  const DType dtype = model_.logitsDtype();
  const uint64_t rowBytes = static_cast<uint64_t>(model_.vocabSize()) * dtypeSize(dtype);
  checkCuda(api, api.cuMemcpyDtoHAsync(decodeLogits_.data(), bucket.outputs[0].get(), rowBytes, model_.stream()),
            "cuMemcpyDtoHAsync", "decode logits");
  checkCuda(api, api.cuStreamSynchronize(model_.stream()), "cuStreamSynchronize",
            "decode bucket " + bucket.bucket->name + " (set V4_CUDA_SYNC=1 to name the failing kernel)");
  lastDecodeMs_ = decodeEnd_->millisecondsSince(*decodeStart_);
  if (logits)
    convertToFloat(decodeLogits_.data(), dtype, static_cast<size_t>(model_.vocabSize()), logits);
}

void CudaSession::completeBatchedDecode(int32_t id) {
  position_ += 1;
  slots_->setLiveTokens(position_);
  notePageProgress(&id, 1);
}

void CudaSession::replayDecodeGraph(const DeviceBucket &bucket) {
  const DriverApi &api = model_.api();
  const std::string what = "decode bucket " + bucket.bucket->name;
  if (!graphExec_) {
    // Captured once: the launches' parameters (arena, caches, buffers, dyn)
    // are device addresses that stay fixed for the session's lifetime.
    captureGraph(api, model_.stream(), what, [&]() { launchSteps(bucket, 1); }, graph_, graphExec_);
  }
  checkCuda(api, api.cuGraphLaunch(graphExec_, model_.stream()), "cuGraphLaunch", what);
}

std::vector<float> CudaSession::readArgument(const DeviceBucket &bucket, const ArgRef &arg, int64_t rows) const {
  const DriverApi &api = model_.api();
  CUdeviceptr address = 0;
  uint64_t elements = 0;
  auto leadingRows = [&](uint64_t totalElements) {
    // Token-major: dim 0 is the bucket's tokens; only `rows` of them are live.
    if (!arg.shape.empty() && arg.shape[0] == bucket.bucket->tokens && arg.shape[0] > 0)
      return totalElements / static_cast<uint64_t>(arg.shape[0]) * static_cast<uint64_t>(rows);
    return totalElements;
  };
  const uint64_t argElements = arg.byteSize() / dtypeSize(arg.dtype);
  switch (arg.kind) {
  case ArgKind::Arena:
    address = bucket.arena.get() + arg.offset;
    elements = leadingRows(argElements);
    break;
  case ArgKind::Input:
    address = bucket.inputs.at(arg.index).get();
    elements = leadingRows(argElements);
    break;
  case ArgKind::Output:
    address = bucket.outputs.at(arg.index).get();
    elements = leadingRows(argElements);
    break;
  case ArgKind::Weight:
    address = model_.weightAddress(arg.index);
    elements = model_.program().weights.at(arg.index).size / dtypeSize(arg.dtype);
    break;
  case ArgKind::Cache: {
    const CacheSlot &slot = model_.program().caches.at(arg.index);
    v4c::check(slot.dtype != DType::F8E4M3, "cache slot \"" + slot.name +
                                                "\" holds fp8 rows (codes + scales), which are not read back as floats");
    address = slots_->address(arg.index);
    elements = static_cast<uint64_t>(std::clamp<int64_t>(rows, 0, slots_->rows(arg.index))) *
               static_cast<uint64_t>(slot.width);
    break;
  }
  }
  std::vector<uint8_t> raw(elements * dtypeSize(arg.dtype));
  std::vector<float> values(elements);
  if (raw.empty())
    return values;
  checkCuda(api, api.cuMemcpyDtoHAsync(raw.data(), address, raw.size(), model_.stream()), "cuMemcpyDtoHAsync",
            "reading a step argument back");
  checkCuda(api, api.cuStreamSynchronize(model_.stream()), "cuStreamSynchronize", "reading a step argument back");
  convertToFloat(raw.data(), arg.dtype, elements, values.data());
  return values;
}

} // namespace v4rt::cuda
