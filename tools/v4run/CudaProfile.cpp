// profile's CUDA timer: the bucket's launches with a CUDA event between
// each two (on the stream, behind queued replays of the bucket's graph so the
// host is ahead of the device), over sessions of the CUDA backend. Built only with <cuda.h>
// (V4RUN_HAVE_CUDA); otherwise openCudaStepTimer explains what is missing.
//
// The launches are this file's own (CudaModel::bindLaunches over the model's
// bucket buffers and the sessions' cache slots), so a run can be
// repeated at the same positions without advancing any session: each run
// writes the same cache rows again.
#include "tools/v4run/StepTimer.h"

#include "common/Error.h"
#include "tools/v4run/Runner.h"

#ifdef V4RUN_HAVE_CUDA
#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "runtime/cpu/CacheStorage.h"
#include "runtime/cuda/CudaModel.h"
#include "runtime/cuda/CudaSession.h"
#include "runtime/cuda/DeviceKvPool.h"
#include "runtime/cuda/GraphCapture.h"
#include "runtime/cuda/LaunchParams.h"
#endif

namespace v4run {

#ifdef V4RUN_HAVE_CUDA
namespace {

using namespace v4rt::cuda;

// A graph and its executable, destroyed together.
class OwnedGraph {
public:
  explicit OwnedGraph(const DriverApi &api) : api_(api) {}
  ~OwnedGraph() {
    if (exec_)
      api_.cuGraphExecDestroy(exec_);
    if (graph_)
      api_.cuGraphDestroy(graph_);
  }
  OwnedGraph(const OwnedGraph &) = delete;
  OwnedGraph &operator=(const OwnedGraph &) = delete;

  // Captures what `enqueue` puts on `stream`.
  template <typename Fn> void capture(CUstream stream, const std::string &what, Fn enqueue) {
    captureGraph(api_, stream, what, enqueue, graph_, exec_);
  }
  void launch(CUstream stream, const std::string &what) const {
    checkCuda(api_, api_.cuGraphLaunch(exec_, stream), "cuGraphLaunch", what);
  }

private:
  const DriverApi &api_;
  CUgraph graph_ = nullptr;
  CUgraphExec exec_ = nullptr;
};

class CudaStepTimer final : public StepTimer {
public:
  CudaStepTimer(const std::string &path, int64_t maxContext, bool graphs, int64_t prime)
      : graphs_(graphs), prime_(prime) {
    CudaLoadOptions load;
    load.maxContext = maxContext;
    model_ = CudaModel::load(path, load);
  }
  ~CudaStepTimer() override { model_->api().cuStreamSynchronize(model_->stream()); }

  const v4rt::Program &program() const override { return model_->program(); }
  std::string describe() const override {
    const CudaDevice &device = model_->device();
    return "cuda: " + device.name() + " (" + std::to_string(device.ccMajor()) + "." +
           std::to_string(device.ccMinor()) + "), max context " + std::to_string(model_->maxContext());
  }
  std::string clock() const override { return "cuda events"; }

  double fill(int64_t context, int64_t sessions, bool tiled, int64_t fillChunk) override {
    const auto start = std::chrono::steady_clock::now();
    const DriverApi &api = model_->api();
    pins_.reset();
    sessions_.clear();
    for (int64_t s = 0; s < sessions; ++s)
      sessions_.push_back(std::make_unique<CudaSession>(*model_));
    CudaSession &first = *sessions_.front();
    int64_t computed = context;
    if (tiled && context > 0) {
      const int64_t period = entryPeriod();
      computed = std::min(context, std::max(period, fillChunk / period * period));
    }
    const std::vector<int32_t> ids = syntheticIds(computed, model_->vocabSize());
    if (computed > 0)
      first.prefill(ids.data(), computed, nullptr);
    // Every session stays resident and in place (pinned in the model's KV
    // pool) while the timer holds their slot addresses.
    pins_ = std::make_unique<KvPinScope>(model_->kvPool());
    first.ensureResident();
    pins_->add(first.kvResident());
    if (computed < context)
      tileEntries(first, computed, context);
    // The other sessions start as copies of the first (their own memory).
    for (size_t s = 1; s < sessions_.size(); ++s) {
      sessions_[s]->ensureResident();
      pins_->add(sessions_[s]->kvResident());
      for (size_t slot = 0; slot < program().caches.size(); ++slot) {
        const uint64_t bytes = cacheSlotBytes(program().caches[slot], model_->maxContext());
        if (bytes)
          checkCuda(api, api.cuMemcpyDtoDAsync(sessions_[s]->cacheAddress(slot), first.cacheAddress(slot), bytes,
                                               model_->stream()),
                    "cuMemcpyDtoDAsync", "copying session 0's cache slot " + program().caches[slot].name);
      }
    }
    checkCuda(api, api.cuStreamSynchronize(model_->stream()), "cuStreamSynchronize", "filling the sessions");
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }

