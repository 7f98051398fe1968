// Enums of the v4 dialect (cache kinds, quantization formats), from V4Enums.td.
#pragma once

#include "mlir/IR/Attributes.h"
#include "mlir/IR/DialectImplementation.h"
#include "mlir/Support/LLVM.h"
#include "llvm/ADT/StringRef.h"

#include "dialects/v4/V4Enums.h.inc"
