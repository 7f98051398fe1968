#include "runtime/cuda/CudaDecodeBatch.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_set>

#include "common/Error.h"
#include "runtime/cuda/CudaSession.h"
#include "runtime/cuda/DeviceKvPool.h"
#include "runtime/cuda/GraphCapture.h"
#include "runtime/cuda/HostConvert.h"
#include "runtime/cuda/LaunchParams.h"

namespace v4rt::cuda {
namespace {

bool syncRequestedByEnvironment() {
  const char *value = std::getenv("V4_CUDA_SYNC");
  return value && *value && std::strcmp(value, "0") != 0;
}

} // namespace

// One batched decode bucket and what its runs reuse: the device slot tables
// (their addresses are in the launch parameters and the captured graph), the
// pinned staging and logits buffers, the graph.
struct CudaDecodeBatch::BatchedBucket {
  const DeviceBucket *device = nullptr;
  int64_t batch = 0;
  DeviceBuffer tables;  // [cache slots][batch] slot bases (uint64)
  PinnedBuffer staging; // tables | ids [batch] | positions [batch] | dyn [kDynValues]
  PinnedBuffer logits;  // batch rows of the logits output (allocated on first use)
  BoundLaunches launches; // cache arguments: the slot tables (the batched ABI)
  CUgraph graph = nullptr;
  CUgraphExec graphExec = nullptr;
  std::unique_ptr<Event> start, end;
};

CudaDecodeBatch::CudaDecodeBatch(const CudaModel &model, bool useGraphs)
    : model_(model), useGraphs_(useGraphs), syncEachStep_(syncRequestedByEnvironment()) {
  for (const DeviceBucket &bucket : model.buckets())
    if (bucket.bucket->kind == BucketKind::Decode && bucket.bucket->batch > 1) {
      v4c::check(bucket.bucket->tokens == bucket.bucket->batch,
                 "decode bucket " + bucket.bucket->name + " has " + std::to_string(bucket.bucket->tokens) +
                     " rows for " + std::to_string(bucket.bucket->batch) + " sessions; want one row per session");
      auto batched = std::make_unique<BatchedBucket>();
      batched->device = &bucket;
      batched->batch = bucket.bucket->batch;
      buckets_.push_back(std::move(batched));
    }
  std::sort(buckets_.begin(), buckets_.end(), [](const auto &a, const auto &b) { return a->batch < b->batch; });
}

CudaDecodeBatch::~CudaDecodeBatch() {
  const DriverApi &api = model_.api();
  api.cuStreamSynchronize(model_.stream()); // no replay may still use the tables
  for (const std::unique_ptr<BatchedBucket> &bucket : buckets_) {
    if (bucket->graphExec)
      api.cuGraphExecDestroy(bucket->graphExec);
    if (bucket->graph)
      api.cuGraphDestroy(bucket->graph);
  }
}

std::vector<int64_t> CudaDecodeBatch::batchSizes() const {
  std::vector<int64_t> sizes;
  for (const std::unique_ptr<BatchedBucket> &bucket : buckets_)
    sizes.push_back(bucket->batch);
  return sizes;
}

void CudaDecodeBatch::check(CudaSession *const *sessions, size_t n, const int32_t *ids) const {
  v4c::check(sessions != nullptr && ids != nullptr, "decodeBatch: sessions and ids are required");
  std::unordered_set<const CudaSession *> seen;
  for (size_t i = 0; i < n; ++i) {
    const CudaSession *session = sessions[i];
    const std::string which = "decodeBatch: session " + std::to_string(i);
    v4c::check(session != nullptr, which + " is null");
    v4c::check(&session->model_ == &model_, which + " belongs to another model; batch sessions of one model only");
    v4c::check(seen.insert(session).second, which + " appears twice; a session takes one token per step, list it once");
    v4c::check(!session->observer_, which + " has a step observer (stepwise compare); a batched step runs every "
                                            "session's launches together, so decode it alone");
    session->checkUsable();
    session->checkIds(ids + i, 1);
    session->checkContext(1);
  }
}

CudaDecodeBatch::BatchedBucket &CudaDecodeBatch::bucketFor(int64_t sessions) {
  auto it = std::find_if(buckets_.begin(), buckets_.end(), [&](const auto &b) { return b->batch >= sessions; });
  v4c::check(it != buckets_.end(), "internal error: no batched decode bucket holds " + std::to_string(sessions) +
                                       " sessions");
  BatchedBucket &bucket = **it;
  if (bucket.staging.data())
    return bucket; // set up by an earlier run
  // First use: the tables and staging, and the launch parameters (fixed
  // from now on: the graph captures them).
  const DriverApi &api = model_.api();
  const Program &program = model_.program();
  const size_t slots = program.caches.size();
  const uint64_t B = static_cast<uint64_t>(bucket.batch);
  const std::string name = "batched decode bucket " + bucket.device->bucket->name;
  bucket.tables = DeviceBuffer(api, slots * B * sizeof(uint64_t), name + " slot tables");
  bucket.staging = PinnedBuffer(api, slots * B * sizeof(uint64_t) + (2 * B + kDynValues) * sizeof(int32_t),
                                name + " staging");
  bucket.logits = PinnedBuffer(api, B * static_cast<uint64_t>(model_.vocabSize()) * dtypeSize(model_.logitsDtype()),
                               name + " logits");
  bucket.start = std::make_unique<Event>(api);
  bucket.end = std::make_unique<Event>(api);
  std::vector<uint64_t> tables; // a cache argument is its slot's table (the batched ABI)
  for (size_t s = 0; s < slots; ++s)
    tables.push_back(bucket.tables.get() + s * B * sizeof(uint64_t));
  bucket.launches = model_.bindLaunches(*bucket.device, tables);
  return bucket;
}

int64_t CudaDecodeBatch::decode(CudaSession *const *sessions, size_t n, const int32_t *ids, float *logits) {
  if (n == 0)
    return 0;
  check(sessions, n, ids);
  model_.device().makeCurrent();
  const int64_t total = static_cast<int64_t>(n);
  const int64_t V = model_.vocabSize();
  lastStepMs_ = 0.0f;
  const int64_t largest = buckets_.empty() ? 1 : buckets_.back()->batch;
  int64_t runs = 0;
  for (int64_t begin = 0; begin < total; begin += largest, ++runs) {
    const int64_t count = std::min(largest, total - begin);
    float *rows = logits ? logits + begin * V : nullptr;
    if (count == 1) { // one session (or no batched bucket): its own decode bucket
      sessions[begin]->decode(ids[begin], rows);
      lastStepMs_ += sessions[begin]->lastDecodeMilliseconds();
      continue;
    }
    lastStepMs_ += run(bucketFor(count), sessions + begin, count, ids + begin, rows);
  }
  return runs;
}

float CudaDecodeBatch::run(BatchedBucket &bucket, CudaSession *const *sessions, int64_t count, const int32_t *ids,
                           float *logits) {
  const DriverApi &api = model_.api();
  // The rows' slots stay resident (and at these addresses) for the step.
  KvPinScope pins(model_.kvPool());
  for (int64_t r = 0; r < count; ++r)
    pins.add(sessions[r]->kvResident());
  for (int64_t r = 0; r < count; ++r)
    sessions[r]->ensureResident(); // resident now: refreshes the session's own launch tables
  stage(bucket, sessions, count, ids);
  const DType dtype = model_.logitsDtype();
  const uint64_t rowBytes = static_cast<uint64_t>(model_.vocabSize()) * dtypeSize(dtype);
  const std::string &name = bucket.device->bucket->name;
  try {
    bucket.start->record(model_.stream());
    if (useGraphs_ && !syncEachStep_)
      replayGraph(bucket);
    else
      launchSteps(bucket);
    bucket.end->record(model_.stream());
    if (logits)
      checkCuda(api,
                api.cuMemcpyDtoHAsync(bucket.logits.data(), bucket.device->outputs[0].get(),
                                      static_cast<size_t>(count) * rowBytes, model_.stream()),
                "cuMemcpyDtoHAsync", "logits of batched decode bucket " + name);
    checkCuda(api, api.cuStreamSynchronize(model_.stream()), "cuStreamSynchronize",
              "batched decode bucket " + name + " (set V4_CUDA_SYNC=1 to name the failing kernel)");
  } catch (const std::exception &e) {
    for (int64_t r = 0; r < count; ++r)
      sessions[r]->failure_ = e.what(); // the step may have written each one's cache rows
    throw;
  }
  const float ms = bucket.end->millisecondsSince(*bucket.start);
  if (logits)
    convertToFloat(bucket.logits.data(), dtype, static_cast<size_t>(count * model_.vocabSize()), logits);
  for (int64_t r = 0; r < count; ++r)
    sessions[r]->completeBatchedDecode(ids[r]);
  return ms;
}

void CudaDecodeBatch::stage(BatchedBucket &bucket, CudaSession *const *sessions, int64_t count, const int32_t *ids) {
  const DriverApi &api = model_.api();
  const Program &program = model_.program();
  const size_t slots = program.caches.size();
  const int64_t B = bucket.batch;
  // Row r of slot s's table: session r's slot s; rows past the sessions are
  // null (the kernels never touch rows >= dyn[0]).
  uint64_t *tables = bucket.staging.data<uint64_t>();
  for (size_t s = 0; s < slots; ++s)
    for (int64_t r = 0; r < B; ++r)
      tables[s * B + r] = r < count ? sessions[r]->cacheAddress(s) : 0;
  int32_t *stagedIds = reinterpret_cast<int32_t *>(tables + slots * B);
  int32_t *stagedPositions = stagedIds + B;
  int32_t *stagedDyn = stagedPositions + B;
  for (int64_t r = 0; r < count; ++r) {
    stagedIds[r] = ids[r];
    stagedPositions[r] = static_cast<int32_t>(sessions[r]->position());
  }
  // dyn[0]: rows present. dyn[1] (restored entries the compressor keeps) is
  // 0: a decode step completes windows past any restored prefix.
  std::fill(stagedDyn, stagedDyn + kDynValues, 0);
  stagedDyn[0] = static_cast<int32_t>(count);
  const std::string &name = bucket.device->bucket->name;
  const CUstream stream = model_.stream();
  if (slots)
    checkCuda(api, api.cuMemcpyHtoDAsync(bucket.tables.get(), tables, slots * B * sizeof(uint64_t), stream),
              "cuMemcpyHtoDAsync", "slot tables of batched decode bucket " + name);
  const std::vector<IoSlot> &inputs = program.inputs;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const int32_t *source = inputs[i].name == "ids" ? stagedIds : stagedPositions;
    checkCuda(api,
              api.cuMemcpyHtoDAsync(bucket.device->inputs[i].get(), source,
                                    static_cast<size_t>(count) * sizeof(int32_t), stream),
              "cuMemcpyHtoDAsync", "batched decode bucket " + name + " input " + inputs[i].name);
  }
  checkCuda(api, api.cuMemcpyHtoDAsync(bucket.device->dyn.get(), stagedDyn, kDynValues * sizeof(int32_t), stream),
            "cuMemcpyHtoDAsync", "batched decode bucket " + name + " dyn");
}

void CudaDecodeBatch::launchSteps(BatchedBucket &bucket) {
  const DriverApi &api = model_.api();
  for (size_t s = 0; s < bucket.device->steps.size(); ++s) {
    const DeviceStep &device = bucket.device->steps[s];
    model_.launch(device, bucket.launches.params[s].data());
    if (syncEachStep_)
      checkCuda(api, api.cuStreamSynchronize(model_.stream()), "cuStreamSynchronize", "after " + device.where);
  }
}

void CudaDecodeBatch::replayGraph(BatchedBucket &bucket) {
  const DriverApi &api = model_.api();
  const std::string what = "batched decode bucket " + bucket.device->bucket->name;
  if (!bucket.graphExec) {
    // Captured once: every parameter (tables, arena, buffers, dyn) is a fixed
    // device address; a run changes only what they hold.
    captureGraph(api, model_.stream(), what, [&]() { launchSteps(bucket); }, bucket.graph, bucket.graphExec);
  }
  checkCuda(api, api.cuGraphLaunch(bucket.graphExec, model_.stream()), "cuGraphLaunch", what);
}

} // namespace v4rt::cuda
