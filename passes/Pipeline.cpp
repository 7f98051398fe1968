// The default v4c compile pipeline.
#include "passes/Pipeline.h"

#include "passes/Passes.h"

#include "mlir/Pass/PassOptions.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/ADT/StringExtras.h"

namespace v4c {

void buildDefaultPipeline(mlir::OpPassManager &pm, const PipelineOptions &options) {
  llvm::SmallVector<llvm::StringRef> parts;
  llvm::StringRef(options.buckets).split(parts, ',', /*MaxSplit=*/-1, /*KeepEmpty=*/false);
  std::vector<std::string> buckets; // the pass copies them
  for (llvm::StringRef part : parts)
    buckets.push_back(part.trim().str());
  SpecializePassOptions specialize;
  specialize.buckets = buckets;
  pm.addPass(createSpecializePass(specialize));
  pm.addPass(createLowerToPlanPass());
  pm.addPass(createPlanMemoryPass());
}

namespace {
struct DefaultPipelineCLOptions : mlir::PassPipelineOptions<DefaultPipelineCLOptions> {
  ListOption<std::string> buckets{*this, "buckets",
                                  llvm::cl::desc("shape buckets, e.g. prefill:64,decode:1")};
};
} // namespace

void registerDefaultPipeline() {
  mlir::PassPipelineRegistration<DefaultPipelineCLOptions>(
      "v4-default-pipeline", "v4-specialize, v4-lower-to-plan, v4-plan-memory",
      [](mlir::OpPassManager &pm, const DefaultPipelineCLOptions &cl) {
        PipelineOptions options;
        if (!cl.buckets.empty())
          options.buckets = llvm::join(cl.buckets, ",");
        buildDefaultPipeline(pm, options);
      });
}

} // namespace v4c
