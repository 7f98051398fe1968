// #v4.quant: verification of the block-quantization tensor encoding.
#include "dialects/v4/V4Attrs.h"

#include "dialects/v4/V4Dialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace v4c::v4;

#define GET_ATTRDEF_CLASSES
#include "dialects/v4/V4Attrs.cpp.inc"

void V4Dialect::registerAttributes() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "dialects/v4/V4Attrs.cpp.inc"
      >();
}

LogicalResult QuantAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                QuantFormat format, ArrayRef<int64_t> block,
                                QuantScale scale) {
  if (block.empty())
    return emitError() << "#v4.quant needs at least one block size, e.g. block = [128, 128]";
  for (int64_t size : block)
    if (size <= 0)
      return emitError() << "#v4.quant block sizes must be positive, got " << size;
  return success();
}

LogicalResult
QuantAttr::verifyEncoding(ArrayRef<int64_t> shape, Type elementType,
                          function_ref<InFlightDiagnostic()> emitError) const {
  if (getBlock().size() > shape.size())
    return emitError() << "#v4.quant has " << getBlock().size()
                       << " block sizes but the tensor has rank " << shape.size()
                       << "; give one block size per trailing dimension at most";
  switch (getFormat()) {
  case QuantFormat::fp8_e4m3:
    if (!llvm::isa<Float8E4M3FNType>(elementType))
      return emitError() << "#v4.quant<fp8_e4m3> tensors store f8E4M3FN elements, got "
                         << elementType;
    break;
  case QuantFormat::fp4_e2m1:
    // MLIR 19 has no 4-bit float: one e2m1 code per i8 element in IR.
    if (!elementType.isSignlessInteger(8))
      return emitError() << "#v4.quant<fp4_e2m1> tensors store one e2m1 code per i8 "
                            "element, got "
                         << elementType;
    break;
  }
  return success();
}
