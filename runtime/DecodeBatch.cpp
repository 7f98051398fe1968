#include "runtime/DecodeBatch.h"

#include <algorithm>
#include <exception>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "common/Error.h"
#include "runtime/Model.h"
#include "runtime/Session.h"

namespace v4rt {

namespace {
// Cache floats a step's rows must read together before they run on the
// pool: below it a thread wake-up costs more than it saves (the grain the
// CPU kernels use, VectorMath.h grainFor).
constexpr int64_t kParallelRowsWork = int64_t{1} << 16;
} // namespace

// One run of a decode bucket over n <= batch sessions. A friend of Session:
// it borrows the sessions' caches, positions and (the first one's) arena.
class BatchedDecodeStep {
public:
  // Checks the whole batch before anything runs; returns the sessions' model.
  static const Model &checkBatch(Session *const *sessions, size_t n, const int32_t *ids);
  // A session with a step hook (v4run compare) sees every step of its own
  // plan runs, so it decodes alone.
  static bool hasStepHook(const Session &session) { return static_cast<bool>(session.stepHook_); }
  // The arena of the first session is scratch for the run: it is sized for
  // every bucket of the model and holds nothing between plan runs.
  BatchedDecodeStep(const BoundBucket &bound, Session *const *sessions, int64_t n, const int32_t *ids,
                    float *logits);
  void run();

private:
  // Where arg's data starts, and the bytes from one session's row to the next
  // (0: not token-major, i.e. a weight or a cache).
  struct Operand {
    uint8_t *base = nullptr;
    uint64_t rowBytes = 0;
    bool cache = false;
    uint32_t cacheIndex = 0;
  };
  Operand operand(const ArgRef &arg, uint64_t rowBytes) const;
  void runOnce(const BoundStep &step);
  void runPerSession(const BoundStep &step);
  void runRow(const BoundStep &step, const std::vector<Operand> &ins, const std::vector<Operand> &outs,
              int64_t row, ThreadPool *pool);

