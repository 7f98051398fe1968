// Registration of the `plan` dialect and the implementation of its types.
#include "dialects/plan/PlanDialect.h"
#include "dialects/plan/PlanOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace v4c::plan;

#include "dialects/plan/PlanDialect.cpp.inc"

#define GET_TYPEDEF_CLASSES
#include "dialects/plan/PlanTypes.cpp.inc"

void PlanDialect::initialize() {
  addTypes<
#define GET_TYPEDEF_LIST
#include "dialects/plan/PlanTypes.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "dialects/plan/PlanOps.cpp.inc"
      >();
}

//===----------------------------------------------------------------------===//
// BufferType
//===----------------------------------------------------------------------===//

// `<` 64x128xf32 `>`: static dims, each followed by `x`, then the element type.
Type BufferType::parse(AsmParser &parser) {
  SmallVector<int64_t> shape;
  Type elementType;
  SMLoc loc = parser.getCurrentLocation();
  if (parser.parseLess() ||
      parser.parseDimensionList(shape, /*allowDynamic=*/false, /*withTrailingX=*/true) ||
      parser.parseType(elementType) || parser.parseGreater())
    return {};
  return parser.getChecked<BufferType>(loc, parser.getContext(), shape, elementType);
}

void BufferType::print(AsmPrinter &printer) const {
  printer << "<";
  for (int64_t dim : getShape())
    printer << dim << "x";
  printer << getElementType() << ">";
}

LogicalResult BufferType::verify(function_ref<InFlightDiagnostic()> emitError,
                                 ArrayRef<int64_t> shape, Type elementType) {
  for (int64_t dim : shape)
    if (dim <= 0)
      return emitError() << "buffer dimensions must be static and positive, got " << dim
                         << "; specialise shapes (v4-specialize) before lowering to plan";
  if (!elementType.isIntOrFloat())
    return emitError() << "buffer element type must be an integer or float type, got "
                       << elementType;
  return success();
}

int64_t BufferType::getNumElements() const {
  int64_t count = 1;
  for (int64_t dim : getShape())
    count *= dim;
  return count;
}

uint64_t BufferType::getByteSize() const {
  uint64_t elementBytes = (getElementType().getIntOrFloatBitWidth() + 7) / 8;
  return static_cast<uint64_t>(getNumElements()) * elementBytes;
}
