// Attributes of the v4 dialect: #v4.quant<format, block = [...], scale = ...>,
// a tensor encoding for block-quantized weights.
#pragma once

#include "mlir/IR/Attributes.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/TensorEncoding.h"

#include "dialects/v4/V4Enums.h"

#define GET_ATTRDEF_CLASSES
#include "dialects/v4/V4Attrs.h.inc"
