// Ops of the v4 dialect, one per row of docs/ops.md.
#pragma once

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "dialects/v4/V4Attrs.h"
#include "dialects/v4/V4Dialect.h"
#include "dialects/v4/V4Traits.h"
#include "dialects/v4/V4Types.h"

namespace v4c::v4 {

// True for a ranked tensor of `rank` dimensions that can hold a weight:
// f32/bf16 elements, or any element type under a #v4.quant encoding.
bool isWeightTensor(mlir::Type type, int64_t rank);

// True when `type` carries a #v4.quant encoding.
bool isQuantizedTensor(mlir::Type type);

} // namespace v4c::v4

#define GET_OP_CLASSES
#include "dialects/v4/V4Ops.h.inc"
