// Builds the whole DeepSeek-V4 graph for a config as `v4` dialect ops.
//
// The result is one module: a `v4.global` per checkpoint tensor (canonical HF
// names) and `func.func @forward(ids, positions, caches...) -> (logits,
// caches...)` over a dynamic number of tokens.
#pragma once

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OwningOpRef.h"

#include "models/config/ModelConfig.h"

namespace v4c {

// Loads the dialects the model needs into `context`.
void loadModelDialects(mlir::MLIRContext &context);

mlir::OwningOpRef<mlir::ModuleOp> buildModel(mlir::MLIRContext &context,
                                             const ModelConfig &config);

} // namespace v4c
