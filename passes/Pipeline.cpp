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
  // The cache format first: it reads the rope_dim of the unfused producers.
  if (options.kvCache != "fp32") {
    KvCacheDtypePassOptions kvCache;
    kvCache.dtype = options.kvCache;
    pm.addPass(createKvCacheDtypePass(kvCache));
  }
  // Quantize before fusion: the fusions match v4.linear / v4.moe, and a
  // quantized op must not be fused into an f32 kernel.
  if (options.precision == "fp8" || options.experts == "fp4") {
    QuantizePassOptions quantize;
    quantize.precision = options.precision;
    quantize.experts = options.experts;
    pm.addPass(createQuantizePass(quantize));
  }
  // After quantize (it leaves #v4.quant weights alone), before fusion (the
  // fused ops take the narrowed types as they are).
  if (options.activations != "fp32") {
    CastPrecisionPassOptions cast;
    cast.precision = options.activations;
    pm.addPass(createCastPrecisionPass(cast));
  }
  // Fusion first, so each rewrite happens once on @forward, not per bucket;
  // the compressor and SwiGLU fusions take linears that the norm fusion
  // would otherwise claim, so they go before it.
  if (options.fuse) {
    pm.addPass(createFuseCompressPass());
    pm.addPass(createFuseSwigluPass());
    pm.addPass(createFuseHyperConnectionsPass());
    pm.addPass(createFuseNormLinearPass());
  }
  SpecializePassOptions specialize;
  specialize.buckets = buckets;
  pm.addPass(createSpecializePass(specialize));
  // Needs the static token count: legal for single-token (decode) chunks.
  if (options.fuse)
    pm.addPass(createFuseRopeAppendPass());
  pm.addPass(createLowerToPlanPass());
  pm.addPass(createPlanMemoryPass());
}

namespace {
struct DefaultPipelineCLOptions : mlir::PassPipelineOptions<DefaultPipelineCLOptions> {
  ListOption<std::string> buckets{*this, "buckets",
                                  llvm::cl::desc("shape buckets, e.g. prefill:64,decode:1")};
  Option<bool> fuse{*this, "fuse", llvm::cl::desc("run the v4-fuse-* passes"),
                    llvm::cl::init(true)};
  Option<std::string> precision{*this, "precision",
                                llvm::cl::desc("dense linears: fp32, bf16 or fp8 (runs v4-quantize)"),
                                llvm::cl::init("fp32")};
  Option<std::string> experts{*this, "experts", llvm::cl::desc("routed experts: same or fp4"),
                              llvm::cl::init("same")};
  Option<std::string> kvCache{*this, "kv-cache",
                              llvm::cl::desc("KV cache storage: fp32, bf16 or fp8 (runs v4-kv-cache-dtype)"),
                              llvm::cl::init("fp32")};
  Option<std::string> activations{*this, "activations",
                                  llvm::cl::desc("weight/activation storage: fp32 or bf16 (runs v4-cast-precision)"),
                                  llvm::cl::init("fp32")};
};
} // namespace

void registerDefaultPipeline() {
  mlir::PassPipelineRegistration<DefaultPipelineCLOptions>(
      "v4-default-pipeline", "v4-fuse-*, v4-specialize, v4-fuse-rope-append, v4-lower-to-plan, v4-plan-memory",
      [](mlir::OpPassManager &pm, const DefaultPipelineCLOptions &cl) {
        PipelineOptions options;
        if (!cl.buckets.empty())
          options.buckets = llvm::join(cl.buckets, ",");
        options.fuse = cl.fuse;
        options.precision = cl.precision;
        options.experts = cl.experts;
        options.kvCache = cl.kvCache;
        options.activations = cl.activations;
        buildDefaultPipeline(pm, options);
      });
}

} // namespace v4c
