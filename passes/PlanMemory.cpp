// v4-plan-memory: liveness over the launch schedule, in-place reuse where a
// launch allows it, then best-fit arena offsets.
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
// whose last reader is launch i never shares bytes with one launch i writes,
// unless launch i writes it in place (see joinInPlace).
struct Lifetime {
  plan::AllocOp alloc;
  int64_t first = 0;
  int64_t last = 0;
  uint64_t size = 0; // rounded up to the alignment
  int64_t slot = -1; // index of the Slot holding this buffer
};

// A range of arena bytes: one buffer, or a chain of buffers each written in
// place over the previous one (same size, lifetimes that touch only at the
// launch joining them). Slots are what gets placed.
struct Slot {
  int64_t first = 0;
  int64_t last = 0;
  uint64_t size = 0;
  uint64_t offset = 0;

  bool overlapsInTime(const Slot &other) const { return first <= other.last && other.first <= last; }
};

struct BucketLiveness {
  SmallVector<Lifetime> lifetimes;
  DenseMap<Value, int64_t> lifetimeOf; // alloc result -> index in lifetimes
  SmallVector<plan::LaunchOp> launches; // in schedule order
};

FailureOr<BucketLiveness> computeLifetimes(plan::BucketOp bucket) {
  BucketLiveness liveness;
  DenseMap<Operation *, int64_t> launchIndex;
  for (Operation &op : bucket.getBodyBlock()) {
    if (auto launch = dyn_cast<plan::LaunchOp>(op)) {
      launchIndex[&op] = liveness.launches.size();
      liveness.launches.push_back(launch);
      continue;
    }
    auto alloc = dyn_cast<plan::AllocOp>(op);
    if (!alloc)
      continue;
    Lifetime lifetime;
    lifetime.alloc = alloc;
    lifetime.size = llvm::alignTo(alloc.getResult().getType().getByteSize(), kAlignment);
    // An unused buffer still gets a (harmless) place: live just where it is defined.
    lifetime.first = lifetime.last = liveness.launches.size();
    liveness.lifetimeOf[alloc.getResult()] = liveness.lifetimes.size();
    liveness.lifetimes.push_back(lifetime);
  }
  for (Lifetime &lifetime : liveness.lifetimes) {
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
    plan::LaunchOp firstLaunch = liveness.launches[lifetime.first];
    if (!llvm::is_contained(firstLaunch.getOuts(), buffer))
      return lifetime.alloc.emitOpError()
             << "is read by launch \"" << firstLaunch.getKernel()
             << "\" before any launch writes it; write the buffer before reading it";
  }
  return liveness;
}

// The buffer that `launch` (at schedule position `index`) may write its
// outs[0] over, if any: an arena input of exactly outs[0]'s type, passed only
// at `in_place` positions, not written by the launch, and last read here;
// outs[0] must be an arena buffer first written here (and not read here).
std::optional<int64_t> inPlaceInput(plan::LaunchOp launch, int64_t index, const BucketLiveness &liveness) {
  std::optional<ArrayRef<int64_t>> candidates = launch.getInPlace();
  if (!candidates || launch.getOuts().empty())
    return std::nullopt;
  Value out = launch.getOuts().front();
  auto outLifetime = liveness.lifetimeOf.find(out);
  if (outLifetime == liveness.lifetimeOf.end() || liveness.lifetimes[outLifetime->second].first != index ||
      llvm::is_contained(launch.getIns(), out))
    return std::nullopt;
  for (int64_t candidate : *candidates) {
    Value in = launch.getIns()[candidate];
    auto inLifetime = liveness.lifetimeOf.find(in);
    if (inLifetime == liveness.lifetimeOf.end() || in.getType() != out.getType() ||
        liveness.lifetimes[inLifetime->second].last != index || llvm::is_contained(launch.getOuts(), in))
      continue;
    // A second use of the same buffer at a position without the property
    // would read bytes the kernel has already overwritten.
    bool onlyInPlaceUses = llvm::all_of(llvm::enumerate(launch.getIns()), [&](auto operand) {
      return operand.value() != in || llvm::is_contained(*candidates, static_cast<int64_t>(operand.index()));
    });
    if (onlyInPlaceUses)
      return inLifetime->second;
  }
  return std::nullopt;
}

