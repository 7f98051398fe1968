// v4c: the compiler driver.
//   v4c import CHECKPOINT_DIR -o model.mlir        the v4 graph of a checkpoint
//   v4c compile CHECKPOINT_DIR --target cpu -o model.v4a
#include <cstdio>
#include <cstring>
#include <map>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "mlir/IR/AsmState.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/raw_ostream.h"

#include "codegen/ProgramFromPlan.h"
#include "common/Error.h"
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
#include "tools/v4c/FusionStats.h"
#include "tools/v4c/WeightSource.h"

namespace {

struct Options {
  std::string input;        // checkpoint directory
  std::string namedModel;   // --model v4-flash (import without weights)
  std::string output;
  std::string target = "cpu";
  int64_t prefillChunk = 64;
  bool printPipeline = false;
  bool printIrAfterAll = false;
  bool stats = false;
  bool noFuse = false;       // --no-fuse: skip the v4-fuse-* passes
  std::string precision = "fp32"; // dense linears: fp32 | fp8
  std::string experts = "same";   // routed experts: same | fp4
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

void writeText(const std::string &path, llvm::function_ref<void(llvm::raw_ostream &)> write) {
  if (path.empty() || path == "-") {
    write(llvm::outs());
    return;
  }
  std::string error;
  auto file = mlir::openOutputFile(path, &error);
  v4c::check(file != nullptr, path + ": " + error);
  write(file->os());
  file->keep();
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

v4c::PipelineOptions pipelineOptions(const Options &options) {
  v4c::PipelineOptions pipeline;
  pipeline.buckets = "prefill:" + std::to_string(options.prefillChunk) + ",decode:1";
  pipeline.fuse = !options.noFuse;
  pipeline.precision = options.precision;
  pipeline.experts = options.experts;
  return pipeline;
}

int runCompile(const Options &options) {
  v4c::check(options.target == "cpu",
             "target '" + options.target + "' is not supported yet; this build compiles --target cpu");
  v4c::check(options.prefillChunk >= 1 && options.prefillChunk <= 65536,
             "--prefill-chunk must be in [1, 65536]");
  mlir::MLIRContext context;
  context.loadDialect<v4c::plan::PlanDialect>();
  mlir::PassManager pm(&context);
  v4c::buildDefaultPipeline(pm, pipelineOptions(options));
  if (options.printPipeline) {
    pm.printAsTextualPipeline(llvm::outs());
    llvm::outs() << "\n";
    return 0;
  }
  std::unique_ptr<v4c::Checkpoint> checkpoint;
  auto module = importModel(context, options, checkpoint);
  v4c::check(options.stats || !options.output.empty(), "give an output file with -o");
  v4c::check(checkpoint != nullptr || options.output.empty(),
             "writing an artifact needs a checkpoint directory (--model only prints --stats)");
  if (options.printIrAfterAll) {
    context.disableMultithreading();
    pm.enableIRPrinting();
  }
  // Kernel counts without fusion come from compiling a copy of the graph.
  v4c::KernelCounts unfused;
  if (options.stats && !options.noFuse)
    unfused = v4c::countUnfusedKernels(*module, pipelineOptions(options));
  v4c::check(mlir::succeeded(pm.run(*module)), "compilation failed (see the diagnostics above)");
  if (options.stats)
    printStats(*module);
  if (options.stats && !options.noFuse)
    v4c::printFusionStats(unfused, v4c::countKernels(*module));
  if (options.output.empty())
    return 0;

  v4rt::Program program = v4c::programFromPlan(*module, options.target);
  program.configJson = checkpoint->config().toJson().dump();
  program.compileOptions = nlohmann::json{{"target", options.target},
                                          {"precision", options.precision},
                                          {"experts", options.experts},
                                          {"prefill_chunk", options.prefillChunk}}
                               .dump();
  // Weights are f32 (integer tables i32), except what v4-quantize marked:
  // e4m3 / e2m1 codes and ue8m0 scales.
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
  compile->add_option("--target", options.target, "cpu (more targets come with the CUDA backend)");
  compile->add_option("--prefill-chunk", options.prefillChunk, "tokens per prefill bucket");
  compile->add_flag("--print-pipeline", options.printPipeline, "print the pass pipeline and exit");
  compile->add_flag("--print-ir-after-all", options.printIrAfterAll, "print the IR after every pass");
  compile->add_flag("--no-fuse", options.noFuse, "skip the fusion passes (v4-fuse-*)");
  compile->add_flag("--stats", options.stats, "print kernels and arena/naive/peak bytes per bucket");
  compile->add_option("--model", options.namedModel, "a named config (v4-flash, ...): with --stats, no weights");
  compile->add_option("--precision", options.precision,
                      "dense linears: fp32, or fp8 (e4m3 weights in 128x128 blocks, activations per 1x128)")
      ->check(CLI::IsMember({"fp32", "fp8"}));
  compile->add_option("--experts", options.experts, "routed experts: same (as --precision leaves them) or fp4 (e2m1, 1x32)")
      ->check(CLI::IsMember({"same", "fp4"}));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError &e) {
    return app.exit(e);
  }
  try {
    return *import ? runImport(options) : runCompile(options);
  } catch (const std::exception &e) {
    std::fprintf(stderr, "v4c: error: %s\n", e.what());
    return 1;
  }
}
