// v4-cast-precision: the storage precision of weights and activations for
// the CUDA backend (v4c compile --precision bf16, and the bf16 activations
// of --precision fp8). Arithmetic stays fp32 in every kernel; only tensor
// element types change, so PlanMemory's sizes and the artifact's dtypes follow.
//
// Kept f32 (tiny tensors where rounding would matter):
//   - the logits (a returned v4.linear / v4.norm_linear result: the head
//     widens bf16 x to f32; other returned tensors follow the rule),
//   - router gate and bias weights (expert choice is a top-k on their scores)
//     and the router's weights result (already f32 by the op's definition),
//   - mHC fn / base / scale weights and the post / comb mixes (hc_pre,
//     hc_post_pre): Sinkhorn iterations on [T, hc*hc],
//   - attention sinks and the compressor's position_bias (added to logits
//     before a softmax).
// Integer tensors, i8 scales and #v4.quant weights are untouched; caches are
// v4-kv-cache-dtype's (the driver asks it for the activation precision).
#include "dialects/v4/V4Ops.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/StringSet.h"

namespace v4c {
#define GEN_PASS_DEF_CASTPRECISIONPASS
#include "passes/Passes.h.inc"
} // namespace v4c

using namespace mlir;

namespace v4c {
namespace {

// An unencoded f32 tensor type: the only kind this pass narrows.
bool isPlainF32Tensor(Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  return tensor && !tensor.getEncoding() && tensor.getElementType().isF32();
}

RankedTensorType narrowed(Type type, Type element) {
  auto tensor = cast<RankedTensorType>(type);
  return RankedTensorType::get(tensor.getShape(), element);
}

struct CastPrecisionPass : impl::CastPrecisionPassBase<CastPrecisionPass> {
  using CastPrecisionPassBase::CastPrecisionPassBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (precision == "fp32")
      return;
    if (precision != "bf16") {
      module.emitError() << "v4-cast-precision: unknown precision '" << precision
                         << "'; use fp32 (no change) or bf16";
      return signalPassFailure();
    }
    Type bf16 = BFloat16Type::get(&getContext());

    // Values that must stay f32: operands that read precision-critical
    // weights, and results that carry mixes / routing weights / logits.
    llvm::DenseSet<Value> keptOperands, keptResults;
    module.walk([&](Operation *op) {
      auto keepAll = [](llvm::DenseSet<Value> &set, auto... values) { (set.insert(values), ...); };
      if (auto router = dyn_cast<v4::RouterOp>(op)) {
        keepAll(keptOperands, router.getGate(), router.getBias());
        keepAll(keptResults, router.getWeights());
      } else if (auto router = dyn_cast<v4::HashRouterOp>(op)) {
        keepAll(keptOperands, router.getGate());
        keepAll(keptResults, router.getWeights());
      } else if (auto pre = dyn_cast<v4::HcPreOp>(op)) {
        keepAll(keptOperands, pre.getFn(), pre.getBase(), pre.getScale());
        keepAll(keptResults, pre.getPost(), pre.getComb());
      } else if (auto fused = dyn_cast<v4::HcPostPreOp>(op)) {
        keepAll(keptOperands, fused.getFn(), fused.getBase(), fused.getScale());
        keepAll(keptResults, fused.getNewPost(), fused.getNewComb());
      } else if (auto head = dyn_cast<v4::HcHeadOp>(op)) {
        keepAll(keptOperands, head.getFn(), head.getBase(), head.getScale());
      } else if (auto attention = dyn_cast<v4::AttentionOp>(op)) {
        keepAll(keptOperands, attention.getSinks());
      } else if (auto compress = dyn_cast<v4::CompressOp>(op)) {
        keepAll(keptOperands, compress.getPositionBias());
      } else if (auto compress = dyn_cast<v4::LinearCompressOp>(op)) {
        keepAll(keptOperands, compress.getPositionBias());
      } else if (auto ret = dyn_cast<func::ReturnOp>(op)) {
        // Logits: a returned projection result (the head) widens to f32.
        for (Value value : ret.getOperands())
          if (isa_and_nonnull<v4::LinearOp, v4::NormLinearOp>(value.getDefiningOp()))
            keptResults.insert(value);
      }
    });

    // A global stays f32 when any of its reads feeds a kept operand.
    llvm::StringSet<> keptGlobals;
    module.walk([&](v4::WeightOp weight) {
      if (keptOperands.contains(weight.getResult()))
        keptGlobals.insert(weight.getName());
    });
    for (auto global : module.getOps<v4::GlobalOp>())
      if (isPlainF32Tensor(global.getType()) && !keptGlobals.contains(global.getSymName()))
        global.setType(narrowed(global.getType(), bf16));

    for (auto function : module.getOps<func::FuncOp>()) {
      if (function.isExternal())
        continue;
      for (BlockArgument argument : function.getArguments())
        if (isPlainF32Tensor(argument.getType()))
          argument.setType(narrowed(argument.getType(), bf16));
      function.walk([&](Operation *op) {
        if (auto weight = dyn_cast<v4::WeightOp>(op)) { // follows its global
          if (isPlainF32Tensor(weight.getType()) && !keptGlobals.contains(weight.getName()))
            weight.getResult().setType(narrowed(weight.getType(), bf16));
          return;
        }
        for (OpResult result : op->getResults())
          if (isPlainF32Tensor(result.getType()) && !keptResults.contains(result))
            result.setType(narrowed(result.getType(), bf16));
      });
      Operation *terminator = function.getBody().back().getTerminator();
      function.setFunctionType(FunctionType::get(&getContext(), function.getBody().getArgumentTypes(),
                                                 terminator->getOperandTypes()));
    }
  }
};

} // namespace
} // namespace v4c
