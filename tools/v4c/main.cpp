// v4c: the compiler driver.
//   v4c import CHECKPOINT_DIR -o model.mlir        the v4 graph of a checkpoint
//   v4c compile CHECKPOINT_DIR --target cpu -o model.v4a [--decode-batch 1,4,8]
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "mlir/IR/AsmState.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/raw_ostream.h"

#include "codegen/ProgramFromPlan.h"
#include "common/Error.h"
#include "common/ParseInteger.h"
#include "dialects/plan/PlanDialect.h"
#include "dialects/plan/PlanOps.h"
#include "dialects/v4/V4Dialect.h"
#include "dialects/v4/V4Ops.h"
#include "frontend/Checkpoint.h"
#include "models/ModelBuilder.h"
#include "models/config/NamedConfigs.h"
#include "passes/Passes.h"
#include "passes/Pipeline.h"
#include "passes/Quantize.h"
#include "runtime/artifact/ArtifactWriter.h"
#include "runtime/artifact/ArtifactReader.h"
#include "tools/CommandLine.h"
#include "tools/v4c/CacheStats.h"
#include "tools/v4c/DummyRecipes.h"
#include "tools/v4c/FusionStats.h"
#include "tools/v4c/IrDump.h"
#include "tools/v4c/TargetOptions.h"
#include "tools/v4c/WeightSource.h"

