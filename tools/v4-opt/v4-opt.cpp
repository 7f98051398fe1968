// v4-opt: parses, verifies, transforms and prints v4 IR, like mlir-opt.
#include "dialects/v4/V4Dialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

#ifdef V4_HAVE_PLAN
#include "dialects/plan/PlanDialect.h"
#endif
#ifdef V4_HAVE_PASSES
#include "passes/Passes.h"
#endif

int main(int argc, char **argv) {
  // Generic MLIR passes (canonicalize, cse, ...) that v4 pipelines build on.
  mlir::registerTransformsPasses();
#ifdef V4_HAVE_PASSES
  v4c::registerV4Passes();
#endif

  mlir::DialectRegistry registry;
  registry.insert<v4c::v4::V4Dialect, mlir::func::FuncDialect, mlir::arith::ArithDialect>();
#ifdef V4_HAVE_PLAN
  registry.insert<v4c::plan::PlanDialect>();
#endif
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "v4c optimizer driver\n", registry));
}
