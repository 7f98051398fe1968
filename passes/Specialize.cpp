// v4-specialize: one clone of @forward per shape bucket, token dim made static.
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/StringSet.h"

namespace v4c {
#define GEN_PASS_DEF_SPECIALIZEPASS
#include "passes/Passes.h.inc"
} // namespace v4c

using namespace mlir;

namespace v4c {
namespace {

struct BucketSpec {
  std::string kind; // "prefill" or "decode"
  int64_t tokens = 0;
  int64_t batch = 1;
  std::string name() const { return kind + "_" + std::to_string(kind == "decode" ? batch : tokens); }
};

// Parses "prefill:64" / "decode:4"; decode:B runs one token for each of B sessions.
FailureOr<BucketSpec> parseBucket(StringRef text) {
  auto [kind, size] = text.split(':');
  int64_t value = 0;
  if ((kind != "prefill" && kind != "decode") || size.getAsInteger(10, value) || value <= 0)
    return failure();
  BucketSpec spec;
  spec.kind = kind.str();
  spec.tokens = value;
  spec.batch = kind == "decode" ? value : 1;
  return spec;
}

// Replaces the dynamic token dimension (dim 0) of a tensor type by `tokens`.
Type specializeType(Type type, int64_t tokens) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  if (!tensor || tensor.getRank() == 0 || !tensor.isDynamicDim(0))
    return type;
  SmallVector<int64_t> shape(tensor.getShape());
  shape[0] = tokens;
  return RankedTensorType::get(shape, tensor.getElementType(), tensor.getEncoding());
}

// Index of a dynamic dimension other than the token dim, or -1.
int64_t dynamicNonTokenDim(Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  if (!tensor)
    return -1;
  for (int64_t dim = 1; dim < tensor.getRank(); ++dim)
    if (tensor.isDynamicDim(dim))
      return dim;
  return -1;
}

LogicalResult checkOnlyTokenDimsDynamic(func::FuncOp forward) {
  for (auto [index, type] : llvm::enumerate(forward.getFunctionType().getInputs()))
    if (int64_t dim = dynamicNonTokenDim(type); dim >= 0)
      return forward.emitOpError() << "argument #" << index << " has type " << type
                                   << " with dynamic dimension " << dim
                                   << "; only dimension 0 (tokens) may be dynamic";
  for (auto [index, type] : llvm::enumerate(forward.getFunctionType().getResults()))
    if (int64_t dim = dynamicNonTokenDim(type); dim >= 0)
      return forward.emitOpError() << "result #" << index << " has type " << type
                                   << " with dynamic dimension " << dim
                                   << "; only dimension 0 (tokens) may be dynamic";
  WalkResult walk = forward.walk([](Operation *op) {
    for (Type type : op->getResultTypes())
      if (int64_t dim = dynamicNonTokenDim(type); dim >= 0) {
        op->emitOpError() << "result type " << type << " has dynamic dimension " << dim
                          << "; only dimension 0 (tokens) may be dynamic";
        return WalkResult::interrupt();
      }
    return WalkResult::advance();
  });
  return failure(walk.wasInterrupted());
}

void specializeFunction(func::FuncOp function, const BucketSpec &spec) {
  auto mapTypes = [&](TypeRange types) {
    SmallVector<Type> mapped;
    for (Type type : types)
      mapped.push_back(specializeType(type, spec.tokens));
    return mapped;
  };
  FunctionType type = function.getFunctionType();
  function.setFunctionType(
      FunctionType::get(function.getContext(), mapTypes(type.getInputs()), mapTypes(type.getResults())));
  function.walk([&](Operation *op) {
    for (Region &region : op->getRegions())
      for (Block &block : region)
        for (BlockArgument argument : block.getArguments())
          argument.setType(specializeType(argument.getType(), spec.tokens));
    for (OpResult result : op->getResults())
      result.setType(specializeType(result.getType(), spec.tokens));
  });
  Builder builder(function.getContext());
  function->setAttr("v4.bucket", builder.getDictionaryAttr({
                                     builder.getNamedAttr("kind", builder.getStringAttr(spec.kind)),
                                     builder.getNamedAttr("tokens", builder.getI64IntegerAttr(spec.tokens)),
                                     builder.getNamedAttr("batch", builder.getI64IntegerAttr(spec.batch)),
                                 }));
}

struct SpecializePass : impl::SpecializePassBase<SpecializePass> {
  using SpecializePassBase::SpecializePassBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (buckets.empty()) {
      module.emitError("v4-specialize needs at least one bucket; pass e.g. "
                       "--v4-specialize=buckets=prefill:64,decode:1");
      return signalPassFailure();
    }
    SmallVector<BucketSpec> specs;
    llvm::StringSet<> names;
    for (const std::string &text : buckets) {
      FailureOr<BucketSpec> spec = parseBucket(text);
      if (failed(spec)) {
        module.emitError() << "v4-specialize: bucket '" << text
                           << "' is not kind:size with kind prefill or decode and size > 0 "
                              "(e.g. prefill:64)";
        return signalPassFailure();
      }
      if (!names.insert(spec->name()).second) {
        module.emitError() << "v4-specialize: bucket '" << text << "' is listed twice; list each once";
        return signalPassFailure();
      }
      specs.push_back(*spec);
    }

    auto forward = module.lookupSymbol<func::FuncOp>("forward");
    if (!forward) {
      module.emitError("v4-specialize: the module has no func.func @forward to specialise; "
                       "build the model function first");
      return signalPassFailure();
    }
    if (failed(checkOnlyTokenDimsDynamic(forward)))
      return signalPassFailure();

    OpBuilder builder(forward);
    builder.setInsertionPointAfter(forward);
    for (const BucketSpec &spec : specs) {
      if (Operation *clash = module.lookupSymbol(spec.name())) {
        clash->emitOpError() << "already uses the name @" << spec.name()
                             << " that v4-specialize gives a bucket; rename it";
        return signalPassFailure();
      }
      auto clone = cast<func::FuncOp>(builder.clone(*forward));
      clone.setSymName(spec.name());
      specializeFunction(clone, spec);
    }
    forward.erase();
  }
};

} // namespace
} // namespace v4c
