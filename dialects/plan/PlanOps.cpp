// Builders and verifiers of the `plan` operations.
#include "dialects/plan/PlanOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/StringSwitch.h"

using namespace mlir;
using namespace v4c::plan;

#define GET_OP_CLASSES
#include "dialects/plan/PlanOps.cpp.inc"

namespace {

bool isCacheKind(StringRef kind) {
  return kind == "window" || kind == "compress_state" || kind == "entries";
}

// The bucket an op sits in (HasParent guarantees it once that trait verified).
BucketOp parentBucket(Operation *op) { return dyn_cast_or_null<BucketOp>(op->getParentOp()); }

} // namespace

//===----------------------------------------------------------------------===//
// CacheSlotOp
//===----------------------------------------------------------------------===//

LogicalResult CacheSlotOp::verify() {
  StringRef kind = getKind();
  if (!isCacheKind(kind))
    return emitOpError() << "has kind \"" << kind
                         << "\"; use one of \"window\", \"compress_state\", \"entries\"";
  if (getLayer() < 0)
    return emitOpError() << "has layer " << getLayer() << "; layers are numbered from 0";
  if (getWidth() <= 0)
    return emitOpError() << "has width " << getWidth() << "; a row needs at least one element";
  if (kind == "entries") {
    if (getRate() <= 0)
      return emitOpError() << "of kind entries has rate " << getRate()
                           << "; set rate to the compression rate m > 0";
    if (getRows() < 0)
      return emitOpError() << "of kind entries has rows " << getRows()
                           << "; set rows to the capacity, or 0 when entries grow unbounded";
  } else {
    if (getRows() <= 0)
      return emitOpError() << "of kind " << kind << " has rows " << getRows()
                           << "; a fixed-size cache needs rows > 0";
    if (getRate() != 0)
      return emitOpError() << "of kind " << kind << " has rate " << getRate()
                           << "; only entries caches have a rate, set rate = 0";
  }
  Type elementType = getElementType();
  const bool fp8 = elementType.isFloat8E4M3FN();
  if (!elementType.isF32() && !elementType.isBF16() && !elementType.isF16() && !fp8)
    return emitOpError() << "has element_type " << elementType
                         << "; use f32, bf16, f16 or f8E4M3FN";
  std::optional<uint64_t> ropeWidth = getRopeWidth();
  if (fp8 && !ropeWidth)
    return emitOpError() << "stores f8E4M3FN rows but has no rope_width; set rope_width to "
                            "the row's trailing bf16 (rope) channels, 0 when there are none";
  if (!fp8 && ropeWidth)
    return emitOpError() << "has rope_width but stores " << elementType
                         << " rows; only an f8E4M3FN slot splits its rows, remove rope_width";
  if (fp8 && (static_cast<int64_t>(*ropeWidth) < 0 || static_cast<int64_t>(*ropeWidth) >= getWidth()))
    return emitOpError() << "has rope_width " << static_cast<int64_t>(*ropeWidth)
                         << "; it must be in [0, width = " << getWidth() << ")";
  return success();
}

//===----------------------------------------------------------------------===//
// BucketOp
//===----------------------------------------------------------------------===//

void BucketOp::build(OpBuilder &builder, OperationState &state, StringRef name, StringRef kind,
                     int64_t tokens, int64_t batch) {
  state.addAttribute(SymbolTable::getSymbolAttrName(), builder.getStringAttr(name));
  state.addAttribute(getKindAttrName(state.name), builder.getStringAttr(kind));
  state.addAttribute(getTokensAttrName(state.name), builder.getI64IntegerAttr(tokens));
  state.addAttribute(getBatchAttrName(state.name), builder.getI64IntegerAttr(batch));
  Region *body = state.addRegion();
  ensureTerminator(*body, builder, state.location);
}

LogicalResult BucketOp::verify() {
  StringRef kind = getKind();
  if (kind != "prefill" && kind != "decode")
    return emitOpError() << "has kind \"" << kind << "\"; use \"prefill\" or \"decode\"";
  if (getTokens() <= 0 || getBatch() <= 0)
    return emitOpError() << "has tokens = " << getTokens() << ", batch = " << getBatch()
                         << "; both must be positive";
  if (kind == "prefill" && getBatch() != 1)
    return emitOpError() << "is a prefill bucket with batch " << getBatch()
                         << "; a prefill chunk belongs to one session, set batch = 1";
  if (kind == "decode" && getTokens() != getBatch())
    return emitOpError() << "is a decode bucket with tokens = " << getTokens()
                         << " and batch = " << getBatch()
                         << "; decode runs one token per session, set tokens = batch";
  if (getArenaBytes() && static_cast<int64_t>(*getArenaBytes()) < 0)
    return emitOpError() << "has negative arena_bytes; rerun v4-plan-memory";
  if (getNaiveBytes() && static_cast<int64_t>(*getNaiveBytes()) < 0)
    return emitOpError() << "has negative naive_bytes; rerun v4-plan-memory";
  return success();
}

