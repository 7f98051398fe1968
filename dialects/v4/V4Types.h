// Types of the v4 dialect: !v4.cache<kind, rows = R, width = W[, rate = m], elt>.
#pragma once

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Types.h"

#include "dialects/v4/V4Enums.h"

#define GET_TYPEDEF_CLASSES
#include "dialects/v4/V4Types.h.inc"
