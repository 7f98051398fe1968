// The `v4` dialect: DeepSeek-V4 model-level ops (see docs/ops.md).
#pragma once

#include "mlir/IR/Dialect.h"

#include "dialects/v4/V4Dialect.h.inc"