//===----------------------------------------------------------------------===//
// InputOp / OutputOp
//===----------------------------------------------------------------------===//

LogicalResult InputOp::verify() {
  StringRef name = getName();
  if (name != "ids" && name != "positions")
    return emitOpError() << "has name \"" << name << "\"; a bucket's inputs are \"ids\" and \"positions\"";
  BufferType type = getResult().getType();
  if (type.getShape().size() != 1 || !type.getElementType().isInteger(32))
    return emitOpError() << "has type " << type << "; inputs are one i32 per token, e.g. !plan.buffer<"
                         << parentBucket(*this).getTokens() << "xi32>";
  if (type.getShape()[0] != parentBucket(*this).getTokens())
    return emitOpError() << "has " << type.getShape()[0] << " elements but the bucket has "
                         << parentBucket(*this).getTokens() << " tokens; make them equal";
  return success();
}

LogicalResult OutputOp::verify() {
  if (getName() != "logits")
    return emitOpError() << "has name \"" << getName() << "\"; the only output is \"logits\"";
  BufferType type = getResult().getType();
  if (type.getShape().size() != 2)
    return emitOpError() << "has type " << type << "; logits are [tokens, vocab]";
  if (type.getShape()[0] != parentBucket(*this).getTokens())
    return emitOpError() << "has " << type.getShape()[0] << " rows but the bucket has "
                         << parentBucket(*this).getTokens() << " tokens; make them equal";
  return success();
}

//===----------------------------------------------------------------------===//
// WeightOp / CacheOp
//===----------------------------------------------------------------------===//

LogicalResult WeightOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  Operation *global = symbolTable.lookupNearestSymbolFrom(*this, getNameAttr());
  if (!global)
    return emitOpError() << "refers to " << getNameAttr()
                         << ", which is not declared; add a module-level v4.global for it";
  auto declared = global->getAttrOfType<TypeAttr>("type");
  auto declaredType = declared ? dyn_cast<ShapedType>(declared.getValue()) : ShapedType();
  if (!declaredType || !declaredType.hasStaticShape())
    return emitOpError() << "refers to " << getNameAttr()
                         << ", which declares no static tensor `type`; refer to a v4.global";
  BufferType type = getResult().getType();
  if (declaredType.getShape() != type.getShape() ||
      declaredType.getElementType() != type.getElementType())
    return emitOpError() << "has type " << type << " but " << getNameAttr() << " is declared as "
                         << declaredType << "; use the declared shape and element type";
  return success();
}

LogicalResult CacheOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  if (!symbolTable.lookupNearestSymbolFrom<CacheSlotOp>(*this, getSlotAttr()))
    return emitOpError() << "refers to " << getSlotAttr()
                         << ", which is not a plan.cache_slot; declare the slot at module level";
  return success();
}

//===----------------------------------------------------------------------===//
// AllocOp
//===----------------------------------------------------------------------===//

LogicalResult AllocOp::verify() {
  std::optional<uint64_t> offset = getOffset();
  if (!offset)
    return success();
  int64_t start = static_cast<int64_t>(*offset);
  if (start < 0 || start % kAlignment != 0)
    return emitOpError() << "has offset " << start << "; offsets must be non-negative multiples of "
                         << kAlignment << " (rerun v4-plan-memory)";
  BucketOp bucket = parentBucket(*this);
  if (std::optional<uint64_t> arena = bucket.getArenaBytes()) {
    uint64_t end = static_cast<uint64_t>(start) + getResult().getType().getByteSize();
    if (end > *arena)
      return emitOpError() << "ends at byte " << end << ", past the bucket's arena_bytes = " << *arena
                           << "; rerun v4-plan-memory";
  }
  return success();
}

//===----------------------------------------------------------------------===//
// LaunchOp
//===----------------------------------------------------------------------===//

LogicalResult LaunchOp::verify() {
  if (getKernel().empty())
    return emitOpError() << "has an empty kernel name; name the kernel, e.g. \"v4.linear\"";
  if (getOuts().empty())
    return emitOpError() << "writes nothing; a launch needs at least one out buffer";
  for (Value out : getOuts()) {
    Operation *definer = out.getDefiningOp();
    if (!definer || !isa<AllocOp, OutputOp, CacheOp>(definer))
      return emitOpError() << "writes a value that is not a plan.alloc, plan.output or plan.cache; "
                              "inputs and weights are read-only";
  }
  if (std::optional<ArrayRef<int64_t>> inPlace = getInPlace()) {
    int64_t previous = -1;
    for (int64_t index : *inPlace) {
      if (index <= previous || index >= static_cast<int64_t>(getIns().size()))
        return emitOpError() << "has in_place index " << index << "; list distinct positions of `ins` in "
                             << "increasing order, each below " << getIns().size();
      previous = index;
    }
  }
  return success();
}
