// The default v4c compile pipeline: specialise -> lower to plan -> plan memory.
#pragma once

#include "mlir/Pass/PassManager.h"

#include <string>

namespace v4c {

struct PipelineOptions {
  // Comma-separated shape buckets as kind:size ("prefill:64" = chunks of up
  // to 64 tokens, "decode:4" = one token for each of up to 4 sessions).
  std::string buckets = "prefill:64,decode:1";
};

// Adds the passes to `pm`, which must run on builtin.module.
void buildDefaultPipeline(mlir::OpPassManager &pm, const PipelineOptions &options);

// Registers the pipeline as --v4-default-pipeline (options: buckets=...) for v4-opt.
void registerDefaultPipeline();

} // namespace v4c
