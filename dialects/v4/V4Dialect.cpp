// Registers the v4 dialect's types, attributes and ops (all from ODS).
#include "dialects/v4/V4Dialect.h"

#include "dialects/v4/V4Ops.h"

using namespace mlir;
using namespace v4c::v4;

#include "dialects/v4/V4Dialect.cpp.inc"

void V4Dialect::initialize() {
  registerTypes();
  registerAttributes();
  addOperations<
#define GET_OP_LIST
#include "dialects/v4/V4Ops.cpp.inc"
      >();
}
