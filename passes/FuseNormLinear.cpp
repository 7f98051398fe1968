// v4-fuse-norm-linear: a v4.rms_norm whose result feeds only v4.linear inputs
// -> one v4.norm_linear with all their weights (the norm runs once, in the
// matmuls' prologue, and its result is never written out).
#include "passes/Passes.h"

#include "dialects/v4/V4Ops.h"

#include "mlir/IR/PatternMatch.h"

namespace v4c {
#define GEN_PASS_DEF_FUSENORMLINEARPASS
#include "passes/Passes.h.inc"
} // namespace v4c

using namespace mlir;

namespace v4c {
namespace {

// The linears reading `norm` as their input x, in block order; empty when the
// norm has any other user (that user would still need the normed tensor) or a
// linear cannot be fused.
SmallVector<v4::LinearOp> linearConsumers(v4::RmsNormOp norm) {
  SmallVector<v4::LinearOp> linears;
  for (OpOperand &use : norm.getResult().getUses()) {
    auto linear = dyn_cast<v4::LinearOp>(use.getOwner());
    if (!linear || use.getOperandNumber() != 0 || linear->getBlock() != norm->getBlock() ||
        v4::isQuantizedTensor(linear.getW().getType()))
      return {};
    // The fused op sits at the norm, so every weight must be available there:
    // defined before it, or a v4.weight we can hoist (it has no operands).
    Value weight = linear.getW();
    Operation *producer = weight.getDefiningOp();
    if (producer && producer->getBlock() == norm->getBlock() && norm->isBeforeInBlock(producer) &&
        !isa<v4::WeightOp>(producer))
      return {};
    linears.push_back(linear);
  }
  llvm::sort(linears, [](v4::LinearOp a, v4::LinearOp b) {
    return a->isBeforeInBlock(b);
  });
  return linears;
}

struct FuseNormLinearPass : impl::FuseNormLinearPassBase<FuseNormLinearPass> {
  void runOnOperation() override {
    SmallVector<v4::RmsNormOp> candidates;
    getOperation().walk([&](v4::RmsNormOp op) { candidates.push_back(op); });
    IRRewriter rewriter(&getContext());
    for (v4::RmsNormOp norm : candidates) {
      SmallVector<v4::LinearOp> linears = linearConsumers(norm);
      if (linears.empty())
        continue;
      SmallVector<Value> weights;
      SmallVector<Type> types;
      for (v4::LinearOp linear : linears) {
        Operation *producer = linear.getW().getDefiningOp();
        if (producer && producer->getBlock() == norm->getBlock() && norm->isBeforeInBlock(producer))
          rewriter.moveOpBefore(producer, norm);
        weights.push_back(linear.getW());
        types.push_back(linear.getResult().getType());
      }
      rewriter.setInsertionPoint(norm);
      auto fused = rewriter.create<v4::NormLinearOp>(norm.getLoc(), types, norm.getX(),
                                                     norm.getW(), weights, norm.getGroupAttr(),
                                                     norm.getEpsAttr());
      for (auto [linear, result] : llvm::zip(linears, fused.getResults()))
        rewriter.replaceOp(linear, result);
      rewriter.eraseOp(norm);
    }
  }
};

} // namespace
} // namespace v4c
