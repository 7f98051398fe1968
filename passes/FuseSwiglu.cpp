// v4-fuse-swiglu: linear(h, gate), linear(h, up), swiglu -> v4.linear_swiglu
// (the clamp and activation run in the epilogue of the gate/up matmuls).
#include "passes/Passes.h"

#include "dialects/v4/V4Ops.h"

#include "mlir/IR/PatternMatch.h"

namespace v4c {
#define GEN_PASS_DEF_FUSESWIGLUPASS
#include "passes/Passes.h.inc"
} // namespace v4c

using namespace mlir;

namespace v4c {
namespace {

// The linear producing `value` if its result is used by `swiglu` alone (so
// erasing it loses nothing) and its weight is not quantized.
v4::LinearOp soleLinearFeeding(Value value, Operation *swiglu) {
  auto linear = value.getDefiningOp<v4::LinearOp>();
  if (!linear || v4::isQuantizedTensor(linear.getW().getType()))
    return nullptr;
  for (Operation *user : linear.getResult().getUsers())
    if (user != swiglu)
      return nullptr;
  return linear;
}

struct FuseSwigluPass : impl::FuseSwigluPassBase<FuseSwigluPass> {
  void runOnOperation() override {
    SmallVector<v4::SwigluOp> candidates;
    getOperation().walk([&](v4::SwigluOp op) { candidates.push_back(op); });
    IRRewriter rewriter(&getContext());
    for (v4::SwigluOp swiglu : candidates) {
      v4::LinearOp gate = soleLinearFeeding(swiglu.getGate(), swiglu);
      v4::LinearOp up = soleLinearFeeding(swiglu.getUp(), swiglu);
      if (!gate || !up || gate == up || gate.getX() != up.getX())
        continue;
      rewriter.setInsertionPoint(swiglu);
      auto fused = rewriter.create<v4::LinearSwigluOp>(
          swiglu.getLoc(), swiglu.getResult().getType(), gate.getX(), gate.getW(), up.getW(),
          swiglu.getLimitAttr());
      rewriter.replaceOp(swiglu, fused.getResult());
      rewriter.eraseOp(gate);
      rewriter.eraseOp(up);
    }
  }
};

} // namespace
} // namespace v4c
