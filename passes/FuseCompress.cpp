// v4-fuse-compress: the compressor's kv and gate projections of one input
// join v4.compress as v4.linear_compress (projection, pooling, norm and rope
// in one kernel).
#include "passes/Passes.h"

#include "dialects/v4/V4Ops.h"

#include "mlir/IR/PatternMatch.h"

namespace v4c {
#define GEN_PASS_DEF_FUSECOMPRESSPASS
#include "passes/Passes.h.inc"
} // namespace v4c

using namespace mlir;

namespace v4c {
namespace {

// The v4.linear producing `value` when `consumer` is its only user and its
// weight is plain f32/bf16 (the fused kernel reads weights as the linear does
// before quantization); else null.
v4::LinearOp soleLinearFeeding(Value value, Operation *consumer) {
  auto linear = value.getDefiningOp<v4::LinearOp>();
  if (!linear || v4::isQuantizedTensor(linear.getW().getType()))
    return nullptr;
  for (Operation *user : linear.getResult().getUsers())
    if (user != consumer)
      return nullptr;
  return linear;
}

struct FuseCompressPass : impl::FuseCompressPassBase<FuseCompressPass> {
  void runOnOperation() override {
    SmallVector<v4::CompressOp> candidates;
    getOperation().walk([&](v4::CompressOp op) { candidates.push_back(op); });
    IRRewriter rewriter(&getContext());
    for (v4::CompressOp compress : candidates) {
      v4::LinearOp kv = soleLinearFeeding(compress.getKv(), compress);
      v4::LinearOp gate = soleLinearFeeding(compress.getGate(), compress);
      // Both projections must read the same input: the fused op takes one h.
      if (!kv || !gate || kv == gate || kv.getX() != gate.getX())
        continue;
      rewriter.setInsertionPoint(compress);
      auto fused = rewriter.create<v4::LinearCompressOp>(
          compress.getLoc(), compress->getResultTypes(),
          ValueRange{kv.getX(), kv.getW(), gate.getW(), compress.getPositionBias(),
                     compress.getNormW(), compress.getPositions(), compress.getState(),
                     compress.getEntries()},
          compress->getAttrs());
      rewriter.replaceOp(compress, fused->getResults());
      rewriter.eraseOp(kv);
      rewriter.eraseOp(gate);
    }
  }
};

} // namespace
} // namespace v4c