  StepTimings time(const v4rt::Bucket &bucket, const RunShape &run, int64_t warmup, int64_t repeat) override {
    const DriverApi &api = model_->api();
    const CUstream stream = model_->stream();
    const DeviceBucket &device = deviceBucket(bucket);
    model_->device().makeCurrent();
    const bool batched = bucket.kind == v4rt::BucketKind::Decode && bucket.batch > 1;
    v4c::check(!sessions_.empty() && (!batched || static_cast<int64_t>(sessions_.size()) >= run.rows),
               "internal error: profile filled too few sessions");

    const BoundLaunches launches = model_->bindLaunches(device, cacheAddresses(device, batched, run.rows));
    stageInputs(device, run, batched);

    const size_t steps = device.steps.size();
    std::vector<std::unique_ptr<Event>> marks;
    for (size_t s = 0; s <= steps; ++s)
      marks.push_back(std::make_unique<Event>(api));
    Event begin(api), end(api);
    auto launchAll = [&](bool marked) {
      for (size_t s = 0; s < steps; ++s) {
        if (marked)
          marks[s]->record(stream);
        model_->launch(device.steps[s], const_cast<void **>(launches.params[s].data()));
      }
      if (marked)
        marks[steps]->record(stream);
    };
    // The whole bucket as one graph (as decode runs it), launched before the
    // marked launches too: while the device replays it, the host enqueues
    // the marked launches ahead of the device, so no launch waits for the
    // host and each step's time is the device's.
    OwnedGraph plain(api);
    const std::string what = "bucket " + bucket.name;
    if (graphs_)
      plain.capture(stream, what, [&] { launchAll(false); });
    auto runPlain = [&] {
      if (graphs_)
        plain.launch(stream, what);
      else
        launchAll(false);
    };
    int64_t primes = prime_ >= 0 ? prime_ : 1;

    StepTimings timings;
    timings.stepUs.resize(steps);
    for (int64_t r = 0; r < warmup + repeat; ++r) {
      for (int64_t p = 0; p < primes; ++p)
        runPlain();
      const auto enqueueStart = std::chrono::steady_clock::now();
      launchAll(true);
      const double enqueueUs =
          1e6 * std::chrono::duration<double>(std::chrono::steady_clock::now() - enqueueStart).count();
      begin.record(stream);
      runPlain();
      end.record(stream);
      const double bucketUs = 1e3 * end.millisecondsSince(begin); // waits for the run
      if (r < warmup) {
        if (prime_ < 0) // enough replays in front to cover the host's enqueue time 1.5 times
          primes = std::clamp<int64_t>(static_cast<int64_t>(std::ceil(1.5 * enqueueUs / std::max(bucketUs, 1.0))), 1,
                                       64);
        continue;
      }
      for (size_t s = 0; s < steps; ++s)
        timings.stepUs[s].push_back(1e3 * marks[s + 1]->millisecondsSince(*marks[s]));
      timings.bucketUs.push_back(bucketUs);
    }
    return timings;
  }

private:
  const DeviceBucket &deviceBucket(const v4rt::Bucket &bucket) const {
    for (const DeviceBucket &device : model_->buckets())
      if (device.bucket == &bucket)
        return device;
    throw v4c::Error("internal error: bucket " + bucket.name + " is not one of the model's");
  }

  // Tokens after which every Entries slot is at a row boundary (lcm of rates).
  int64_t entryPeriod() const {
    int64_t period = 1;
    for (const v4rt::CacheSlot &slot : program().caches)
      if (slot.kind == v4rt::CacheKind::Entries && slot.rate > 0)
        period = std::lcm(period, slot.rate);
    return period;
  }

  // Entries slots of `session` hold the rows of `computed` tokens; copy them
  // over and over until they hold the rows of `context` tokens (the window
  // ring and the compressor state are fixed-size and stay as computed).
  void tileEntries(CudaSession &session, int64_t computed, int64_t context) {
    const DriverApi &api = model_->api();
    for (size_t index = 0; index < program().caches.size(); ++index) {
      const v4rt::CacheSlot &slot = program().caches[index];
      if (slot.kind != v4rt::CacheKind::Entries || slot.rate <= 0)
        continue;
      const uint64_t rowBytes = v4rt::cacheRowBytes(v4rt::CacheRowFormat{slot.dtype, slot.ropeWidth}, slot.width);
      const int64_t target = std::min(context / slot.rate, cacheSlotRows(slot, model_->maxContext()));
      int64_t filled = computed / slot.rate;
      v4c::check(filled > 0 || target == 0, "--fill tiled: the first " + std::to_string(computed) +
                                                " tokens complete no entry of " + slot.name + "; raise --fill-chunk");
      const CUdeviceptr base = session.cacheAddress(index);
      while (filled < target) { // doubling copies: log2(target / filled) of them
        const int64_t rows = std::min(filled, target - filled);
        checkCuda(api,
                  api.cuMemcpyDtoDAsync(base + static_cast<uint64_t>(filled) * rowBytes, base,
                                        static_cast<uint64_t>(rows) * rowBytes, model_->stream()),
                  "cuMemcpyDtoDAsync", "tiling the entries of " + slot.name);
        filled += rows;
      }
    }
  }

