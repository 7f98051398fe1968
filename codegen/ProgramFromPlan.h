// plan dialect -> v4rt::Program: the runtime's view of a compiled module.
#pragma once

#include "runtime/artifact/Program.h"

#include "mlir/IR/BuiltinOps.h"

#include <string>

namespace v4c {

// Converts a module after the default pipeline (v4.global weight table,
// plan.cache_slot schema, planned plan.buckets) into a Program for `target`.
// Weight data is left null; the compiler driver fills it from the checkpoint.
// Throws v4c::Error (with the op's location) on anything the runtime cannot
// run: unplanned allocs, unsupported dtypes or parameter kinds, foreign ops.
v4rt::Program programFromPlan(mlir::ModuleOp module, const std::string &target);

} // namespace v4c
