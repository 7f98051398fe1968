// The v4c passes (see Passes.td for what each does, with examples).
//
// Declares, from the generated Passes.h.inc:
//   std::unique_ptr<mlir::Pass> createFuseCompressPass();        (and FuseSwiglu,
//     FuseHyperConnections, FuseNormLinear, FuseRopeAppend: docs/passes.md)
//   std::unique_ptr<mlir::Pass> createSpecializePass();
//   std::unique_ptr<mlir::Pass> createSpecializePass(SpecializePassOptions options);
//   std::unique_ptr<mlir::Pass> createLowerToPlanPass();
//   std::unique_ptr<mlir::Pass> createPlanMemoryPass();
#pragma once

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

#include <memory>
#include <string>
#include <vector>

namespace v4c {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

// Makes --v4-specialize, --v4-lower-to-plan, --v4-plan-memory and the
// --v4-default-pipeline (see Pipeline.h) known to v4-opt.
void registerV4Passes();

} // namespace v4c