  // The cache addresses the bucket's launches use. A batched decode bucket
  // takes, per cache slot, a device table of `batch` slot addresses (row r:
  // session r; rows past `rows` null, never read: docs/cuda-compile.md).
  std::vector<uint64_t> cacheAddresses(const DeviceBucket &device, bool batched, int64_t rows) {
    const DriverApi &api = model_->api();
    std::vector<uint64_t> addresses;
    cacheTables_.clear();
    for (size_t slot = 0; slot < program().caches.size(); ++slot) {
      if (!batched) {
        addresses.push_back(sessions_.front()->cacheAddress(slot));
        continue;
      }
      std::vector<uint64_t> table(static_cast<size_t>(device.bucket->batch), 0);
      for (int64_t r = 0; r < rows; ++r)
        table[static_cast<size_t>(r)] = sessions_[static_cast<size_t>(r)]->cacheAddress(slot);
      cacheTables_.emplace_back(api, table.size() * sizeof(uint64_t), "cache table of " + program().caches[slot].name);
      checkCuda(api,
                api.cuMemcpyHtoDAsync(cacheTables_.back().get(), table.data(), table.size() * sizeof(uint64_t),
                                      model_->stream()),
                "cuMemcpyHtoDAsync", "cache table of " + program().caches[slot].name);
      addresses.push_back(cacheTables_.back().get());
    }
    return addresses;
  }

  // ids, positions (consecutive from the context; in a batched bucket every
  // row at the context) and dyn[0] = rows.
  void stageInputs(const DeviceBucket &device, const RunShape &run, bool batched) {
    const DriverApi &api = model_->api();
    const std::vector<int32_t> ids = syntheticIds(run.rows, model_->vocabSize(), 7);
    std::vector<int32_t> positions(static_cast<size_t>(run.rows));
    for (int64_t t = 0; t < run.rows; ++t)
      positions[static_cast<size_t>(t)] = static_cast<int32_t>(run.context + (batched ? 0 : t));
    const std::vector<v4rt::IoSlot> &inputs = program().inputs;
    for (size_t i = 0; i < inputs.size(); ++i) {
      const std::vector<int32_t> &values = inputs[i].name == "ids" ? ids : positions;
      checkCuda(api,
                api.cuMemcpyHtoDAsync(device.inputs[i].get(), values.data(), values.size() * sizeof(int32_t),
                                      model_->stream()),
                "cuMemcpyHtoDAsync", "profile input " + inputs[i].name);
    }
    std::vector<int32_t> dyn(kDynValues, 0);
    dyn[0] = static_cast<int32_t>(run.rows);
    checkCuda(api, api.cuMemcpyHtoDAsync(device.dyn.get(), dyn.data(), dyn.size() * sizeof(int32_t), model_->stream()),
              "cuMemcpyHtoDAsync", "profile dyn");
    checkCuda(api, api.cuStreamSynchronize(model_->stream()), "cuStreamSynchronize", "staging the profile inputs");
  }

  std::unique_ptr<CudaModel> model_;
  bool graphs_ = true;
  int64_t prime_ = -1; // bucket runs queued before the marked launches (< 0: from the warm-up)
  std::vector<std::unique_ptr<CudaSession>> sessions_;
  std::unique_ptr<KvPinScope> pins_; // after sessions_: unpinned before they go
  std::vector<DeviceBuffer> cacheTables_;
};

} // namespace

std::unique_ptr<StepTimer> openCudaStepTimer(const std::string &path, int64_t maxContext, bool graphs,
                                             int64_t prime) {
  return std::make_unique<CudaStepTimer>(path, maxContext, graphs, prime);
}
#else
std::unique_ptr<StepTimer> openCudaStepTimer(const std::string &path, int64_t, bool, int64_t) {
  throw v4c::Error(path + ": targets '" + artifactTarget(path) +
                   "', but this v4run was built without the CUDA backend (cuda.h was not found at build time)");
}
#endif

} // namespace v4run
