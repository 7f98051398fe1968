#include "runtime/Session.h"

#include <algorithm>
#include <string>

#include "common/Error.h"

namespace v4rt {

Session::Session(const Model &model) : model_(model) {
  for (const CacheSlot &slot : model.program().caches) {
    CacheBuffer buffer;
    buffer.width = slot.width;
    // Entries grow with the context; fixed-size slots are allocated now.
    buffer.resizeRows(slot.kind == CacheKind::Entries ? 0 : slot.rows);
    caches_.push_back(std::move(buffer));
  }
  arenaStorage_.resize(model.maxArenaBytes() + 64);
  const uintptr_t base = reinterpret_cast<uintptr_t>(arenaStorage_.data());
  arena_ = arenaStorage_.data() + ((64 - base % 64) % 64);
}

void Session::checkIds(const int32_t *ids, int64_t count) const {
  for (int64_t i = 0; i < count; ++i)
    if (ids[i] < 0 || ids[i] >= model_.vocabSize())
      throw v4c::Error("token id " + std::to_string(ids[i]) + " is out of range (vocab size " +
                       std::to_string(model_.vocabSize()) + ")");
}

void Session::prefill(const int32_t *ids, int64_t count, float *logits) {
  checkIds(ids, count);
  const BoundBucket &bucket = model_.prefillBucket();
  const int64_t chunk = bucket.bucket->tokens;
  for (int64_t done = 0; done < count;) {
    const int64_t n = std::min(chunk, count - done);
    run(bucket, ids + done, n, logits ? logits + done * model_.vocabSize() : nullptr);
    done += n;
  }
}

void Session::decode(int32_t id, float *logits) {
  checkIds(&id, 1);
  run(model_.decodeBucket(), &id, 1, logits);
}

void Session::run(const BoundBucket &bound, const int32_t *ids, int64_t count, float *logits) {
  const Bucket &bucket = *bound.bucket;
  positions_.resize(count);
  for (int64_t i = 0; i < count; ++i)
    positions_[i] = static_cast<int32_t>(position_ + i);
  // Logits of every row are produced by the plan; callers that want none
  // still need somewhere to put them.
  std::vector<float> scratch;
  if (!logits) {
    scratch.resize(static_cast<size_t>(count * model_.vocabSize()));
    logits = scratch.data();
  }
  const Program &program = model_.program();
  auto resolve = [&](const ArgRef &arg) -> void * {
    switch (arg.kind) {
    case ArgKind::Arena:
      return arena_ + arg.offset;
    case ArgKind::Weight:
      return const_cast<uint8_t *>(program.weights[arg.index].data);
    case ArgKind::Cache:
      return &caches_[arg.index];
    case ArgKind::Input:
      return program.inputs[arg.index].name == "ids" ? const_cast<int32_t *>(ids)
                                                     : positions_.data();
    case ArgKind::Output:
      return logits;
    }
    return nullptr;
  };
  for (const BoundStep &step : bound.steps) {
    KernelArgs args(*step.step, step.floatAttrs);
    args.tokens = count;
    args.pool = &model_.pool();
    for (const ArgRef &arg : step.step->ins)
      args.ins.push_back(resolve(arg));
    for (const ArgRef &arg : step.step->outs)
      args.outs.push_back(resolve(arg));
    step.fn(args);
  }
  (void)bucket;
  position_ += count;
}

} // namespace v4rt
