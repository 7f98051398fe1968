// v4-lower-to-plan: each specialised function -> a plan.bucket of launches.
//
// Generic over v4 ops: every op other than v4.weight becomes one launch named
// after the op, so a new v4 op lowers without touching this file.
#include "passes/Passes.h"

#include "dialects/plan/PlanOps.h"
#include "dialects/v4/V4Ops.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/StringMap.h"

namespace v4c {
#define GEN_PASS_DEF_LOWERTOPLANPASS
#include "passes/Passes.h.inc"
} // namespace v4c

using namespace mlir;

namespace v4c {
namespace {

// Input names of the tensor arguments of @forward, in order.
constexpr const char *kInputNames[] = {"ids", "positions"};

// The plan.cache_slot of each cache name, shared by all buckets of the module.
class CacheSlots {
public:
  explicit CacheSlots(ModuleOp module) : module(module) {
    for (auto slot : module.getOps<plan::CacheSlotOp>())
      slots[slot.getSymName()] = slot;
  }

  // The slot for a cache argument of `function`, created before `function`
  // on first use; later buckets must agree on its schema.
  FailureOr<plan::CacheSlotOp> getOrCreate(func::FuncOp function, unsigned argIndex, v4::CacheType type) {
    auto name = function.getArgAttrOfType<StringAttr>(argIndex, "v4.cache_name");
    auto layer = function.getArgAttrOfType<IntegerAttr>(argIndex, "v4.layer");
    if (!name || name.getValue().empty() || !layer)
      return function.emitOpError() << "cache argument #" << argIndex
                                    << " lacks v4.cache_name (string) or v4.layer (integer) argument "
                                       "attributes; the model builder must name every cache";
    int64_t rows = type.hasStaticRows() ? type.getRows() : 0;
    StringRef kind = v4::stringifyCacheKind(type.getKind());
    // Only fp8 rows split into e4m3 and bf16 (rope) channels.
    IntegerAttr ropeWidth;
    if (type.getElementType().isFloat8E4M3FN())
      ropeWidth = IntegerAttr::get(IntegerType::get(module.getContext(), 64), type.getRopeWidth());
    auto existing = slots.find(name.getValue());
    if (existing != slots.end()) {
      plan::CacheSlotOp slot = existing->second;
      if (slot.getKind() != kind || slot.getLayer() != layer.getInt() || slot.getRows() != rows ||
          slot.getWidth() != type.getWidth() || slot.getRate() != type.getRate() ||
          slot.getElementType() != type.getElementType() || slot.getRopeWidthAttr() != ropeWidth)
        return function.emitOpError() << "cache argument #" << argIndex << " declares slot " << name
                                      << " with a different schema than an earlier bucket; give each "
                                         "cache a unique v4.cache_name";
      return slot;
    }
    if (Operation *clash = module.lookupSymbol(name.getValue()))
      return clash->emitOpError() << "has the symbol name " << name
                                  << " that a cache slot needs; rename the cache or the symbol";
    OpBuilder builder(module.getContext());
    setInsertionPointForSlot(builder);
    auto created = builder.create<plan::CacheSlotOp>(
        function.getLoc(), builder.getStringAttr(name.getValue()), builder.getStringAttr(kind),
        builder.getI64IntegerAttr(layer.getInt()), builder.getI64IntegerAttr(rows),
        builder.getI64IntegerAttr(type.getWidth()), builder.getI64IntegerAttr(type.getRate()),
        TypeAttr::get(type.getElementType()), ropeWidth);
    slots[name.getValue()] = created;
    return created;
  }

private:
  // Slots follow the existing slots, else the weight table, so the module
  // reads: weights, cache schema, buckets.
  void setInsertionPointForSlot(OpBuilder &builder) {
    Operation *anchor = nullptr;
    for (Operation &op : module.getBody()->getOperations())
      if (isa<plan::CacheSlotOp>(op) || op.getName().getStringRef() == "v4.global")
        anchor = &op;
    if (anchor)
      builder.setInsertionPointAfter(anchor);
    else
      builder.setInsertionPointToStart(module.getBody());
  }

