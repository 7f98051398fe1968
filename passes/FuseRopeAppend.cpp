// v4-fuse-rope-append: v4.rope of kv feeding v4.cache_append -> one
// v4.rope_cache_append that also returns the roped kv for attention.
//
// Legal only for single-token chunks: the fused op stores into the window
// ring before attention reads it. A chunk of T tokens at p..p+T-1 writes ring
// slots that, for T > 1, still hold positions attention needs (p+T-1-W >=
// p-W+1); for T = 1 it writes only slot p mod W, which holds p-W, outside the
// window. So this runs after v4-specialize, where decode buckets have T = 1.
// A batched decode bucket (decode:B) has B rows, but each is one token of its
// own session with its own window (docs/ops.md), so the same argument holds
// per row and the fusion fires there too.
#include "passes/Passes.h"

#include "dialects/v4/V4Ops.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Interfaces/FunctionInterfaces.h"

namespace v4c {
#define GEN_PASS_DEF_FUSEROPEAPPENDPASS
#include "passes/Passes.h.inc"
} // namespace v4c

using namespace mlir;

namespace v4c {
namespace {

// One token per session: a static one-row chunk, or any row of a decode bucket.
bool isSingleTokenPerSession(Operation *op, Value activation) {
  auto type = dyn_cast<RankedTensorType>(activation.getType());
  if (!type || type.isDynamicDim(0))
    return false;
  if (type.getDimSize(0) == 1)
    return true;
  auto function = op->getParentOfType<FunctionOpInterface>();
  auto bucket = function ? function->getAttrOfType<DictionaryAttr>("v4.bucket") : DictionaryAttr();
  auto kind = bucket ? bucket.getAs<StringAttr>("kind") : StringAttr();
  return kind && kind.getValue() == "decode";
}

// Every reader of the old window other than the append must be an attention
// over the same positions in the same block (it then may read the new window:
// for one token it never looks at the slot the append wrote); returns them.
FailureOr<SmallVector<v4::AttentionOp>> windowReaders(v4::CacheAppendOp append) {
  SmallVector<v4::AttentionOp> readers;
  for (OpOperand &use : append.getWindow().getUses()) {
    if (use.getOwner() == append)
      continue;
    auto attention = dyn_cast<v4::AttentionOp>(use.getOwner());
    if (!attention || use.get() != attention.getWindowCache() ||
        attention.getPositions() != append.getPositions() ||
        attention->getBlock() != append->getBlock())
      return failure();
    readers.push_back(attention);
  }
  return readers;
}

struct FuseRopeAppendPass : impl::FuseRopeAppendPassBase<FuseRopeAppendPass> {
  void runOnOperation() override {
    SmallVector<v4::CacheAppendOp> candidates;
    getOperation().walk([&](v4::CacheAppendOp op) { candidates.push_back(op); });
    IRRewriter rewriter(&getContext());
    for (v4::CacheAppendOp append : candidates) {
      auto rope = append.getKv().getDefiningOp<v4::RopeOp>();
      if (!rope || !isSingleTokenPerSession(rope, rope.getX()) || rope.getPositions() != append.getPositions() ||
          rope->getBlock() != append->getBlock())
        continue;
      // One head: the cache row is the whole roped vector.
      auto width = cast<RankedTensorType>(rope.getX().getType()).getDimSize(1);
      if (width != rope.getHeadDimAttr().getInt())
        continue;
      // The fused op sits at the rope, so the old window must exist there.
      Operation *windowProducer = append.getWindow().getDefiningOp();
      if (windowProducer && (windowProducer->getBlock() != rope->getBlock() ||
                             !windowProducer->isBeforeInBlock(rope)))
        continue;
      FailureOr<SmallVector<v4::AttentionOp>> readers = windowReaders(append);
      if (failed(readers))
        continue;
      rewriter.setInsertionPoint(rope);
      auto fused = rewriter.create<v4::RopeCacheAppendOp>(
          rope.getLoc(), TypeRange{rope.getResult().getType(), append.getNewWindow().getType()},
          ValueRange{append.getWindow(), rope.getX(), rope.getPositions()}, rope->getAttrs());
      for (v4::AttentionOp attention : *readers)
        rewriter.modifyOpInPlace(attention, [&] {
          attention.getWindowCacheMutable().assign(fused.getNewWindow());
        });
      rewriter.replaceOp(append, fused.getNewWindow());
      rewriter.replaceOp(rope, fused.getRoped());
    }
  }
};

} // namespace
} // namespace v4c
