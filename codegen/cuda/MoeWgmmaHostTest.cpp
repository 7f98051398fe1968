// The wgmma MoE grouped GEMM (include/v4cuda/MoeWgmma.cuh):
// - run on the CPU through the host emulation of wgmma (testing/
//   WgmmaEmulation.h: descriptors, 128-byte swizzle, accumulator fragment
//   layout, deferred execution at wait_group) against ref::moe /
//   ref::moeFp4, launched with the emitter's geometry for
//   `--tensor-cores wgmma` (MoeHostTestSupport.h);
// - compiled by nvcc for sm_90a through the real code generator: the PTX
//   holds the wgmmas, ptxas neither serialises them nor spills, and the SASS
//   holds HGMMA where cuobjdump exists.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "codegen/cuda/testing/HostEmulation.h"

#include <v4cuda/MoeWgmma.cuh>

#include "codegen/cuda/CudaCodegen.h"
#include "codegen/cuda/testing/KernelTestSupport.h"

#include "codegen/cuda/MoeHostTestSupport.h"

namespace {

using namespace v4emu::testing;
using v4c::cuda::TensorCores;

TEST(MoeWgmmaOnHost, Bf16ExpertsMatchReference) {
  // 70 tokens x 2 slots (140 pairs, not a multiple of 64): two tiles of
  // expert 0, ragged last tiles, the last expert without tokens, 2 slices.
  runMoeGrouped<bf16>({70, 70, 6, 2, 64, 256, true}, false, TensorCores::Wgmma);
  // present < bucket tokens; D = 96: the second K step of 64 is half zeros.
  runMoeGrouped<bf16>({24, 13, 5, 3, 96, 128, false}, false, TensorCores::Wgmma);
  // top-6 of 16, 3 slices, 2 column blocks (K = 256 / 384: several stages in flight).
  runMoeGrouped<bf16>({90, 87, 16, 6, 256, 384, true}, false, TensorCores::Wgmma);
  // D = 448: 4 steps of 128 (both stages reused, the last half zeros).
  runMoeGrouped<bf16>({40, 40, 4, 2, 448, 128, false}, false, TensorCores::Wgmma);
}

TEST(MoeWgmmaOnHost, Fp4ExpertsMatchReference) {
  runMoeGrouped<bf16>({70, 61, 6, 2, 128, 256, true}, true, TensorCores::Wgmma);
  // f32 h: fake-quantized, still exact in bf16; D = 160: a partial K step.
  runMoeGrouped<float>({20, 20, 4, 2, 160, 128, false}, true, TensorCores::Wgmma);
  runMoeGrouped<bf16>({130, 130, 12, 6, 384, 256, true}, true, TensorCores::Wgmma);
}

// The chunk loaders' fp4 decode (e2m1 by bits, one ue8m0 scale per chunk)
// gives exactly Fp4ExpertRows::load's floats (the reference's dequantized
// weights) for every code and every scale byte, extremes and NaN included.
TEST(MoeWgmmaOnHost, Fp4ChunkDecodeMatchesRowDecode) {
  constexpr int kCols = 64, kBlockCols = 32;
  std::vector<uint8_t> codes(kCols), scales(2);
  for (int c = 0; c < kCols; ++c)
    codes[c] = static_cast<uint8_t>((c * 7 + c / 16) % 16);
  int checked = 0;
  for (int scale = 0; scale < 256; ++scale) {
    scales = {static_cast<uint8_t>(scale), static_cast<uint8_t>(255 - scale)};
    const v4cuda::state::Fp4ExpertRows rows{codes.data(), scales.data(), kCols, kBlockCols};
    for (int col = 0; col < kCols; col += 8) {
      float fast[8], reference[8];
      v4cuda::moeExpertChunk(rows, 0, col, fast);
      rows.load<8>(0, col, reference);
      for (int i = 0; i < 8; ++i, ++checked)
        ASSERT_TRUE(std::memcmp(&fast[i], &reference[i], 4) == 0 || (std::isnan(fast[i]) && std::isnan(reference[i])))
            << "code " << int(codes[col + i]) << " scale " << int(scales[(col + i) / kBlockCols]) << ": " << fast[i]
            << " vs " << reference[i];
    }
  }
  EXPECT_EQ(checked, 256 * kCols);
}

// A V4-Flash MoE step (D 4096, I 2048, 256 experts, top-6) in a prefill bucket of `tokens`.
struct FlashMoe {
  bool fp4;
  std::vector<v4rt::ArgRef> ins;
  std::vector<v4rt::Attr> attrs;
  explicit FlashMoe(bool fp4, int64_t tokens) : fp4(fp4) {
    const int64_t E = 256, k = 6, D = 4096, I = 2048;
    ins = {arg(DType::BF16, {tokens, D}), arg(DType::F32, {tokens, k}), arg(DType::I32, {tokens, k})};
    attrs = {floatAttr("swiglu_limit", {10.0})};
    if (fp4) {
      ins.push_back(weight(DType::U8, {E, 2 * I, D}));
      ins.push_back(weight(DType::U8, {E, 2 * I, D / 32}));
      ins.push_back(weight(DType::U8, {E, D, I}));
      ins.push_back(weight(DType::U8, {E, D, I / 32}));
      attrs.push_back(intAttr("block", {1, 32}));
    } else {
      ins.push_back(weight(DType::BF16, {E, 2 * I, D}));
      ins.push_back(weight(DType::BF16, {E, D, I}));
    }
  }
  EmittedKernel emit(int64_t tokens, TensorCores tensorCores, const std::string &target = "sm_90a") const {
    return emitMoe(fp4 ? "v4.moe_fp4" : "v4.moe", tokens, ins, {arg(DType::BF16, {tokens, 4096})}, attrs, tensorCores,
                   target);
  }
};

// The wgmma entry of a V4-Flash prefill chunk: the wmma entry's grid and
// scratch, its own shared bytes and name.
TEST(MoeWgmmaEmitter, FlashPrefillGeometry) {
  for (bool fp4 : {false, true}) {
    const FlashMoe moe(fp4, 4096);
    const EmittedKernel wmma = moe.emit(4096, TensorCores::Wmma), wgmma = moe.emit(4096, TensorCores::Wgmma);
    EXPECT_EQ(wgmma.dims.grid[0], wmma.dims.grid[0]);
    EXPECT_EQ(wgmma.dims.grid[0], static_cast<unsigned>(v4cuda::moeMmaBlocks(4096, 6, 256, 4096, 2048)));
    EXPECT_EQ(wgmma.dims.block[0], 256u);
    // 1024 alignment slack + 2 stages x atoms (bf16: 2, fp4: 1) x (64 + 256) rows x 128 bytes
    // + fp4 row scales + 3 int tables.
    const unsigned atoms = fp4 ? 1 : 2;
    EXPECT_EQ(wgmma.dims.sharedBytes, 1024u + 2 * atoms * 320 * 128 + 64 * 32 + 3 * 64 * 4);
    EXPECT_EQ(wgmma.dims.sharedBytes, static_cast<unsigned>(v4cuda::moeWgmmaSharedBytes(4096, fp4)));
    EXPECT_LE(wgmma.dims.sharedBytes, 227u * 1024);
    EXPECT_NE(wgmma.entry.find("_wgmma64_"), std::string::npos) << wgmma.entry;
    EXPECT_NE(wgmma.source.find(instantiation("moeGroupedWgmma", {boolText(fp4)})), std::string::npos) << wgmma.source;
    EXPECT_NE(
        wgmma.source.find("v4cuda::moeWgmmaSharedBytes(4096, " + boolText(fp4) + ") == " + str(wgmma.dims.sharedBytes)),
        std::string::npos)
        << wgmma.source;
    EXPECT_EQ(wmma.source.find("Wgmma"), std::string::npos) << wmma.source;
    // The SwiGLU scratch is read 16 bytes at a time (moeDownChunksA).
    EXPECT_NE(wgmma.source.find("static __device__ __align__(16) float " + wgmma.entry + "_act["), std::string::npos)
        << wgmma.source;
    // Decode buckets keep the split kernel whatever the option.
    const FlashMoe decode(fp4, 4);
    EXPECT_NE(decode.emit(4, TensorCores::Wgmma).source.find("moeSplit<"), std::string::npos);
  }
}

TEST(MoeWgmmaEmitter, NeedsSm90a) {
  const FlashMoe moe(false, 64);
  try {
    moe.emit(64, TensorCores::Wgmma, "sm_80");
    FAIL() << "the wgmma MoE entry was emitted for sm_80";
  } catch (const v4c::Error &error) {
    EXPECT_NE(std::string(error.what()).find("needs --target sm_90a, not sm_80"), std::string::npos) << error.what();
  }
}

// Runs `command` (stdout and stderr into `log`); returns its exit status.
int runLogged(const std::string &command, const std::filesystem::path &log) {
  return std::system((command + " > " + log.string() + " 2>&1").c_str());
}
std::string readText(const std::filesystem::path &path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
// The text of `entry` in a PTX or SASS listing: from `header + entry` to the next `header`.
std::string section(const std::string &listing, const std::string &header, const std::string &entry) {
  const size_t begin = listing.find(header + entry);
  if (begin == std::string::npos)
    return "";
  const size_t end = listing.find(header, begin + 1);
  return listing.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

// nvcc compiles the bf16 and fp4 wgmma entries of a V4-Flash prefill step for
// sm_90a through the real code generator. Then, with the generator's own
// command line: the PTX of each entry holds the m64n128k16 (gate/up) and
// m64n64k16 (down) bf16 wgmmas and no mma.sync; ptxas -v neither serialises
// the wgmmas (its "wgmma.mma_async instructions are serialized" performance
// note) nor spills; and where cuobjdump is installed (not on the CI image:
// its CUDA has nvcc and ptxas only) the SASS holds HGMMA and no HMMA.
TEST(MoeWgmmaEmitter, CompilesToWgmmaForSm90a) {
  std::string nvcc;
  try {
    nvcc = v4c::cuda::findNvcc();
  } catch (const v4c::Error &) {
    GTEST_SKIP() << "nvcc not found (set $V4C_NVCC or install the CUDA toolkit): not compiling the wgmma MoE";
  }
  // One program: a bf16 step and an fp4 step in a 256-token prefill bucket.
  v4rt::Program program;
  program.target = "sm_90a";
  v4rt::Bucket bucket;
  bucket.name = "prefill_256";
  bucket.tokens = 256;
  for (bool fp4 : {false, true}) {
    const FlashMoe moe(fp4, 256);
    program.kernels.push_back({fp4 ? "v4.moe_fp4" : "v4.moe", {}});
    v4rt::Step step;
    step.kernel = static_cast<uint32_t>(program.kernels.size() - 1);
    step.ins = moe.ins;
    step.outs = {arg(DType::BF16, {256, 4096})};
    step.attrs = moe.attrs;
    bucket.steps.push_back(std::move(step));
  }
  program.buckets.push_back(std::move(bucket));
  v4c::cuda::CudaTargetOptions target;
  target.tensorCores = TensorCores::Wgmma;
  const v4c::cuda::GeneratedModule module = v4c::cuda::generateModule(program, v4c::cuda::findEmitter, target);
  ASSERT_EQ(module.kernels.size(), 2u);

  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("v4c_moe_wgmma_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  v4c::cuda::CudaCompileOptions options;
  options.nvcc = nvcc;
  options.target = target;
  options.keepSourceDir = dir.string();
  const std::vector<uint8_t> cubin = v4c::cuda::compileCubin(module.translationUnit, "sm_90a", options);
  const std::vector<std::string> exported = v4c::cuda::cubinEntryNames(cubin);
  // The generator's nvcc command (nvcc-command.sh), once for PTX, once with ptxas -v.
  std::string command = readText(dir / "nvcc-command.sh");
  ASSERT_NE(command.find(" -cubin "), std::string::npos) << command;
  command = command.substr(0, command.find_last_not_of("\n") + 1);
  std::string ptxCommand = command;
  ptxCommand.replace(ptxCommand.find(" -cubin "), 8, " -ptx ");
  ptxCommand.replace(ptxCommand.find("kernels.cubin"), 13, "kernels.ptx");
  ASSERT_EQ(runLogged(ptxCommand, dir / "ptx.log"), 0) << ptxCommand << "\n" << readText(dir / "ptx.log");
  ASSERT_EQ(runLogged(command + " -Xptxas -v", dir / "ptxas.log"), 0) << readText(dir / "ptxas.log");
  const std::string ptx = readText(dir / "kernels.ptx"), ptxas = readText(dir / "ptxas.log");
  const fs::path cuobjdump = fs::path(nvcc).parent_path() / "cuobjdump";
  std::string sass;
  if (fs::exists(cuobjdump) &&
      runLogged(cuobjdump.string() + " -sass " + (dir / "kernels.cubin").string(), dir / "sass.txt") == 0)
    sass = readText(dir / "sass.txt");
  fs::remove_all(dir);

  EXPECT_EQ(ptxas.find("serialized"), std::string::npos) << "ptxas serialised the wgmmas:\n" << ptxas;
  for (const EmittedKernel &kernel : module.kernels) {
    EXPECT_NE(std::find(exported.begin(), exported.end(), kernel.entry), exported.end()) << kernel.entry;
    const std::string body = section(ptx, ".entry ", kernel.entry);
    ASSERT_FALSE(body.empty()) << kernel.entry << " is not in the PTX";
    EXPECT_NE(body.find("wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16"), std::string::npos)
        << kernel.entry << ": no gate/up wgmma";
    EXPECT_NE(body.find("wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16"), std::string::npos)
        << kernel.entry << ": no down wgmma";
    EXPECT_NE(body.find("fence.proxy.async.shared::cta"), std::string::npos) << kernel.entry;
    EXPECT_EQ(body.find("mma.sync"), std::string::npos) << kernel.entry << ": wmma in the wgmma kernel";
    // bf16 experts stream h and the weights with cp.async; fp4 decodes through registers.
    const bool fp4 = kernel.entry.find("moe_fp4") != std::string::npos;
    EXPECT_EQ(body.find("cp.async.cg.shared.global") != std::string::npos, !fp4) << kernel.entry;
    // ptxas -v: "Function properties for <entry>\n    N bytes stack frame, 0 bytes spill stores, ..."
    const size_t properties = ptxas.find("Function properties for " + kernel.entry);
    ASSERT_NE(properties, std::string::npos) << ptxas;
    const std::string spills = ptxas.substr(properties, ptxas.find("registers", properties) - properties);
    EXPECT_NE(spills.find(" 0 bytes spill stores"), std::string::npos) << spills;
    std::printf("%s\n",
                ptxas.substr(properties, ptxas.find('\n', ptxas.find("registers", properties)) - properties).c_str());
    if (!sass.empty()) {
      const std::string code = section(sass, "Function : ", kernel.entry);
      EXPECT_NE(code.find("HGMMA"), std::string::npos) << kernel.entry << ": no HGMMA in the SASS";
      EXPECT_EQ(code.find("HMMA"), std::string::npos) << kernel.entry << ": HMMA (wmma) in the SASS";
    }
  }
  if (sass.empty())
    std::printf("cuobjdump not installed next to %s: SASS not checked (PTX and ptxas were)\n", nvcc.c_str());
}

} // namespace
