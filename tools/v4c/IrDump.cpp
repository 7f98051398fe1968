// IR dumps after selected passes of the v4c pipeline.
#include "tools/v4c/IrDump.h"

#include <algorithm>
#include <set>

#include "mlir/Pass/Pass.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/raw_ostream.h"

#include "common/Error.h"

namespace v4c {

std::vector<std::string> pipelinePassArguments(mlir::OpPassManager &pm) {
  // The default pipeline is flat (every pass runs on the module), so the
  // top-level passes are all of them.
  std::vector<std::string> arguments;
  for (mlir::Pass &pass : pm.getPasses())
    if (!pass.getArgument().empty())
      arguments.push_back(pass.getArgument().str());
  return arguments;
}

void enableIrDumps(mlir::PassManager &pm, const std::vector<std::string> &passArguments, bool all) {
  const std::vector<std::string> valid = pipelinePassArguments(pm);
  std::set<std::string> selected;
  for (const std::string &argument : passArguments) {
    v4c::check(std::find(valid.begin(), valid.end(), argument) != valid.end(),
               "--dump-ir-after: '" + argument + "' is not a pass of this pipeline; use one of: " +
                   llvm::join(valid, ", "));
    selected.insert(argument);
  }
  if (!all && selected.empty())
    return;
  pm.getContext()->disableMultithreading();
  auto never = [](mlir::Pass *, mlir::Operation *) { return false; };
  auto after = [all, selected](mlir::Pass *pass, mlir::Operation *) {
    return all || selected.count(pass->getArgument().str()) != 0;
  };
  pm.enableIRPrinting(never, after, /*printModuleScope=*/true, /*printAfterOnlyOnChange=*/false,
                      /*printAfterOnlyOnFailure=*/false, llvm::errs());
}

} // namespace v4c
