// v4-quantize: dense linears -> v4.linear_fp8 (e4m3, 128x128 blocks) and
// routed experts -> v4.moe_fp4 (e2m1, 1x32 blocks), with ue8m0 scale globals.
// The pass only changes types and ops; the driver writes the quantized bytes
// (runtime/cpu/Quantization.h) into the globals it marks.
#include "passes/Quantize.h"

#include "dialects/v4/V4Attrs.h"
#include "dialects/v4/V4Ops.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/SetVector.h"

namespace v4c {
#define GEN_PASS_DEF_QUANTIZEPASS
#include "passes/Passes.h.inc"
} // namespace v4c

using namespace mlir;

namespace v4c {

bool isReleasedInFp8(StringRef name) {
  if (name == "lm_head.weight" || name.ends_with("weights_proj.weight"))
    return false;
  // Compressor (and the indexer's compressor) kv / gate projections.
  if (name.contains(".compressor.") &&
      (name.ends_with(".kv_proj.weight") || name.ends_with(".gate_proj.weight")))
    return false;
  return true;
}

namespace {

constexpr int64_t kFp8Block = 128; // DeepSeek's 128 x 128 weight blocks
constexpr int64_t kFp4Block = 32;  // 1 x 32 expert blocks

// A weight global with every v4.weight that reads it.
struct GlobalUses {
  v4::GlobalOp global;
  SmallVector<v4::WeightOp> reads;
};

RankedTensorType quantizedType(RankedTensorType type, v4::QuantFormat format, ArrayRef<int64_t> block) {
  MLIRContext *context = type.getContext();
  Type element = format == v4::QuantFormat::fp8_e4m3 ? Type(Float8E4M3FNType::get(context))
                                                     : Type(IntegerType::get(context, 8));
  auto encoding = v4::QuantAttr::get(context, format, block, v4::QuantScale::ue8m0);
  return RankedTensorType::get(type.getShape(), element, encoding);
}

RankedTensorType scaleType(RankedTensorType type, ArrayRef<int64_t> block) {
  SmallVector<int64_t> shape(type.getShape());
  const size_t rank = shape.size();
  shape[rank - 2] = (shape[rank - 2] + block[0] - 1) / block[0];
  shape[rank - 1] = (shape[rank - 1] + block[1] - 1) / block[1];
  return RankedTensorType::get(shape, IntegerType::get(type.getContext(), 8));
}

bool isHighPrecision(RankedTensorType type) {
  return !type.getEncoding() && (type.getElementType().isF32() || type.getElementType().isBF16());
}

// Every user of every read of `uses` satisfies `accept(user, operandNumber)`.
template <typename Fn> bool allUsesAre(const GlobalUses &uses, Fn accept) {
  for (v4::WeightOp read : uses.reads)
    for (OpOperand &use : read->getUses())
      if (!accept(use.getOwner(), use.getOperandNumber()))
        return false;
  return true;
}

struct QuantizePass : impl::QuantizePassBase<QuantizePass> {
  using QuantizePassBase::QuantizePassBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (precision != "fp32" && precision != "bf16" && precision != "fp8") {
      module.emitError() << "v4-quantize: precision must be fp32, bf16 or fp8, got '" << precision << "'";
      return signalPassFailure();
    }
    if (experts != "same" && experts != "fp4") {
      module.emitError() << "v4-quantize: experts must be same or fp4, got '" << experts << "'";
      return signalPassFailure();
    }
    llvm::MapVector<StringRef, GlobalUses> globals;
    module.walk([&](v4::GlobalOp global) { globals[global.getSymName()].global = global; });
    module.walk([&](v4::WeightOp read) {
      auto it = globals.find(read.getName());
      if (it != globals.end())
        it->second.reads.push_back(read);
    });
    if (precision == "fp8")
      quantizeLinears(globals);
    if (experts == "fp4")
      quantizeExperts(globals);
  }

  // Replaces `uses`' global by a quantized one plus a scale global and
  // returns, per read, the (data, scale) values to use instead.
  SmallVector<std::pair<Value, Value>> quantizeGlobal(GlobalUses &uses, v4::QuantFormat format,
                                                      ArrayRef<int64_t> block) {
    v4::GlobalOp global = uses.global;
    auto original = cast<RankedTensorType>(global.getType());
    RankedTensorType dataType = quantizedType(original, format, block);
    RankedTensorType scalesType = scaleType(original, block);
    MLIRContext *context = global.getContext();
    const std::string source = global.getSymName().str();
    const std::string scaleName = source + ".scale";
    OpBuilder builder(global);
    builder.setInsertionPointAfter(global);
    auto scaleGlobal = builder.create<v4::GlobalOp>(global.getLoc(), scaleName, scalesType);
    scaleGlobal->setAttr(kQuantSourceAttr, StringAttr::get(context, source));
    scaleGlobal->setAttr(kQuantPartAttr, StringAttr::get(context, "scale"));
    global.setType(dataType);
    global->setAttr(kQuantSourceAttr, StringAttr::get(context, source));
    global->setAttr(kQuantPartAttr, StringAttr::get(context, "data"));

    SmallVector<std::pair<Value, Value>> values;
    for (v4::WeightOp read : uses.reads) {
      read.getResult().setType(dataType);
      builder.setInsertionPointAfter(read);
      auto scaleRead = builder.create<v4::WeightOp>(read.getLoc(), scalesType,
                                                    FlatSymbolRefAttr::get(context, scaleName));
      values.push_back({read.getResult(), scaleRead.getResult()});
    }
    return values;
  }

