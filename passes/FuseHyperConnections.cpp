// v4-fuse-hc: an mHC site's exit (v4.hc_post) and the next site's entry
// (v4.hc_pre of its result) -> v4.hc_post_pre, one pass over the streams.
#include "passes/Passes.h"

#include "dialects/v4/V4Ops.h"

#include "mlir/IR/PatternMatch.h"

namespace v4c {
#define GEN_PASS_DEF_FUSEHYPERCONNECTIONSPASS
#include "passes/Passes.h.inc"
} // namespace v4c

using namespace mlir;

namespace v4c {
namespace {

// The fused op replaces hc_pre in place, so every other reader of the new
// streams must come after hc_pre (they then read the fused op's new_streams).
bool otherReadersFollow(v4::HcPostOp post, v4::HcPreOp pre) {
  for (Operation *user : post.getResult().getUsers())
    if (user != pre && (user->getBlock() != pre->getBlock() || user->isBeforeInBlock(pre)))
      return false;
  return true;
}

struct FuseHyperConnectionsPass
    : impl::FuseHyperConnectionsPassBase<FuseHyperConnectionsPass> {
  void runOnOperation() override {
    SmallVector<v4::HcPreOp> candidates;
    getOperation().walk([&](v4::HcPreOp op) { candidates.push_back(op); });
    IRRewriter rewriter(&getContext());
    for (v4::HcPreOp pre : candidates) {
      auto post = pre.getX().getDefiningOp<v4::HcPostOp>();
      if (!post || post->getBlock() != pre->getBlock() ||
          post.getHcAttr().getInt() != pre.getHcAttr().getInt() || !otherReadersFollow(post, pre))
        continue;
      rewriter.setInsertionPoint(pre);
      SmallVector<Type> types{post.getResult().getType()};
      llvm::append_range(types, pre->getResultTypes());
      auto fused = rewriter.create<v4::HcPostPreOp>(
          pre.getLoc(), types,
          ValueRange{post.getX(), post.getY(), post.getPost(), post.getComb(), pre.getFn(),
                     pre.getBase(), pre.getScale()},
          pre->getAttrs());
      rewriter.replaceOp(pre, fused->getResults().drop_front());
      rewriter.replaceOp(post, fused->getResult(0));
    }
  }
};

} // namespace
} // namespace v4c
