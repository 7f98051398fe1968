// v4-plan-memory: liveness over the launch schedule, best-fit arena offsets.
#include "passes/Passes.h"

#include "dialects/plan/PlanOps.h"

#include "mlir/IR/Builders.h"
#include "llvm/Support/MathExtras.h"

#include <algorithm>

namespace v4c {
#define GEN_PASS_DEF_PLANMEMORYPASS
#include "passes/Passes.h.inc"
} // namespace v4c

using namespace mlir;

namespace v4c {
namespace {

constexpr uint64_t kAlignment = plan::AllocOp::kAlignment;

// One arena buffer: live over launches [first, last] (inclusive), so a buffer
// whose last reader is launch i never shares bytes with one launch i writes.
struct Lifetime {
  plan::AllocOp alloc;
  int64_t first = 0;
  int64_t last = 0;
  uint64_t size = 0; // rounded up to the alignment
  uint64_t offset = 0;

  bool overlapsInTime(const Lifetime &other) const { return first <= other.last && other.first <= last; }
};

FailureOr<SmallVector<Lifetime>> computeLifetimes(plan::BucketOp bucket) {
  DenseMap<Operation *, int64_t> launchIndex;
  int64_t launches = 0;
  SmallVector<Lifetime> lifetimes;
  for (Operation &op : bucket.getBodyBlock()) {
    if (isa<plan::LaunchOp>(op)) {
      launchIndex[&op] = launches++;
      continue;
    }
    auto alloc = dyn_cast<plan::AllocOp>(op);
    if (!alloc)
      continue;
    Lifetime lifetime;
    lifetime.alloc = alloc;
    lifetime.size = llvm::alignTo(alloc.getResult().getType().getByteSize(), kAlignment);
    // An unused buffer still gets a (harmless) place: live just where it is defined.
    lifetime.first = lifetime.last = launches;
    lifetimes.push_back(lifetime);
  }
  for (Lifetime &lifetime : lifetimes) {
    Value buffer = lifetime.alloc.getResult();
    bool anyUse = false;
    for (OpOperand &use : buffer.getUses()) {
      auto launch = dyn_cast<plan::LaunchOp>(use.getOwner());
      if (!launch)
        return lifetime.alloc.emitOpError()
               << "is used by '" << use.getOwner()->getName() << "'; only plan.launch may use an arena buffer";
      int64_t index = launchIndex.lookup(launch);
      lifetime.first = anyUse ? std::min(lifetime.first, index) : index;
      lifetime.last = anyUse ? std::max(lifetime.last, index) : index;
      anyUse = true;
    }
    if (!anyUse)
      continue;
    // The first launch touching the buffer must write it, or it reads garbage.
    Operation *firstLaunch = nullptr;
    for (Operation *user : buffer.getUsers())
      if (launchIndex.lookup(user) == lifetime.first)
        firstLaunch = user;
    auto outs = cast<plan::LaunchOp>(firstLaunch).getOuts();
    if (llvm::find(outs, buffer) == outs.end())
      return lifetime.alloc.emitOpError()
             << "is read by launch \"" << cast<plan::LaunchOp>(firstLaunch).getKernel()
             << "\" before any launch writes it; write the buffer before reading it";
  }
  return lifetimes;
}

// Places the biggest buffers first; each goes into the smallest gap that fits
// among the buffers already placed whose lifetimes overlap its own.
uint64_t assignOffsets(MutableArrayRef<Lifetime> lifetimes) {
  SmallVector<Lifetime *> order;
  for (Lifetime &lifetime : lifetimes)
    order.push_back(&lifetime);
  std::stable_sort(order.begin(), order.end(), [](const Lifetime *a, const Lifetime *b) {
    if (a->size != b->size)
      return a->size > b->size;
    return a->first < b->first;
  });

  SmallVector<Lifetime *> placed;
  uint64_t arenaBytes = 0;
  for (Lifetime *current : order) {
    SmallVector<Lifetime *> conflicts;
    for (Lifetime *other : placed)
      if (current->overlapsInTime(*other))
        conflicts.push_back(other);
    llvm::sort(conflicts, [](const Lifetime *a, const Lifetime *b) { return a->offset < b->offset; });

    std::optional<uint64_t> bestOffset;
    uint64_t bestGap = 0;
    uint64_t cursor = 0; // end of the bytes taken so far, in offset order
    for (Lifetime *other : conflicts) {
      if (other->offset > cursor) {
        uint64_t gap = other->offset - cursor;
        if (gap >= current->size && (!bestOffset || gap < bestGap)) {
          bestOffset = cursor;
          bestGap = gap;
        }
      }
      cursor = std::max(cursor, other->offset + other->size);
    }
    current->offset = bestOffset.value_or(cursor);
    arenaBytes = std::max(arenaBytes, current->offset + current->size);
    placed.push_back(current);
  }
  return arenaBytes;
}

// The lower bound of any placement: the most bytes live during one launch.
uint64_t peakLiveBytes(ArrayRef<Lifetime> lifetimes) {
  int64_t launches = 0;
  for (const Lifetime &lifetime : lifetimes)
    launches = std::max(launches, lifetime.last + 1);
  SmallVector<uint64_t> live(launches + 1, 0);
  for (const Lifetime &lifetime : lifetimes)
    for (int64_t i = lifetime.first; i <= lifetime.last; ++i)
      live[i] += lifetime.size;
  return live.empty() ? 0 : *std::max_element(live.begin(), live.end());
}

struct PlanMemoryPass : impl::PlanMemoryPassBase<PlanMemoryPass> {
  void runOnOperation() override {
    for (plan::BucketOp bucket : getOperation().getOps<plan::BucketOp>()) {
      FailureOr<SmallVector<Lifetime>> lifetimes = computeLifetimes(bucket);
      if (failed(lifetimes))
        return signalPassFailure();
      uint64_t arenaBytes = assignOffsets(*lifetimes);
      uint64_t naiveBytes = 0;
      Builder builder(bucket.getContext());
      for (Lifetime &lifetime : *lifetimes) {
        naiveBytes += lifetime.size;
        lifetime.alloc.setOffsetAttr(builder.getI64IntegerAttr(static_cast<int64_t>(lifetime.offset)));
      }
      bucket.setArenaBytesAttr(builder.getI64IntegerAttr(static_cast<int64_t>(arenaBytes)));
      bucket.setNaiveBytesAttr(builder.getI64IntegerAttr(static_cast<int64_t>(naiveBytes)));
      // Reported by `v4c compile --stats` next to arena and naive bytes.
      bucket->setAttr("peak_live_bytes",
                      builder.getI64IntegerAttr(static_cast<int64_t>(peakLiveBytes(*lifetimes))));
    }
  }
};

} // namespace
} // namespace v4c