  void quantizeLinears(llvm::MapVector<StringRef, GlobalUses> &globals) {
    const SmallVector<int64_t> block = {kFp8Block, kFp8Block};
    for (auto &[name, uses] : globals) {
      auto type = cast<RankedTensorType>(uses.global.getType());
      if (uses.reads.empty() || type.getRank() != 2 || !isHighPrecision(type) || !isReleasedInFp8(name))
        continue;
      // Only when the weight feeds nothing but v4.linear weights: a tied
      // embedding (also read by v4.embed) stays in high precision.
      if (!allUsesAre(uses, [](Operation *user, unsigned operand) {
            return isa<v4::LinearOp>(user) && operand == 1;
          }))
        continue;
      for (auto [data, scale] : quantizeGlobal(uses, v4::QuantFormat::fp8_e4m3, block)) {
        for (OpOperand &use : llvm::make_early_inc_range(data.getUses())) {
          auto linear = cast<v4::LinearOp>(use.getOwner());
          OpBuilder builder(linear);
          auto quantized = builder.create<v4::LinearFp8Op>(linear.getLoc(), linear.getResult().getType(),
                                                           linear.getX(), data, scale,
                                                           builder.getDenseI64ArrayAttr(block));
          linear.getResult().replaceAllUsesWith(quantized.getResult());
          linear.erase();
        }
      }
    }
  }

  void quantizeExperts(llvm::MapVector<StringRef, GlobalUses> &globals) {
    const SmallVector<int64_t> block = {1, kFp4Block};
    // Expert globals read only as v4.moe gate_up (operand 3) or down (4).
    llvm::SetVector<StringRef> candidates;
    for (auto &[name, uses] : globals) {
      auto type = cast<RankedTensorType>(uses.global.getType());
      if (!uses.reads.empty() && type.getRank() == 3 && isHighPrecision(type) &&
          allUsesAre(uses, [](Operation *user, unsigned operand) {
            return isa<v4::MoeOp>(user) && (operand == 3 || operand == 4);
          }))
        candidates.insert(name);
    }
    // A v4.moe is rewritten only when both of its expert weights can be.
    SmallVector<v4::MoeOp> moes;
    getOperation().walk([&](v4::MoeOp moe) {
      auto gateUp = moe.getGateUp().getDefiningOp<v4::WeightOp>();
      auto down = moe.getDown().getDefiningOp<v4::WeightOp>();
      if (gateUp && down && candidates.count(gateUp.getName()) && candidates.count(down.getName()))
        moes.push_back(moe);
      else if (gateUp && down) {
        candidates.remove(gateUp.getName());
        candidates.remove(down.getName());
      }
    });
    llvm::DenseMap<Value, Value> scaleOf;
    for (StringRef name : candidates)
      for (auto [data, scale] : quantizeGlobal(globals[name], v4::QuantFormat::fp4_e2m1, block))
        scaleOf[data] = scale;
    for (v4::MoeOp moe : moes) {
      Value gateUpScale = scaleOf.lookup(moe.getGateUp()), downScale = scaleOf.lookup(moe.getDown());
      if (!gateUpScale || !downScale)
        continue; // a partner weight was shared with a v4.moe that could not be rewritten
      OpBuilder builder(moe);
      auto quantized = builder.create<v4::MoeFp4Op>(
          moe.getLoc(), moe.getResult().getType(), moe.getH(), moe.getWeights(), moe.getExperts(),
          moe.getGateUp(), gateUpScale, moe.getDown(), downScale, moe.getSwigluLimitAttr(),
          builder.getDenseI64ArrayAttr(block));
      moe.getResult().replaceAllUsesWith(quantized.getResult());
      moe.erase();
    }
    // Expert weights shared between a rewritable and a non-rewritable v4.moe
    // would leave fp4 codes where f32 is read: refuse rather than miscompute.
    getOperation().walk([&](v4::MoeOp moe) {
      if (v4::isQuantizedTensor(moe.getGateUp().getType()) || v4::isQuantizedTensor(moe.getDown().getType())) {
        moe.emitOpError() << "shares expert weights with another v4.moe; v4-quantize experts=fp4 needs "
                             "each expert tensor read by v4.moe ops it can all rewrite (use experts=same)";
        signalPassFailure();
      }
    });
  }
};

} // namespace
} // namespace v4c