namespace {

struct Options {
  std::string input;        // checkpoint directory
  std::string namedModel;   // --model v4-flash (import without weights)
  std::string output;
  std::string target = "cpu";
  int64_t prefillChunk = 64;
  // --decode-batch 1,4,8: one decode bucket per session count (continuous
  // batching); not given: kDefaultDecodeBatches.
  std::string decodeBatch;
  bool decodeBatchGiven = false;
  bool printPipeline = false;
  bool printIrAfterAll = false;
  std::vector<std::string> dumpIrAfter; // --dump-ir-after: pass arguments
  bool stats = false;
  bool noFuse = false;       // --no-fuse: skip the v4-fuse-* passes
  std::string precision = "fp32"; // dense linears: fp32 | fp8
  std::string experts = "same";   // routed experts: same | fp4
  std::string kvCache = "fp32";   // KV cache storage: fp32 | bf16 | fp8
  bool kvCacheGiven = false;      // --kv-cache given; else CUDA caches follow the activations
  std::string weights = "checkpoint"; // checkpoint | dummy (generated at load; no weight bytes)
  uint64_t dummySeed = 1;             // --dummy-seed
  std::string keepCudaSource;         // --keep-cuda-source DIR
  std::string tensorCores = "wmma";   // --tensor-cores wmma | wgmma (sm_90a)
  std::string artifact;               // dummy-checkpoint: the dummy artifact to expand
};

// Per bucket: kernels launched, planned arena, the naive sum of all
// intermediates and the lower bound (most bytes live during one launch).
void printStats(mlir::ModuleOp module) {
  std::printf("%-14s %8s %14s %14s %14s %10s\n", "bucket", "kernels", "arena_bytes", "naive_bytes",
              "peak_live", "arena/peak");
  nlohmann::json rows = nlohmann::json::array();
  for (auto bucket : module.getOps<v4c::plan::BucketOp>()) {
    int64_t kernels = 0;
    bucket.getBodyBlock().walk([&](v4c::plan::LaunchOp) { ++kernels; });
    const uint64_t arena = bucket.getArenaBytes().value_or(0);
    const uint64_t naive = bucket.getNaiveBytes().value_or(0);
    uint64_t peak = 0;
    if (auto attr = bucket->getAttrOfType<mlir::IntegerAttr>("peak_live_bytes"))
      peak = attr.getInt();
    const double ratio = peak ? static_cast<double>(arena) / peak : 0.0;
    std::printf("%-14s %8lld %14llu %14llu %14llu %10.3f\n", bucket.getSymName().str().c_str(),
                static_cast<long long>(kernels), static_cast<unsigned long long>(arena),
                static_cast<unsigned long long>(naive), static_cast<unsigned long long>(peak), ratio);
    rows.push_back({{"bucket", bucket.getSymName().str()}, {"kernels", kernels}, {"arena_bytes", arena},
                    {"naive_bytes", naive}, {"peak_live_bytes", peak}});
  }
  std::printf("%s\n", nlohmann::json{{"stats", rows}}.dump().c_str());
}

// Into a temporary next to `path`, renamed over it once complete: a file the
// user already has there is replaced whole or not at all.
void writeText(const std::string &path, llvm::function_ref<void(llvm::raw_ostream &)> write) {
  if (path.empty() || path == "-") {
    write(llvm::outs());
    return;
  }
  llvm::Error error = llvm::writeToOutput(path, [&](llvm::raw_ostream &os) {
    write(os);
    return llvm::Error::success();
  });
  if (error)
    throw v4c::Error(path + ": cannot write: " + llvm::toString(std::move(error)));
}

mlir::OwningOpRef<mlir::ModuleOp> importModel(mlir::MLIRContext &context, const Options &options,
                                              std::unique_ptr<v4c::Checkpoint> &checkpoint) {
  if (!options.namedModel.empty())
    return v4c::buildModel(context, v4c::namedConfig(options.namedModel));
  v4c::check(!options.input.empty(), "give a checkpoint directory (or --model NAME)");
  checkpoint = std::make_unique<v4c::Checkpoint>(v4c::Checkpoint::open(options.input));
  return v4c::buildModel(context, checkpoint->config());
}

int runImport(const Options &options) {
  mlir::MLIRContext context;
  std::unique_ptr<v4c::Checkpoint> checkpoint;
  auto module = importModel(context, options, checkpoint);
  v4c::check(mlir::succeeded(mlir::verify(*module)), "internal error: the built graph does not verify");
  writeText(options.output, [&](llvm::raw_ostream &os) { module->print(os); });
  return 0;
}

// The globals v4-quantize marked, by weight-table name, for the weight source.
std::map<std::string, v4c::QuantizedGlobal> quantizedGlobals(mlir::ModuleOp module) {
  std::map<std::string, v4c::QuantizedGlobal> dataBySource, globals;
  std::vector<std::pair<std::string, std::string>> scales; // (global, source)
  for (auto global : module.getOps<v4c::v4::GlobalOp>()) {
    auto part = global->getAttrOfType<mlir::StringAttr>(v4c::kQuantPartAttr);
    auto source = global->getAttrOfType<mlir::StringAttr>(v4c::kQuantSourceAttr);
    if (!part || !source)
      continue;
    if (part.getValue() == "scale") {
      scales.push_back({global.getSymName().str(), source.str()});
      continue;
    }
    auto type = mlir::cast<mlir::RankedTensorType>(global.getType());
    auto encoding = mlir::dyn_cast_or_null<v4c::v4::QuantAttr>(type.getEncoding());
    v4c::check(encoding && encoding.getBlock().size() == 2,
               "internal error: quantized global " + global.getSymName().str() + " has no 2-D #v4.quant encoding");
    v4c::QuantizedGlobal data;
    data.source = source.str();
    data.format = encoding.getFormat() == v4c::v4::QuantFormat::fp8_e4m3 ? v4rt::quant::Format::E4M3
                                                                          : v4rt::quant::Format::E2M1;
    data.block = {encoding.getBlock()[0], encoding.getBlock()[1]};
    data.shape.assign(type.getShape().begin(), type.getShape().end());
    dataBySource[data.source] = data;
    globals[global.getSymName().str()] = data;
  }
  for (const auto &[name, source] : scales) {
    auto data = dataBySource.find(source);
    v4c::check(data != dataBySource.end(), "internal error: scale global " + name + " has no data global");
    v4c::QuantizedGlobal scale = data->second;
    scale.isScale = true;
    globals[name] = scale;
  }
  return globals;
}

// decode_1 only, unless asked: each bucket adds a plan (and, for CUDA, its
// kernels and nvcc time) to the artifact. CUDA targets batch up to
// kMaxCudaDecodeBatch sessions per bucket (e.g. --decode-batch 1,8,32,64): a
// GPU decode step stays bound by weight reads up to dozens of rows.
constexpr const char *kDefaultDecodeBatches = "1";
constexpr int64_t kMaxCudaDecodeBatch = 64;

// "1,4,8" -> {1, 4, 8}: distinct session counts in [1, 4096], ascending.
std::vector<int64_t> parseDecodeBatches(const std::string &text) {
  std::vector<int64_t> batches;
  size_t begin = 0;
  while (begin <= text.size()) {
    const size_t end = std::min(text.find(',', begin), text.size());
    const std::string item = text.substr(begin, end - begin);
    const long long value = v4c::parseInteger(item).value_or(0);
    v4c::check(value >= 1 && value <= 4096,
               "--decode-batch: '" + item + "' is not a session count in [1, 4096] (want e.g. 1,4,8)");
    v4c::check(batches.empty() || value > batches.back(),
               "--decode-batch: list each session count once, ascending (e.g. 1,4,8)");
    batches.push_back(value);
    begin = end + 1;
  }
  return batches;
}

std::vector<int64_t> decodeBatches(const Options &options) {
  return parseDecodeBatches(options.decodeBatchGiven ? options.decodeBatch : kDefaultDecodeBatches);
}

v4c::PipelineOptions pipelineOptions(const Options &options) {
  v4c::PipelineOptions pipeline;
  pipeline.buckets = "prefill:" + std::to_string(options.prefillChunk);
  for (int64_t batch : decodeBatches(options))
    pipeline.buckets += ",decode:" + std::to_string(batch);
  pipeline.fuse = !options.noFuse;
  pipeline.precision = options.precision;
  pipeline.experts = options.experts;
  pipeline.kvCache = options.kvCache;
  pipeline.activations = v4c::activationPrecision(options.target, options.precision);
  if (!options.kvCacheGiven && v4c::isCudaTarget(options.target))
    pipeline.kvCache = pipeline.activations; // caches in the activation precision
  // CUDA bf16: nothing to quantize (v4-quantize only runs for fp8 / fp4).
  return pipeline;
}

int runCompile(const Options &options) {
  v4c::checkTargetOptions(options.target, options.precision, options.weights, options.tensorCores);
  const bool dummy = options.weights == "dummy";
  v4c::check(options.prefillChunk >= 1 && options.prefillChunk <= 65536,
             "--prefill-chunk must be in [1, 65536]");
  const std::vector<int64_t> batches = decodeBatches(options); // errors before any work
  v4c::check(!v4c::isCudaTarget(options.target) || batches.back() <= kMaxCudaDecodeBatch,
             "--decode-batch: " + options.target + " decode buckets hold at most " +
                 std::to_string(kMaxCudaDecodeBatch) + " sessions (got " + std::to_string(batches.back()) +
                 "; e.g. 1,8,32,64)");
  v4c::check(!(pipelineOptions(options).activations == "bf16" && pipelineOptions(options).kvCache == "fp8"),
             "--kv-cache fp8 stores f32 rows only; with bf16 activations (CUDA --precision bf16 / fp8) use "
             "--kv-cache bf16");
  mlir::MLIRContext context;
  context.loadDialect<v4c::plan::PlanDialect>();
  mlir::PassManager pm(&context);
  v4c::buildDefaultPipeline(pm, pipelineOptions(options));
  if (options.printPipeline) {
    pm.printAsTextualPipeline(llvm::outs());
    llvm::outs() << "\n";
    return 0;
  }
  // Before the import, so a misspelt pass fails fast.
  v4c::enableIrDumps(pm, options.dumpIrAfter, options.printIrAfterAll);
  std::unique_ptr<v4c::Checkpoint> checkpoint;
  // --weights dummy: the config only (--model NAME or DIR/config.json).
  v4c::check(!dummy || !options.namedModel.empty() || !options.input.empty(),
             "--weights dummy needs --model NAME or a checkpoint directory with config.json");
  const v4c::ModelConfig dummyConfig =
      !dummy ? v4c::ModelConfig()
             : !options.namedModel.empty() ? v4c::namedConfig(options.namedModel)
                                           : v4c::ModelConfig::fromFile(options.input + "/config.json");
  auto module = dummy ? v4c::buildModel(context, dummyConfig) : importModel(context, options, checkpoint);
  v4c::check(options.stats || !options.output.empty(), "give an output file with -o");
  v4c::check(checkpoint != nullptr || dummy || options.output.empty(),
             "writing an artifact needs a checkpoint directory (--model only prints --stats; or --weights dummy)");
  // Kernel counts without fusion come from compiling a copy of the graph.
  v4c::KernelCounts unfused;
  if (options.stats && !options.noFuse)
    unfused = v4c::countUnfusedKernels(*module, pipelineOptions(options));
  v4c::check(mlir::succeeded(pm.run(*module)), "compilation failed (see the diagnostics above)");
  if (options.stats)
    printStats(*module);
  if (options.stats && !options.noFuse)
    v4c::printFusionStats(unfused, v4c::countKernels(*module));
  if (options.stats)
    v4c::printCacheStats(*module);
  if (options.output.empty())
    return 0;

  v4rt::Program program = v4c::programFromPlan(*module, options.target);
  program.configJson = (dummy ? dummyConfig : checkpoint->config()).toJson().dump();
  nlohmann::json compileOptions = nlohmann::json{{"target", options.target},
                                          {"precision", options.precision},
                                          {"experts", options.experts},
                                          {"kv_cache", pipelineOptions(options).kvCache},
                                          {"activations", pipelineOptions(options).activations},
                                          {"prefill_chunk", options.prefillChunk},
                                          {"decode_batch", batches},
                                          {"weights", options.weights}};
  if (v4c::isCudaTarget(options.target)) // which GEMM tile variant ran (v4run info, bench tables)
    compileOptions["tensor_cores"] = options.tensorCores;
  program.compileOptions = compileOptions.dump();
  v4c::finishForTarget(program, options.keepCudaSource, options.tensorCores); // CUDA: kernels -> nvcc -> cubin
  if (dummy) {
    v4c::makeWeightsDummy(program, dummyConfig.numExperts, options.dummySeed);
    v4rt::writeArtifact(options.output, program, nullptr);
    std::printf("v4c: wrote %s (%zu dummy weights, generated at load; %llu bytes, %zu buckets, target %s)\n",
                options.output.c_str(), program.weights.size(),
                static_cast<unsigned long long>(v4rt::Artifact::open(options.output)->fileSize()),
                program.buckets.size(), options.target.c_str());
    return 0;
  }
  // Weights are f32 (integer tables i32) or bf16 (v4-cast-precision), except
  // what v4-quantize marked: e4m3 / e2m1 codes and ue8m0 scales.
  v4c::CheckpointWeightSource weights(*checkpoint, quantizedGlobals(*module));
  v4rt::writeArtifact(options.output, program, [&](size_t index, uint8_t *dst, size_t size) {
    weights.fill(program.weights[index], dst, size);
  });
  if (weights.quantized() + weights.passedThrough() > 0)
    std::printf("v4c: %lld tensors quantized, %lld FP8 tensors passed through as stored\n",
                static_cast<long long>(weights.quantized()), static_cast<long long>(weights.passedThrough()));
  std::printf("v4c: wrote %s (%zu weights, %zu buckets, target %s)\n", options.output.c_str(),
              program.weights.size(), program.buckets.size(), options.target.c_str());
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  CLI::App app{"v4c: compile DeepSeek-V4 checkpoints into v4c artifacts"};
  app.require_subcommand(1);
  Options options;

  CLI::App *import = app.add_subcommand("import", "print the v4 dialect graph of a checkpoint");
  import->add_option("checkpoint", options.input, "checkpoint directory (config.json + safetensors)");
  import->add_option("--model", options.namedModel, "a named config instead: v4-flash, v4-pro, v4-flash-2layer");
  import->add_option("-o,--output", options.output, "output .mlir (default: stdout)");

  CLI::App *compile = app.add_subcommand("compile", "compile a checkpoint into an artifact");
  compile->add_option("checkpoint", options.input, "checkpoint directory");
  compile->add_option("-o,--output", options.output, "output artifact (.v4a)");
  compile->add_option("--target", options.target, "cpu, sm_80, sm_89, sm_90a or sm_100a (CUDA: needs nvcc, not a GPU)");
  compile->add_option("--prefill-chunk", options.prefillChunk, "tokens per prefill bucket");
  compile->add_option("--decode-batch", options.decodeBatch,
                      "sessions per decode bucket, e.g. 1,4,8 (continuous batching; default: 1)");
  compile->add_flag("--print-pipeline", options.printPipeline, "print the pass pipeline and exit");
  compile->add_flag("--print-ir-after-all", options.printIrAfterAll, "print the IR after every pass (stderr)");
  compile->add_option("--dump-ir-after", options.dumpIrAfter,
                      "print the IR after these passes (stderr), e.g. v4-fuse-hc,v4-plan-memory; repeatable")
      ->delimiter(',');
  compile->add_flag("--no-fuse", options.noFuse, "skip the fusion passes (v4-fuse-*)");
  compile->add_flag("--stats", options.stats, "print kernels and arena/naive/peak bytes per bucket");
  compile->add_option("--model", options.namedModel, "a named config (v4-flash, ...): with --stats, no weights");
  compile->add_option("--precision", options.precision,
                      "fp32; bf16 (CUDA: weights and activations in bf16, fp32 accumulation); or fp8 (e4m3 "
                      "linears in 128x128 blocks, activations per 1x128; bf16 activations on CUDA)");
  compile->add_option("--experts", options.experts, "routed experts: same (as --precision leaves them) or fp4 (e2m1, 1x32)")
      ->check(CLI::IsMember({"same", "fp4"}));
  compile->add_option("--kv-cache", options.kvCache,
                      "KV cache storage: fp32, bf16, or fp8 (e4m3 per 64 channels + bf16 rope channels)")
      ->check(CLI::IsMember({"fp32", "bf16", "fp8"}));
  compile->add_option("--weights", options.weights,
                      "checkpoint (default), or dummy: seeded weights generated at load, none stored "
                      "(needs only --model NAME or DIR/config.json)");
  compile->add_option("--dummy-seed", options.dummySeed, "seed of --weights dummy")
      ->check(v4tools::nonNegativeInteger());
  compile->add_option("--keep-cuda-source", options.keepCudaSource,
                      "CUDA targets: write the generated kernels.cu and headers to DIR and keep them");
  compile->add_option("--tensor-cores", options.tensorCores,
                      "CUDA GEMM tiles: wmma (mma.sync, every CUDA target; default) or wgmma (Hopper warpgroup "
                      "MMA, --target sm_90a only; opt-in until proven on a GPU). Not for --target cpu");

  CLI::App *dummyCheckpoint = app.add_subcommand(
      "dummy-checkpoint", "write the weights a --weights dummy artifact generates as a checkpoint (tests)");
  dummyCheckpoint->add_option("artifact", options.artifact, "a --weights dummy artifact")->required();
  dummyCheckpoint->add_option("-o,--output", options.output, "output checkpoint directory")->required();

  if (const int status = v4tools::parseCommandLine(app, argc, argv, "v4c"); status >= 0)
    return status;
  options.kvCacheGiven = compile->count("--kv-cache") > 0;
  options.decodeBatchGiven = compile->count("--decode-batch") > 0;
  try {
    if (*dummyCheckpoint)
      return v4c::writeDummyCheckpoint(options.artifact, options.output);
    return *import ? runImport(options) : runCompile(options);
  } catch (const std::exception &e) {
    std::fprintf(stderr, "v4c: error: %s\n", e.what());
    return 1;
  }
}