  ModuleOp module;
  llvm::StringMap<plan::CacheSlotOp> slots;
};

FailureOr<plan::BufferType> bufferTypeOf(Operation *op, Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  if (!tensor || !tensor.hasStaticShape())
    return op->emitOpError() << "has type " << type
                             << ", which is not a static tensor; run --v4-specialize first";
  return plan::BufferType::get(op->getContext(), tensor.getShape(), tensor.getElementType());
}

// For each cache result of `op`, the index of the cache operand it updates:
// the first not yet claimed cache operand of the same type.
FailureOr<SmallVector<unsigned>> matchCacheUpdates(Operation *op) {
  SmallVector<unsigned> updated;
  SmallVector<bool> claimed(op->getNumOperands(), false);
  for (OpResult result : op->getResults()) {
    if (!isa<v4::CacheType>(result.getType()))
      continue;
    std::optional<unsigned> match;
    for (OpOperand &operand : op->getOpOperands())
      if (!claimed[operand.getOperandNumber()] && operand.get().getType() == result.getType()) {
        match = operand.getOperandNumber();
        break;
      }
    if (!match)
      return op->emitOpError() << "result #" << result.getResultNumber() << " is a cache of type "
                               << result.getType()
                               << " but no cache operand of that type is left for it to update; a "
                                  "cache result must be the new version of one cache operand";
    claimed[*match] = true;
    updated.push_back(*match);
  }
  return updated;
}

// Caches are updated in place, so the op that turns version k into k+1 must
// be the last reader of version k.
LogicalResult checkLastReader(Operation *updater, Value oldVersion) {
  for (Operation *user : oldVersion.getUsers())
    if (user != updater && updater->isBeforeInBlock(user))
      return updater->emitOpError()
             << "updates a cache in place, but '" << user->getName()
             << "' reads the old version afterwards; make the update the last reader of that version";
  return success();
}

class FunctionLowering {
public:
  FunctionLowering(func::FuncOp function, CacheSlots &slots) : function(function), slots(slots) {}

  LogicalResult run() {
    auto bucketAttr = function->getAttrOfType<DictionaryAttr>("v4.bucket");
    if (!bucketAttr)
      return function.emitOpError()
             << "has no v4.bucket attribute; run --v4-specialize=buckets=... before --v4-lower-to-plan";
    auto kind = bucketAttr.getAs<StringAttr>("kind");
    auto tokens = bucketAttr.getAs<IntegerAttr>("tokens");
    auto batch = bucketAttr.getAs<IntegerAttr>("batch");
    if (!kind || !tokens || !batch)
      return function.emitOpError()
             << "has a v4.bucket attribute without kind/tokens/batch; rerun --v4-specialize";
    if (!function.getBody().hasOneBlock())
      return function.emitOpError() << "has " << function.getBody().getBlocks().size()
                                    << " blocks; the model function must be one straight-line block";

    OpBuilder builder(function);
    bucket = builder.create<plan::BucketOp>(function.getLoc(), function.getSymName(), kind.getValue(),
                                            tokens.getInt(), batch.getInt());
    builder.setInsertionPoint(bucket.getBodyBlock().getTerminator());

    Block &body = function.getBody().front();
    if (failed(lowerArguments(builder, body)))
      return fail();
    auto returnOp = dyn_cast<func::ReturnOp>(body.getTerminator());
    if (!returnOp || returnOp.getNumOperands() == 0 || !isa<RankedTensorType>(returnOp.getOperand(0).getType()))
      return fail(function.emitOpError() << "must return the logits tensor first, then the caches");
    if (failed(lowerOutput(builder, returnOp)))
      return fail();
    for (Operation &op : body.without_terminator())
      if (failed(lowerOp(builder, &op)))
        return fail();
    if (failed(checkReturn(returnOp)))
      return fail();
    function.erase();
    return success();
  }

private:
  LogicalResult fail(LogicalResult result = failure()) {
    if (bucket)
      bucket.erase();
    return result;
  }

  LogicalResult lowerArguments(OpBuilder &builder, Block &body) {
    unsigned inputIndex = 0;
    for (BlockArgument argument : body.getArguments()) {
      unsigned index = argument.getArgNumber();
      if (auto cacheType = dyn_cast<v4::CacheType>(argument.getType())) {
        FailureOr<plan::CacheSlotOp> slot = slots.getOrCreate(function, index, cacheType);
        if (failed(slot))
          return failure();
        auto cache = builder.create<plan::CacheOp>(
            function.getLoc(), plan::CacheType::get(function.getContext()),
            FlatSymbolRefAttr::get(slot->getSymNameAttr()));
        mapping[argument] = cache;
        continue;
      }
      if (inputIndex >= std::size(kInputNames))
        return function.emitOpError() << "argument #" << index << " is a third tensor argument; "
                                      << "the model function takes ids, positions, then caches";
      auto tensor = dyn_cast<RankedTensorType>(argument.getType());
      if (!tensor || tensor.getRank() != 1 || !tensor.getElementType().isInteger(32))
        return function.emitOpError() << "argument #" << index << " (" << kInputNames[inputIndex]
                                      << ") has type " << argument.getType()
                                      << "; token inputs are one i32 per token, tensor<Nxi32>";
      FailureOr<plan::BufferType> type = bufferTypeOf(function, argument.getType());
      if (failed(type))
        return failure();
      mapping[argument] = builder.create<plan::InputOp>(function.getLoc(), *type,
                                                        builder.getStringAttr(kInputNames[inputIndex++]));
    }
    return success();
  }