// Gives every buffer a slot: a fresh one, or, for an in-place launch's
// outs[0], the slot of the input it overwrites (extended to the new
// buffer's last use). Returns the number of buffers written in place.
int64_t joinInPlace(BucketLiveness &liveness, SmallVector<Slot> &slots) {
  int64_t joined = 0;
  for (auto [index, launch] : llvm::enumerate(liveness.launches)) {
    std::optional<int64_t> input = inPlaceInput(launch, index, liveness);
    if (!input)
      continue;
    Lifetime &in = liveness.lifetimes[*input];
    Lifetime &out = liveness.lifetimes[liveness.lifetimeOf.lookup(launch.getOuts().front())];
    if (in.slot < 0) {
      in.slot = slots.size();
      slots.push_back({in.first, in.last, in.size, 0});
    }
    out.slot = in.slot;
    slots[out.slot].last = std::max(slots[out.slot].last, out.last);
    ++joined;
  }
  for (Lifetime &lifetime : liveness.lifetimes)
    if (lifetime.slot < 0) {
      lifetime.slot = slots.size();
      slots.push_back({lifetime.first, lifetime.last, lifetime.size, 0});
    }
  return joined;
}

// Places the biggest slots first; each goes into the smallest gap that fits
// among the slots already placed whose lifetimes overlap its own.
uint64_t assignOffsets(MutableArrayRef<Slot> slots) {
  SmallVector<Slot *> order;
  for (Slot &slot : slots)
    order.push_back(&slot);
  std::stable_sort(order.begin(), order.end(), [](const Slot *a, const Slot *b) {
    if (a->size != b->size)
      return a->size > b->size;
    return a->first < b->first;
  });

  SmallVector<Slot *> placed;
  uint64_t arenaBytes = 0;
  for (Slot *current : order) {
    SmallVector<Slot *> conflicts;
    for (Slot *other : placed)
      if (current->overlapsInTime(*other))
        conflicts.push_back(other);
    llvm::sort(conflicts, [](const Slot *a, const Slot *b) { return a->offset < b->offset; });

    std::optional<uint64_t> bestOffset;
    uint64_t bestGap = 0;
    uint64_t cursor = 0; // end of the bytes taken so far, in offset order
    for (Slot *other : conflicts) {
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

// The lower bound of any placement with these in-place choices: the most
// bytes live during one launch, where a buffer written in place and the input
// it overwrites count once (they are one slot).
uint64_t peakLiveBytes(ArrayRef<Slot> slots) {
  int64_t launches = 0;
  for (const Slot &slot : slots)
    launches = std::max(launches, slot.last + 1);
  SmallVector<uint64_t> live(launches + 1, 0);
  for (const Slot &slot : slots)
    for (int64_t i = slot.first; i <= slot.last; ++i)
      live[i] += slot.size;
  return live.empty() ? 0 : *std::max_element(live.begin(), live.end());
}

struct PlanMemoryPass : impl::PlanMemoryPassBase<PlanMemoryPass> {
  void runOnOperation() override {
    for (plan::BucketOp bucket : getOperation().getOps<plan::BucketOp>()) {
      FailureOr<BucketLiveness> liveness = computeLifetimes(bucket);
      if (failed(liveness))
        return signalPassFailure();
      SmallVector<Slot> slots;
      int64_t inPlaceBuffers = joinInPlace(*liveness, slots);
      uint64_t arenaBytes = assignOffsets(slots);
      uint64_t naiveBytes = 0;
      Builder builder(bucket.getContext());
      for (Lifetime &lifetime : liveness->lifetimes) {
        naiveBytes += lifetime.size;
        uint64_t offset = slots[lifetime.slot].offset;
        lifetime.alloc.setOffsetAttr(builder.getI64IntegerAttr(static_cast<int64_t>(offset)));
      }
      bucket.setArenaBytesAttr(builder.getI64IntegerAttr(static_cast<int64_t>(arenaBytes)));
      bucket.setNaiveBytesAttr(builder.getI64IntegerAttr(static_cast<int64_t>(naiveBytes)));
      // Reported by `v4c compile --stats` next to arena and naive bytes.
      bucket->setAttr("peak_live_bytes", builder.getI64IntegerAttr(static_cast<int64_t>(peakLiveBytes(slots))));
      bucket->setAttr("written_in_place", builder.getI64IntegerAttr(inPlaceBuffers));
    }
  }
};

} // namespace
} // namespace v4c
