// Op traits of the v4 dialect (dialects/v4/V4Traits.td says what each means).
#pragma once

#include "mlir/IR/OpDefinition.h"

#include "llvm/ADT/SmallVector.h"

namespace v4c::v4 {
namespace OpTrait {

// Result #0 may be written over an operand of the same type: the kernel reads
// each row of that operand before writing the same row of the result and
// touches no other row (V4_InPlaceElementwise).
template <typename ConcreteType>
class InPlaceElementwise : public mlir::OpTrait::TraitBase<ConcreteType, InPlaceElementwise> {
public:
  static mlir::LogicalResult verifyTrait(mlir::Operation *op) {
    if (op->getNumResults() == 0)
      return op->emitOpError() << "is marked InPlaceElementwise but has no result to write in place";
    return mlir::success();
  }
};

} // namespace OpTrait

// The operands that result #0 of `op` may overwrite: for an op with the
// InPlaceElementwise trait, each operand whose type equals result #0's type
// (so the two occupy the same bytes); empty for every other op.
inline llvm::SmallVector<int64_t> inPlaceOperands(mlir::Operation *op) {
  llvm::SmallVector<int64_t> operands;
  if (!op->hasTrait<OpTrait::InPlaceElementwise>() || op->getNumResults() == 0)
    return operands;
  mlir::Type resultType = op->getResult(0).getType();
  for (mlir::OpOperand &operand : op->getOpOperands())
    if (operand.get().getType() == resultType)
      operands.push_back(operand.getOperandNumber());
  return operands;
}

} // namespace v4c::v4