  LogicalResult lowerOutput(OpBuilder &builder, func::ReturnOp returnOp) {
    logits = returnOp.getOperand(0);
    Operation *producer = logits.getDefiningOp();
    if (!producer || producer->getName().getStringRef() == "v4.weight")
      return returnOp.emitOpError() << "returns logits that no op computes; the logits must be the result "
                                       "of a v4 op";
    FailureOr<plan::BufferType> type = bufferTypeOf(producer, logits.getType());
    if (failed(type))
      return failure();
    logitsBuffer = builder.create<plan::OutputOp>(returnOp.getLoc(), *type, builder.getStringAttr("logits"));
    return success();
  }

  LogicalResult lowerOp(OpBuilder &builder, Operation *op) {
    if (op->getNumRegions() != 0)
      return op->emitOpError() << "has regions; only region-free v4 ops lower to plan launches";
    if (op->getName().getStringRef() == "v4.weight") {
      FailureOr<plan::BufferType> type = bufferTypeOf(op, op->getResult(0).getType());
      if (failed(type))
        return failure();
      mapping[op->getResult(0)] = builder.create<plan::WeightOp>(
          op->getLoc(), *type, op->getAttrOfType<FlatSymbolRefAttr>("name"));
      return success();
    }
    if (op->getDialect() == nullptr || op->getDialect()->getNamespace() != "v4")
      return op->emitOpError() << "is not a v4 op; only v4 ops lower to plan launches (fold or remove it "
                                  "before --v4-lower-to-plan)";

    SmallVector<Value> ins;
    for (Value operand : op->getOperands())
      ins.push_back(mapping.lookup(operand));

    FailureOr<SmallVector<unsigned>> updates = matchCacheUpdates(op);
    if (failed(updates))
      return failure();
    SmallVector<Value> outs;
    unsigned cacheResult = 0;
    for (OpResult result : op->getResults()) {
      Value out;
      if (isa<v4::CacheType>(result.getType())) {
        Value oldVersion = op->getOperand((*updates)[cacheResult++]);
        if (failed(checkLastReader(op, oldVersion)))
          return failure();
        out = mapping.lookup(oldVersion);
      } else if (result == logits) {
        out = logitsBuffer;
      } else {
        FailureOr<plan::BufferType> type = bufferTypeOf(op, result.getType());
        if (failed(type))
          return failure();
        out = builder.create<plan::AllocOp>(op->getLoc(), *type, IntegerAttr());
      }
      mapping[result] = out;
      outs.push_back(out);
    }
    if (outs.empty())
      return op->emitOpError() << "has no results; a launch must write at least one buffer";
    auto launch = builder.create<plan::LaunchOp>(op->getLoc(), op->getName().getStringRef(), ins, outs,
                                                 op->getAttrDictionary());
    // The op's V4_InPlaceElementwise property travels with the launch (ins
    // are the op's operands in order), so v4-plan-memory needs no v4 ops.
    SmallVector<int64_t> inPlace = v4::inPlaceOperands(op);
    if (!inPlace.empty())
      launch.setInPlaceAttr(builder.getDenseI64ArrayAttr(inPlace));
    return success();
  }

  // Only the logits and final cache versions leave the function.
  LogicalResult checkReturn(func::ReturnOp returnOp) {
    for (OpOperand &operand : returnOp->getOpOperands().drop_front())
      if (!isa<v4::CacheType>(operand.get().getType()))
        return returnOp.emitOpError() << "returns a non-cache value as result #" << operand.getOperandNumber()
                                      << "; the model function returns the logits, then the caches";
    return success();
  }

  func::FuncOp function;
  CacheSlots &slots;
  plan::BucketOp bucket;
  Value logits;
  Value logitsBuffer;
  DenseMap<Value, Value> mapping; // v4 value -> plan buffer or cache
};

struct LowerToPlanPass : impl::LowerToPlanPassBase<LowerToPlanPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    CacheSlots slots(module);
    for (func::FuncOp function : llvm::make_early_inc_range(module.getOps<func::FuncOp>()))
      if (failed(FunctionLowering(function, slots).run()))
        return signalPassFailure();
  }
};

} // namespace
} // namespace v4c
