// The default v4c compile pipeline: specialise -> lower to plan -> plan memory.
#pragma once

#include "mlir/Pass/PassManager.h"

#include <string>

namespace v4c {

struct PipelineOptions {
  // Comma-separated shape buckets as kind:size ("prefill:64" = chunks of up
  // to 64 tokens, "decode:4" = one token for each of up to 4 sessions).
  std::string buckets = "prefill:64,decode:1";
  // Run the v4-fuse-* passes (v4c compile --no-fuse turns them off).
  bool fuse = true;
  // v4-quantize: dense linears fp32 | bf16 | fp8, routed experts same | fp4
  // (v4c compile --precision / --experts); the pass runs only when one asks.
  std::string precision = "fp32";
  std::string experts = "same";
  // v4-kv-cache-dtype: KV cache storage fp32 | bf16 | fp8 (v4c compile --kv-cache).
  std::string kvCache = "fp32";
  // v4-cast-precision: storage of weights and activations fp32 | bf16 (CUDA
  // --precision bf16 / fp8); the pass runs only for bf16.
  std::string activations = "fp32";
};

// Adds the passes to `pm`, which must run on builtin.module.
void buildDefaultPipeline(mlir::OpPassManager &pm, const PipelineOptions &options);

// Registers the pipeline as --v4-default-pipeline (options: buckets=...) for v4-opt.
void registerDefaultPipeline();

} // namespace v4c