  const Model &model_;
  const BoundBucket &bound_;
  Session *const *sessions_;
  const int64_t n_;
  const int32_t *ids_;
  float *logits_;
  std::vector<float> scratchLogits_;
  std::vector<int32_t> positions_;
  std::vector<Operand> rowIns_, rowOuts_;
};

const Model &BatchedDecodeStep::checkBatch(Session *const *sessions, size_t n, const int32_t *ids) {
  if (!sessions || !ids)
    throw v4c::Error("decodeBatch: sessions and ids are required");
  if (!sessions[0])
    throw v4c::Error("decodeBatch: session 0 is null");
  const Model &model = sessions[0]->model_;
  std::unordered_set<const Session *> seen;
  for (size_t i = 0; i < n; ++i) {
    const Session *session = sessions[i];
    auto fail = [i](const char *problem) {
      throw v4c::Error("decodeBatch: session " + std::to_string(i) + problem);
    };
    if (!session)
      fail(" is null");
    if (&session->model_ != &model)
      fail(" belongs to another model; batch sessions of one model only");
    if (!seen.insert(session).second)
      fail(" appears twice; a session takes one token per step, list it once");
    session->checkIds(ids + i, 1);
  }
  return model;
}

BatchedDecodeStep::BatchedDecodeStep(const BoundBucket &bound, Session *const *sessions, int64_t n,
                                     const int32_t *ids, float *logits)
    : model_(sessions[0]->model_), bound_(bound), sessions_(sessions), n_(n), ids_(ids), logits_(logits) {
  if (!logits_) { // the plan writes every row's logits somewhere
    scratchLogits_.resize(static_cast<size_t>(n * model_.vocabSize()));
    logits_ = scratchLogits_.data();
  }
  positions_.resize(static_cast<size_t>(n));
  for (int64_t r = 0; r < n; ++r)
    positions_[r] = static_cast<int32_t>(sessions[r]->position_);
}

BatchedDecodeStep::Operand BatchedDecodeStep::operand(const ArgRef &arg, uint64_t rowBytes) const {
  Operand op;
  op.rowBytes = rowBytes;
  switch (arg.kind) {
  case ArgKind::Weight:
    op.base = const_cast<uint8_t *>(model_.program().weights[arg.index].data);
    break;
  case ArgKind::Cache:
    op.cache = true;
    op.cacheIndex = arg.index;
    break;
  case ArgKind::Arena:
    op.base = sessions_[0]->arena_ + arg.offset;
    break;
  case ArgKind::Input: // Model::bind resolved which input is the ids
    op.base = reinterpret_cast<uint8_t *>(
        const_cast<int32_t *>(arg.index == model_.idsInput() ? ids_ : positions_.data()));
    break;
  case ArgKind::Output:
    op.base = reinterpret_cast<uint8_t *>(logits_);
    break;
  }
  return op;
}

void BatchedDecodeStep::run() {
  for (const BoundStep &step : bound_.steps) {
    if (step.perSession)
      runPerSession(step);
    else
      runOnce(step);
  }
  for (int64_t r = 0; r < n_; ++r)
    sessions_[r]->completeBatchedDecode(ids_[r]);
}

// No cache operand: one call over all n rows (weights read once).
void BatchedDecodeStep::runOnce(const BoundStep &step) {
  KernelArgs args(*step.step, step.floatAttrs);
  args.tokens = n_;
  args.pool = &model_.pool();
  const std::vector<ArgRef> &ins = step.step->ins, &outs = step.step->outs;
  args.ins.reserve(ins.size());
  args.outs.reserve(outs.size());
  for (size_t i = 0; i < ins.size(); ++i)
    args.ins.push_back(operand(ins[i], 0).base);
  for (size_t i = 0; i < outs.size(); ++i)
    args.outs.push_back(operand(outs[i], 0).base);
  step.fn(args);
}

void BatchedDecodeStep::runRow(const BoundStep &step, const std::vector<Operand> &ins,
                               const std::vector<Operand> &outs, int64_t row, ThreadPool *pool) {
  Session &session = *sessions_[row];
  auto resolve = [&](const Operand &op) -> void * {
    if (op.cache)
      return &session.caches_[op.cacheIndex];
    return op.base + row * op.rowBytes;
  };
  KernelArgs args(*step.step, step.floatAttrs);
  args.tokens = 1;
  args.pool = pool;
  args.ins.reserve(ins.size());
  args.outs.reserve(outs.size());
  for (const Operand &op : ins)
    args.ins.push_back(resolve(op));
  for (const Operand &op : outs)
    args.outs.push_back(resolve(op));
  step.fn(args);
}

// A cache operand: once per row, with that row's session caches and views of
// the row in every token-major operand. The cache kernels are serial for one
// token (attention and the indexer split over tokens), so when the rows hold
// enough work to pay for waking the pool (long caches), the rows run in
// parallel, each call single-threaded; otherwise they run in turn and each
// call keeps the pool for what it splits itself (linear_compress's linears).
void BatchedDecodeStep::runPerSession(const BoundStep &step) {
  std::vector<Operand> &ins = rowIns_, &outs = rowOuts_; // reused across steps
  ins.clear();
  outs.clear();
  for (size_t i = 0; i < step.step->ins.size(); ++i)
    ins.push_back(operand(step.step->ins[i], step.inRowBytes[i]));
  for (size_t i = 0; i < step.step->outs.size(); ++i)
    outs.push_back(operand(step.step->outs[i], step.outRowBytes[i]));
  // Floats the rows' cache operands hold: what attention, the indexer and
  // the compressor read per row.
  int64_t work = 0;
  for (int64_t r = 0; r < n_; ++r)
    for (const Operand &op : ins)
      if (op.cache) {
        const CacheBuffer &cache = sessions_[r]->caches_[op.cacheIndex];
        work += cache.rows * cache.width;
      }
  if (n_ == 1 || work < kParallelRowsWork) {
    for (int64_t r = 0; r < n_; ++r)
      runRow(step, ins, outs, r, &model_.pool());
    return;
  }
  std::mutex failureMutex;
  std::exception_ptr failure;
  model_.pool().parallelFor(n_, 1, [&](int64_t begin, int64_t end) {
    try {
      for (int64_t r = begin; r < end; ++r)
        runRow(step, ins, outs, r, nullptr);
    } catch (...) { // never let an exception leave a worker thread
      std::lock_guard<std::mutex> lock(failureMutex);
      if (!failure)
        failure = std::current_exception();
    }
  });
  if (failure)
    std::rethrow_exception(failure);
}

int64_t decodeBatch(Session *const *sessions, size_t n, const int32_t *ids, float *logits) {
  if (n == 0)
    return 0;
  const Model &model = BatchedDecodeStep::checkBatch(sessions, n, ids);
  const int64_t total = static_cast<int64_t>(n);
  const int64_t V = model.vocabSize();
  const bool hooked = std::any_of(sessions, sessions + n, [](const Session *session) {
    return BatchedDecodeStep::hasStepHook(*session);
  });
  if (model.decodeBatches().empty() || hooked) { // no decode buckets, or a step hook to call
    for (int64_t i = 0; i < total; ++i)
      sessions[i]->decode(ids[i], logits ? logits + i * V : nullptr);
    return total;
  }
  const int64_t largest = model.decodeBatches().back();
  int64_t runs = 0;
  for (int64_t begin = 0; begin < total; begin += largest) {
    const int64_t count = std::min(largest, total - begin);
    BatchedDecodeStep step(*model.decodeBucketFor(count), sessions + begin, count, ids + begin,
                           logits ? logits + begin * V : nullptr);
    step.run();
    ++runs;
  }
  return runs;
}

} // namespace v4rt
