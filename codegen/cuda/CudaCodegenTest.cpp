// The CUDA generator driver: targets, emitter lookup and deduplication,
// embedded headers, nvcc (skipped with a reason where nvcc is absent).
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "codegen/cuda/CudaCodegen.h"
#include "common/Error.h"

namespace v4c::cuda {
namespace {

namespace fs = std::filesystem;

std::string errorOf(const std::function<void()> &action) {
  try {
    action();
  } catch (const Error &error) {
    return error.what();
  }
  ADD_FAILURE() << "expected a v4c::Error";
  return "";
}

std::string readText(const fs::path &path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// nvcc's path, or "" (the nvcc tests then skip, saying why).
std::string nvccOrEmpty() {
  try {
    return findNvcc();
  } catch (const Error &) {
    return "";
  }
}

v4rt::ArgRef arena(uint64_t offset, std::vector<int64_t> shape) {
  v4rt::ArgRef ref;
  ref.offset = offset;
  ref.shape = std::move(shape);
  return ref;
}

// Two buckets: "scale" twice on [T, 8] (T = 4 and 1) and "copy" once.
v4rt::Program testProgram() {
  v4rt::Program program;
  program.target = "sm_90a";
  program.kernels = {{"test.scale", {}}, {"test.copy", {}}};
  v4rt::Bucket prefill;
  prefill.name = "prefill_4";
  prefill.tokens = 4;
  prefill.arenaBytes = 256;
  v4rt::Step scale;
  scale.kernel = 0;
  scale.ins = {arena(0, {4, 8})};
  scale.outs = {arena(128, {4, 8})};
  scale.attrs = {{"factor", {}, {0.5}, ""}};
  v4rt::Step copy = scale;
  copy.kernel = 1;
  prefill.steps = {scale, copy, scale};
  v4rt::Bucket decode = prefill;
  decode.name = "decode_1";
  decode.kind = v4rt::BucketKind::Decode;
  decode.tokens = 1;
  decode.steps = {scale};
  decode.steps[0].ins[0].shape = {1, 8};
  decode.steps[0].outs[0].shape = {1, 8};
  program.buckets = {prefill, decode};
  return program;
}

// One block of 32 x rows; the entry name carries the rows (they are in the source).
EmittedKernel emitScale(const StepView &step) {
  const int64_t rows = step.inDim(0, 0), cols = step.inDim(0, 1);
  EmittedKernel kernel;
  kernel.entry = "test_scale_r" + std::to_string(rows) + "_c" + std::to_string(cols);
  kernel.source = "extern \"C\" __global__ void " + kernel.entry + "(" + step.paramList() +
                  ") {\n"
                  "  const int row = blockIdx.x, col = threadIdx.x;\n"
                  "  if (row >= v4cuda::presentTokens(dyn) || row >= " + std::to_string(rows) + " || col >= " +
                  std::to_string(cols) + ") return;\n"
                  "  out0[row * " + std::to_string(cols) + " + col] = in0[row * " + std::to_string(cols) +
                  " + col] * " + floatLiteral(step.attrFloat("factor")) + "f;\n}\n";
  kernel.dims.grid[0] = static_cast<uint32_t>(rows);
  kernel.dims.block[0] = 32;
  return kernel;
}

EmittedKernel emitCopy(const StepView &step) {
  EmittedKernel kernel;
  kernel.entry = "test_copy";
  kernel.source = "extern \"C\" __global__ void test_copy(" + step.paramList() + ") { out0[0] = in0[0]; }\n";
  return kernel;
}

KernelEmitterFn testLookup(const std::string &op) {
  if (op == "test.scale")
    return emitScale;
  if (op == "test.copy")
    return emitCopy;
  return nullptr;
}

// Same entry name for every shape: a bug the generator must catch.
EmittedKernel emitScaleBadName(const StepView &step) {
  EmittedKernel kernel = emitScale(step);
  kernel.entry = "test_scale";
  kernel.source = std::regex_replace(kernel.source, std::regex("test_scale_r[0-9]+_c[0-9]+"), "test_scale");
  return kernel;
}

KernelEmitterFn badNameLookup(const std::string &op) { return op == "test.scale" ? emitScaleBadName : emitCopy; }

EmittedKernel emitHugeBlock(const StepView &step) {
  EmittedKernel kernel = emitCopy(step);
  kernel.dims.block[0] = 2048;
  return kernel;
}

KernelEmitterFn hugeBlockLookup(const std::string &) { return emitHugeBlock; }

TEST(CudaTargets, GencodeSelectsExactlyTheTarget) {
  EXPECT_EQ(gencodeFlag("sm_90a"), "-gencode=arch=compute_90a,code=sm_90a");
  EXPECT_EQ(gencodeFlag("sm_80"), "-gencode=arch=compute_80,code=sm_80");
  EXPECT_EQ(gencodeFlag("sm_100a"), "-gencode=arch=compute_100a,code=sm_100a");
  EXPECT_TRUE(isCudaTarget("sm_89"));
  EXPECT_FALSE(isCudaTarget("cpu"));
  EXPECT_FALSE(isCudaTarget("sm_90"));
  EXPECT_EQ(errorOf([] { gencodeFlag("sm_75"); }),
            "unknown CUDA target 'sm_75'; valid targets: cpu, sm_80, sm_89, sm_90a, sm_100a");
}

TEST(CudaTargets, TensorCoresOption) {
  EXPECT_EQ(parseTensorCores("wmma"), TensorCores::Wmma);
  EXPECT_EQ(parseTensorCores("wgmma"), TensorCores::Wgmma);
  EXPECT_STREQ(tensorCoresName(TensorCores::Wgmma), "wgmma");
  EXPECT_STREQ(tensorCoresName(TensorCores::Wmma), "wmma");
  EXPECT_EQ(errorOf([] { parseTensorCores("mma"); }),
            "unknown --tensor-cores 'mma'; valid: wmma (every CUDA target), wgmma (sm_90a)");
  // wmma everywhere; wgmma only where the warpgroup MMA exists.
  for (const std::string &target : cudaTargets())
    checkTargetOptions(target, CudaTargetOptions{});
  checkTargetOptions("sm_90a", CudaTargetOptions{TensorCores::Wgmma});
  for (const char *target : {"sm_80", "sm_89", "sm_100a", "cpu"})
    EXPECT_EQ(errorOf([&] { checkTargetOptions(target, CudaTargetOptions{TensorCores::Wgmma}); }),
              std::string("--tensor-cores wgmma needs --target sm_90a (Hopper's warpgroup MMA), got --target ") +
                  target + "; use --tensor-cores wmma");
  EXPECT_EQ(sharedOptinLimit("sm_90a"), 232448);
  EXPECT_EQ(sharedOptinLimit("sm_80"), 166912);
  EXPECT_EQ(sharedOptinLimit("sm_89"), 101376);
}

// The entry name says which tensor cores the emitter saw.
EmittedKernel emitTensorCoreProbe(const StepView &step) {
  EmittedKernel kernel = emitCopy(step);
  const std::string entry = step.wgmma() ? "test_copy_wgmma" : "test_copy_wmma";
  kernel.source = std::regex_replace(kernel.source, std::regex("test_copy"), entry);
  kernel.entry = entry;
  return kernel;
}

KernelEmitterFn tensorCoreProbeLookup(const std::string &) { return emitTensorCoreProbe; }

TEST(CudaGenerate, TargetOptionsReachEveryEmitter) {
  const v4rt::Program program = testProgram(); // sm_90a
  const GeneratedModule wgmma = generateModule(program, tensorCoreProbeLookup, CudaTargetOptions{TensorCores::Wgmma});
  ASSERT_EQ(wgmma.kernels.size(), 1u);
  EXPECT_EQ(wgmma.kernels[0].entry, "test_copy_wgmma");
  EXPECT_NE(wgmma.translationUnit.find("for target sm_90a (tensor cores: wgmma)"), std::string::npos);
  const GeneratedModule wmma = generateModule(program, tensorCoreProbeLookup);
  ASSERT_EQ(wmma.kernels.size(), 1u);
  EXPECT_EQ(wmma.kernels[0].entry, "test_copy_wmma");
  EXPECT_NE(wmma.translationUnit.find("(tensor cores: wmma)"), std::string::npos);
  // Another target: an error before any emitter or nvcc runs.
  v4rt::Program ampere = testProgram();
  ampere.target = "sm_80";
  const std::string expected =
      "--tensor-cores wgmma needs --target sm_90a (Hopper's warpgroup MMA), got --target sm_80; use --tensor-cores wmma";
  EXPECT_EQ(errorOf([&] { generateModule(ampere, tensorCoreProbeLookup, CudaTargetOptions{TensorCores::Wgmma}); }),
            expected);
  CudaCompileOptions options;
  options.nvcc = "/nonexistent/nvcc"; // never reached
  options.target.tensorCores = TensorCores::Wgmma;
  EXPECT_EQ(errorOf([&] { compileProgramForCuda(ampere, options); }), expected);
}

TEST(CudaGenerate, DeduplicatesEntriesAndKeepsPerStepDims) {
  const v4rt::Program program = testProgram();
  const GeneratedModule module = generateModule(program, testLookup);
  ASSERT_EQ(module.kernels.size(), 3u); // scale r4, copy, scale r1
  EXPECT_EQ(module.kernels[0].entry, "test_scale_r4_c8");
  EXPECT_EQ(module.kernels[1].entry, "test_copy");
  EXPECT_EQ(module.kernels[2].entry, "test_scale_r1_c8");
  EXPECT_EQ(module.stepKernel, (std::vector<std::vector<uint32_t>>{{0, 1, 0}, {2}}));
  EXPECT_EQ(module.stepDims[0][0].grid[0], 4u);
  EXPECT_EQ(module.stepDims[1][0].grid[0], 1u);
  EXPECT_EQ(module.stepDims[0][0].block[0], 32u);
  // The TU includes the families once and defines each entry once.
  const std::string &tu = module.translationUnit;
  EXPECT_NE(tu.find("#include <v4cuda/All.cuh>"), std::string::npos);
  for (const char *entry : {"void test_scale_r4_c8(", "void test_copy(", "void test_scale_r1_c8("}) {
    const size_t first = tu.find(entry);
    ASSERT_NE(first, std::string::npos) << entry;
    EXPECT_EQ(tu.find(entry, first + 1), std::string::npos) << entry;
  }
  EXPECT_NE(tu.find("* 0.5f;"), std::string::npos);
}

TEST(CudaGenerate, MissingEmitterNamesTheOpAndItsFirstStep) {
  v4rt::Program program = testProgram();
  program.kernels[1].name = "v4.no_such_op";
  EXPECT_EQ(errorOf([&] { generateModule(program, testLookup); }),
            "no CUDA kernel emitter for 1 op: v4.no_such_op (first used by bucket 'prefill_4' step 1 "
            "(v4.no_such_op)). Add one to codegen/cuda/*Emitters.cpp or compile --target cpu");
}

TEST(CudaGenerate, OneEntryNameWithTwoSourcesIsAnInternalError) {
  const std::string message = errorOf([] { generateModule(testProgram(), badNameLookup); });
  EXPECT_NE(message.find("bucket 'decode_1' step 0 (test.scale): entry 'test_scale' was emitted twice with "
                         "different sources"),
            std::string::npos)
      << message;
}

TEST(CudaGenerate, LaunchDimsOutsideCudaLimitsAreRejected) {
  const std::string message = errorOf([] { generateModule(testProgram(), hugeBlockLookup); });
  EXPECT_NE(message.find("bucket 'prefill_4' step 0 (test.scale): entry 'test_copy' has launch grid (1, 1, 1) "
                         "block (2048, 1, 1)"),
            std::string::npos)
      << message;
}

TEST(CudaGenerate, EmitterErrorsNameTheStep) {
  v4rt::Program program = testProgram();
  program.buckets[0].steps[2].attrs.clear(); // emitScale needs "factor"
  EXPECT_EQ(errorOf([&] { generateModule(program, testLookup); }),
            "bucket 'prefill_4' step 2 (test.scale): test.scale: step is missing attribute 'factor'");
}

TEST(CudaHeaders, EmbeddedCopiesMatchTheSourceTreeAndAllIncludesEveryFamily) {
  std::set<std::string> paths;
  std::string all;
  for (const EmbeddedHeader &header : embeddedHeaders()) {
    paths.insert(header.path);
    const fs::path source = fs::path(V4_SOURCE_DIR) /
                            (std::string(header.path).rfind("v4cuda/", 0) == 0 ? "codegen/cuda/include" : "") /
                            header.path;
    EXPECT_EQ(header.text, readText(source)) << header.path << " is stale: rebuild";
    if (std::string(header.path) == "v4cuda/All.cuh")
      all = header.text;
  }
  for (const char *required : {"v4cuda/All.cuh", "v4cuda/Common.cuh", "v4cuda/DummyFill.cuh", "runtime/DummyWeights.h"})
    EXPECT_EQ(paths.count(required), 1u) << required;
  for (const fs::directory_entry &entry : fs::directory_iterator(fs::path(V4_SOURCE_DIR) / "codegen/cuda/include/v4cuda")) {
    const std::string name = "v4cuda/" + entry.path().filename().string();
    if (entry.path().extension() != ".cuh" || name == "v4cuda/All.cuh")
      continue;
    EXPECT_EQ(paths.count(name), 1u) << name << " is not embedded";
    EXPECT_NE(all.find("#include <" + name + ">"), std::string::npos) << "All.cuh does not include " << name;
  }
}

TEST(CudaNvcc, MissingNvccIsAClearError) {
  const char *saved = std::getenv("V4C_NVCC");
  const std::string previous = saved ? saved : "";
  ::setenv("V4C_NVCC", "/nonexistent/nvcc", 1);
  EXPECT_EQ(errorOf([] { findNvcc(); }), "$V4C_NVCC=/nonexistent/nvcc is not an executable nvcc");
  if (saved)
    ::setenv("V4C_NVCC", previous.c_str(), 1);
  else
    ::unsetenv("V4C_NVCC");
}

TEST(CudaNvcc, CompilesTheGeneratedModuleIntoACubin) {
  const std::string nvcc = nvccOrEmpty();
  if (nvcc.empty())
    GTEST_SKIP() << "nvcc not found: CUDA compile tests need the CUDA toolkit";
  v4rt::Program program = testProgram();
  const GeneratedModule module = generateModule(program, testLookup);
  const fs::path keep = fs::temp_directory_path() / ("v4c-cuda-test-" + std::to_string(::getpid()));
  CudaCompileOptions options;
  options.keepSourceDir = keep.string();
  const std::vector<uint8_t> cubin = compileCubin(module.translationUnit, "sm_90a", options);
  ASSERT_GE(cubin.size(), 4u);
  EXPECT_EQ(std::string(cubin.begin(), cubin.begin() + 4), "\x7f" "ELF");
  // Exactly the generated entries and v4_fill_dummy are exported functions.
  std::vector<std::string> exported = cubinEntryNames(cubin);
  std::sort(exported.begin(), exported.end());
  EXPECT_EQ(exported, (std::vector<std::string>{"test_copy", "test_scale_r1_c8", "test_scale_r4_c8", "v4_fill_dummy"}));
  std::vector<uint8_t> damaged(cubin.begin(), cubin.begin() + 100);
  EXPECT_EQ(errorOf([&] { cubinEntryNames(damaged); }), "the cubin is not a valid ELF file");
  // --keep-cuda-source: the .cu and the headers stay for debugging.
  EXPECT_EQ(readText(keep / "kernels.cu"), module.translationUnit);
  EXPECT_TRUE(fs::exists(keep / "include/v4cuda/All.cuh"));
  EXPECT_TRUE(fs::exists(keep / "include/runtime/DummyWeights.h"));
  fs::remove_all(keep);
}

TEST(CudaNvcc, CompilerErrorsShowNvccOutputAndKeepTheSource) {
  if (nvccOrEmpty().empty())
    GTEST_SKIP() << "nvcc not found: CUDA compile tests need the CUDA toolkit";
  const std::string message = errorOf([] {
    compileCubin("#include <v4cuda/All.cuh>\nextern \"C\" __global__ void broken() { undeclared_name = 1; }\n",
                 "sm_80", CudaCompileOptions{});
  });
  EXPECT_NE(message.find("nvcc failed (exit "), std::string::npos) << message;
  EXPECT_NE(message.find("undeclared_name"), std::string::npos) << message;
  std::smatch kept;
  ASSERT_TRUE(std::regex_search(message, kept, std::regex("source kept in (\\S+)"))) << message;
  EXPECT_TRUE(fs::exists(fs::path(kept[1].str()) / "kernels.cu"));
  fs::remove_all(kept[1].str());
}

// Without extern "C" the entry is mangled: caught at compile time, not on the GPU.
EmittedKernel emitMangled(const StepView &step) {
  EmittedKernel kernel = emitCopy(step);
  kernel.source = "__global__ void test_copy(" + step.paramList() + ") { out0[0] = in0[0]; }\n";
  return kernel;
}
KernelEmitterFn mangledLookup(const std::string &) { return emitMangled; }

TEST(CudaNvcc, EntriesMustBeExportedUnmangled) {
  if (nvccOrEmpty().empty())
    GTEST_SKIP() << "nvcc not found: CUDA compile tests need the CUDA toolkit";
  const GeneratedModule module = generateModule(testProgram(), mangledLookup);
  const std::vector<std::string> exported =
      cubinEntryNames(compileCubin(module.translationUnit, "sm_90a", CudaCompileOptions{}));
  EXPECT_EQ(std::count(exported.begin(), exported.end(), "test_copy"), 0);
  EXPECT_EQ(std::count(exported.begin(), exported.end(), "v4_fill_dummy"), 1);
}

TEST(CudaNvcc, CompileProgramRewritesKernelsStepsAndModules) {
  if (nvccOrEmpty().empty())
    GTEST_SKIP() << "nvcc not found: CUDA compile tests need the CUDA toolkit";
  // compileProgramForCuda uses findEmitter; an empty program needs none.
  v4rt::Program program;
  program.target = "sm_80";
  compileProgramForCuda(program, CudaCompileOptions{});
  ASSERT_EQ(program.modules.size(), 1u);
  EXPECT_EQ(program.modules[0].target, "sm_80");
  const std::string bytes(program.modules[0].binary.begin(), program.modules[0].binary.end());
  EXPECT_NE(bytes.find("v4_fill_dummy"), std::string::npos);
  EXPECT_TRUE(program.kernels.empty());

  program.target = "sm_75";
  EXPECT_EQ(errorOf([&] { compileProgramForCuda(program, CudaCompileOptions{}); }),
            "unknown target 'sm_75'; valid targets: cpu, sm_80, sm_89, sm_90a, sm_100a");
}

} // namespace
} // namespace v4c::cuda
