// `v4c compile --dump-ir-after=PASS` and `--print-ir-after-all`: MLIR's IR
// printing instrumentation with a filter on pass arguments.
#pragma once

#include <string>
#include <vector>

#include "mlir/Pass/PassManager.h"

namespace v4c {

// The arguments (e.g. "v4-fuse-hc") of the passes of `pm`, in pipeline order.
std::vector<std::string> pipelinePassArguments(mlir::OpPassManager &pm);

// Prints the whole module to stderr after each pass of `pm` named in
// `passArguments` (or after every pass when `all`), whether or not the pass
// changed it. Throws v4c::Error listing the pipeline's passes when a name is
// not one of them. Disables multithreading (module-scope printing needs it).
void enableIrDumps(mlir::PassManager &pm, const std::vector<std::string> &passArguments, bool all);

} // namespace v4c
