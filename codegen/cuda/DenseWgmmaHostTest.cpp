// The Hopper wgmma GEMM tile (include/v4cuda/DenseWgmma.cuh, the drivers'
// MMA = 2) run on the CPU through the host emulation's wgmma model
// (testing/WgmmaEmulation.h: descriptors, 128-byte swizzle, accumulator
// fragment, execution at wait_group) and cp.async model
// (testing/CpAsyncEmulation.h: copies performed at wait_group, poison, zero
// fill, visibility to the async proxy only after fence + barrier) against
// the CPU reference kernels, for v4.linear, v4.grouped_linear,
// v4.norm_linear, v4.linear_swiglu and v4.linear_fp8, and for each mix of
// cp.async and register-staged operands; plus nvcc building the tile for
// sm_90a (ptxas validates the wgmma and cp.async forms) and refusing it for
// other archs.
//
// Launched with the geometry DenseLinear.cuh documents (block 256, grid
// ceil(NV / BN) x ceil(T / BM) x groups, gemmWgmmaTileBytes + the A table).
// K covers one step (64), ragged steps (200, 45: not even whole 8-element
// chunks), and many (1024, 4096); N is ragged (7, 45, 130); present < T.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <type_traits>
#include <vector>

#include "runtime/cpu/QuantKernels.h"
#include "runtime/cpu/Quantization.h"
#include "runtime/cpu/ReferenceKernels.h"

#include "codegen/cuda/testing/HostEmulation.h"

#include <v4cuda/DenseLinear.cuh>
#include <v4cuda/Quant.cuh>

#include "codegen/cuda/CudaCodegen.h"
#include "codegen/cuda/testing/KernelTestSupport.h"

namespace {

using namespace v4emu::testing;
namespace ref = v4rt::ref;
namespace fs = std::filesystem;

// Runs `body` with the wgmma tile's launch geometry.
template <int BM, int BN, class A, class F> void launchWgmma(int tokens, int virtualCols, int groups, F body) {
  const size_t shared = v4cuda::gemmWgmmaTileBytes<BM, BN>() + BM * A::kTableBytesPerRow;
  v4emu::launch(dim3((virtualCols + BN - 1) / BN, (tokens + BM - 1) / BM, groups), dim3(v4cuda::kWgmmaGemmThreads),
                shared, body);
}

// 4 stages x (BM + BN) rows x 128 bytes + 1024 of alignment slack.
TEST(DenseWgmmaTile, SharedBytesAreTheInterfaceValues) {
  EXPECT_EQ(v4cuda::kWgmmaGemmStages, 4);
  EXPECT_EQ((v4cuda::gemmWgmmaTileBytes<128, 128>()), 132096);
  EXPECT_EQ((v4cuda::gemmWgmmaTileBytes<64, 128>()), 99328);
  EXPECT_EQ((v4cuda::gemmWgmmaTileBytes<64, 64>()), 66560);
  EXPECT_EQ((v4cuda::gemmWgmmaTileBytes<128, 64>()), 99328);
}

// A bf16 linear problem: random bf16-valued x [T x K] and w [N x K], their
// stored copies, and the reference output and term scale of `present` rows.
struct Bf16LinearCase {
  std::vector<float> x, w;
  std::vector<bf16> xS, wS;
  std::vector<float> expected, scale;
};
Bf16LinearCase bf16LinearCase(int T, int K, int N, int present, uint32_t seed) {
  Bf16LinearCase c;
  c.x = asStored<bf16>(randoms(T * K, seed));
  c.w = asStored<bf16>(randoms(N * K, seed + 1));
  c.xS = stored<bf16>(c.x);
  c.wS = stored<bf16>(c.w);
  c.expected.resize(present * N);
  ref::linear(c.x.data(), present, K, c.w.data(), N, c.expected.data(), nullptr);
  c.scale = termScale(c.x, present, K, c.w, N);
  return c;
}

template <typename TY, int T, int K, int N, int BM, int BN> void runLinear(int present) {
  const Bf16LinearCase c = bf16LinearCase(T, K, N, present, 7);
  std::vector<TY> out = nanFilled<TY>(T * N);
  const int32_t dyn[1] = {present};
  launchWgmma<BM, BN, v4cuda::PlainRows<bf16, K, 0>>(T, N, 1, [&] {
    v4cuda::linearGemm<bf16, bf16, TY, K, N, BM, BN, 2>(c.xS.data(), c.wS.data(), out.data(), dyn);
  });
  expectRows(out, c.expected, present, N,
             "wgmma linear T " + str(T) + " K " + str(K) + " N " + str(N) + " BM " + str(BM) + " BN " + str(BN), 1e-5f,
             &c.scale);
}

TEST(DenseWgmmaTile, LinearMatchesReference) {
  runLinear<bf16, 20, 64, 7, 64, 64>(17);      // one K step, 7 of 64 columns
  runLinear<bf16, 12, 200, 45, 64, 128>(12);   // ragged last K step; warpgroups split BN
  runLinear<float, 150, 64, 130, 128, 64>(140); // two row tiles (the second partial), three column tiles
  runLinear<bf16, 130, 200, 130, 128, 128>(129);
  runLinear<bf16, 20, 45, 7, 64, 64>(20);       // K = 45: unaligned rows, element-wise chunks
  runLinear<float, 70, 4096, 130, 64, 128>(70); // 64 K steps around the 4 stages
}

// Which operands stream through cp.async: stored bf16 rows, 16-byte aligned
// (K % 8 == 0); everything that transforms or is unaligned goes through registers.
TEST(DenseWgmmaTile, CpAsyncTakesExactlyTheStoredAlignedBf16Rows) {
  using v4cuda::CpAsyncRowsOk;
  EXPECT_TRUE((CpAsyncRowsOk<v4cuda::PlainRows<bf16, 64, 0>>::value));
  EXPECT_TRUE((CpAsyncRowsOk<v4cuda::PlainRows<bf16, 3 * 64, 64>>::value)); // a group of grouped_linear
  EXPECT_FALSE((CpAsyncRowsOk<v4cuda::PlainRows<bf16, 3 * 60, 60>>::value)); // groups 120 bytes apart
  EXPECT_FALSE((CpAsyncRowsOk<v4cuda::PlainRows<bf16, 45, 0>>::value));
  EXPECT_FALSE((CpAsyncRowsOk<v4cuda::PlainRows<float, 64, 0>>::value)); // fp32 -> bf16 rounding
  EXPECT_TRUE((CpAsyncRowsOk<v4cuda::PlainWeights<bf16, 200>>::value));
  EXPECT_FALSE((CpAsyncRowsOk<v4cuda::PlainWeights<bf16, 45>>::value));
  EXPECT_TRUE((CpAsyncRowsOk<v4cuda::GateUpWeights<bf16, 64>>::value));
  EXPECT_FALSE((CpAsyncRowsOk<v4cuda::NormedRows<bf16, bf16, 64, 32, true>>::value)); // rms scaling
  EXPECT_FALSE((CpAsyncRowsOk<v4cuda::QuantRows<bf16, 256, 128>>::value));            // e4m3 rounding
  EXPECT_FALSE((CpAsyncRowsOk<v4cuda::Fp8Weights<256, 128, 128>>::value));            // dequantization
}

// An operand policy forced through the register stage (kCpAsyncOk hidden),
// to run the mixes no op has today (A by cp.async with B by registers, and
// both by registers with aligned rows) on the same tile.
template <class P> struct ThroughRegisters : P {
  static constexpr bool kCpAsyncOk = false;
};

template <bool ASYNC_A, bool ASYNC_B, int T, int K, int N, int BM, int BN> void runLinearMix(int present) {
  using Rows = v4cuda::PlainRows<bf16, K, 0>;
  using Weights = v4cuda::PlainWeights<bf16, K>;
  using A = std::conditional_t<ASYNC_A, Rows, ThroughRegisters<Rows>>;
  using B = std::conditional_t<ASYNC_B, Weights, ThroughRegisters<Weights>>;
  static_assert(v4cuda::CpAsyncRowsOk<A>::value == ASYNC_A && v4cuda::CpAsyncRowsOk<B>::value == ASYNC_B);
  const Bf16LinearCase c = bf16LinearCase(T, K, N, present, 27);
  std::vector<bf16> out = nanFilled<bf16>(T * N);
  launchWgmma<BM, BN, A>(T, N, 1, [&] {
    v4cuda::gemmTileWgmma<BM, BN, K, N>(A{Rows{c.xS.data()}}, B{Weights{c.wS.data()}},
                                        v4cuda::StoreRows<bf16, N, N>{out.data()}, blockIdx.y, blockIdx.x, present,
                                        v4cuda::denseSharedMemory());
  });
  expectRows(out, c.expected, present, N,
             std::string("wgmma linear (A ") + (ASYNC_A ? "cp.async" : "registers") + ", B " +
                 (ASYNC_B ? "cp.async" : "registers") + ") T " + str(T) + " K " + str(K) + " N " + str(N) + " BM " +
                 str(BM) + " BN " + str(BN),
             1e-5f, &c.scale);
}

// Every mix over the tile shapes: one step, a ragged last step (K = 200:
// 8 of 64), and many steps around the 4-stage ring; ragged N, present < BM.
TEST(DenseWgmmaTile, EveryMixOfCpAsyncAndRegisterOperandsMatchesReference) {
  runLinearMix<true, false, 20, 64, 7, 64, 64>(17);
  runLinearMix<true, false, 150, 200, 130, 128, 64>(140);
  runLinearMix<true, false, 70, 1024, 130, 64, 128>(70);
  runLinearMix<true, false, 130, 4096, 45, 128, 128>(129);
  runLinearMix<false, false, 20, 200, 45, 64, 128>(20);
  runLinearMix<false, false, 130, 1024, 130, 128, 128>(100);
  runLinearMix<false, true, 70, 200, 7, 128, 64>(66);
  runLinearMix<false, true, 20, 4096, 130, 64, 64>(19);
  runLinearMix<true, true, 130, 448, 130, 128, 128>(130); // 7 steps: every stage of the ring reused
  runLinearMix<true, true, 20, 192, 64, 64, 64>(1);       // 3 steps: fewer than the stages, one present row
}

template <int T, int G, int KG, int R, int BM, int BN> void runGroupedLinear(int present) {
  const std::vector<float> x = asStored<bf16>(randoms(T * G * KG, 9)), w = asStored<bf16>(randoms(G * R * KG, 10));
  const std::vector<bf16> xS = stored<bf16>(x), wS = stored<bf16>(w);
  std::vector<float> expected(present * G * R);
  ref::groupedLinear(x.data(), present, G, KG, w.data(), R, expected.data(), nullptr);
  const std::vector<float> scale = groupedTermScale(x, present, G, KG, w, R);
  std::vector<bf16> out = nanFilled<bf16>(T * G * R);
  const int32_t dyn[1] = {present};
  launchWgmma<BM, BN, v4cuda::PlainRows<bf16, G * KG, KG>>(T, R, G, [&] {
    v4cuda::groupedLinearGemm<bf16, bf16, bf16, G, KG, R, BM, BN, 2>(xS.data(), wS.data(), out.data(), dyn);
  });
  expectRows(out, expected, present, G * R, "wgmma grouped_linear T " + str(T) + " KG " + str(KG), 1e-5f, &scale);
}

TEST(DenseWgmmaTile, GroupedLinearMatchesReference) {
  runGroupedLinear<20, 3, 64, 7, 64, 64>(18);
  runGroupedLinear<70, 2, 200, 45, 128, 64>(66);
}

// norm_linear: rms_norm (groups of G, weight) in the A policy's prologue.
template <int T, int K, int G, int N, int BM, int BN> void runNormLinear(int present) {
  const std::vector<float> x = asStored<bf16>(randoms(T * K, 11, 2.0f)), nw = asStored<bf16>(randoms(G, 12)),
                           w = asStored<bf16>(randoms(N * K, 13));
  const std::vector<bf16> xS = stored<bf16>(x), nwS = stored<bf16>(nw), wS = stored<bf16>(w);
  std::vector<float> normed(present * K), expected(present * N);
  ref::rmsNorm(x.data(), present, K, G, nw.data(), 1e-6, normed.data());
  ref::linear(normed.data(), present, K, w.data(), N, expected.data(), nullptr);
  // The tile rounds the normed rows to bf16 (as the unfused bf16 program
  // stores them): relative 2^-8 per term.
  const std::vector<float> scale = termScale(normed, present, K, w, N);
  std::vector<bf16> out = nanFilled<bf16>(T * N);
  const int32_t dyn[1] = {present};
  using Rows = v4cuda::NormedRows<bf16, bf16, K, G, true>;
  launchWgmma<BM, BN, Rows>(T, N, 1, [&] {
    v4cuda::normLinearGemm<bf16, bf16, bf16, bf16, K, G, true, N, BM, BN, 2>(xS.data(), nwS.data(), wS.data(),
                                                                             out.data(), 1e-6, blockIdx.x, dyn);
  });
  expectRows(out, expected, present, N, "wgmma norm_linear T " + str(T) + " K " + str(K), std::ldexp(1.0f, -8), &scale);
}

TEST(DenseWgmmaTile, NormLinearMatchesReference) {
  runNormLinear<20, 96, 32, 45, 64, 64>(11);     // the rms table after the 1024-aligned tile's slack
  runNormLinear<140, 1024, 256, 130, 128, 128>(133);
}

template <int T, int K, int I, int BM, int BN> void runLinearSwiglu(int present) {
  const float limit = 3.0f;
  const std::vector<float> h = asStored<bf16>(randoms(T * K, 15)), gw = asStored<bf16>(randoms(I * K, 16)),
                           uw = asStored<bf16>(randoms(I * K, 17));
  const std::vector<bf16> hS = stored<bf16>(h), gwS = stored<bf16>(gw), uwS = stored<bf16>(uw);
  const SwigluExpectation expected = swigluExpectation(h, gw, uw, present, K, I, limit);
  std::vector<bf16> out = nanFilled<bf16>(T * I);
  const int32_t dyn[1] = {present};
  launchWgmma<BM, BN, v4cuda::PlainRows<bf16, K, 0>>(T, 2 * I, 1, [&] {
    v4cuda::linearSwigluGemm<bf16, bf16, bf16, K, I, BM, BN, 2>(hS.data(), gwS.data(), uwS.data(), out.data(), limit,
                                                                dyn);
  });
  expectRows(out, expected.values, present, I, "wgmma linear_swiglu T " + str(T) + " K " + str(K), 1e-5f,
             &expected.scale);
}

TEST(DenseWgmmaTile, LinearSwigluMatchesReference) {
  runLinearSwiglu<20, 64, 45, 64, 128>(20);  // 90 virtual columns: gate/up pairs across the warpgroups' halves
  runLinearSwiglu<70, 200, 7, 128, 64>(65);
}

// linear_fp8: e4m3 weights in [BR, BC] blocks, activations quantized per 1 x BC.
template <int T, int K, int N, int BR, int BC, int BM, int BN> void runLinearFp8(int present) {
  const std::vector<float> x = asStored<bf16>(randoms(T * K, 18, 4.0f)), w = randoms(N * K, 19, 0.5f);
  const std::vector<bf16> xS = stored<bf16>(x);
  const Fp8LinearCase fp8 = fp8LinearCase(x, present, K, w, N, {BR, BC});
  const std::vector<uint8_t> &codes = fp8.codes, &scales = fp8.scales;
  const std::vector<float> &expected = fp8.expected;
  const std::vector<float> scale = termScale(x, present, K, w, N);
  std::vector<bf16> out = nanFilled<bf16>(T * N);
  const int32_t dyn[1] = {present};
  const auto *w8 = reinterpret_cast<const __nv_fp8_e4m3 *>(codes.data());
  launchWgmma<BM, BN, v4cuda::QuantRows<bf16, K, BC>>(T, N, 1, [&] {
    v4cuda::linearFp8Gemm<bf16, bf16, K, N, BR, BC, BM, BN, 2>(xS.data(), w8, scales.data(), out.data(), dyn);
  });
  expectRows(out, expected, present, N, "wgmma linear_fp8 T " + str(T) + " K " + str(K), 1e-5f, &scale);
}

TEST(DenseWgmmaTile, LinearFp8MatchesReference) {
  runLinearFp8<20, 256, 130, 128, 128, 64, 128>(19);
  runLinearFp8<130, 200, 45, 16, 128, 128, 64>(130); // a partial last K block
}

// ---- nvcc: the device forms ----------------------------------------------------

std::string nvccOrEmpty() {
  try {
    return v4c::cuda::findNvcc();
  } catch (const v4c::Error &) {
    return "";
  }
}

struct CommandResult {
  int status;
  std::string output;
};
CommandResult run(const std::string &command) {
  CommandResult result{-1, ""};
  FILE *pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe)
    return result;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0)
    result.output.append(buffer, n);
  result.status = ::pclose(pipe);
  return result;
}

// A translation unit with wgmma GEMM entries: both warpgroup splits, every N.
const char *kWgmmaEntries = R"(#include <v4cuda/All.cuh>
using bf = __nv_bfloat16;
extern "C" __global__ void __launch_bounds__(256) wgmmaLinear128x128(const bf *x, const bf *w, bf *y, const int32_t *dyn) {
  v4cuda::linearGemm<bf, bf, bf, 4096, 1000, 128, 128, 2>(x, w, y, dyn);
}
extern "C" __global__ void __launch_bounds__(256) wgmmaLinear64x128(const bf *x, const bf *w, float *y, const int32_t *dyn) {
  v4cuda::linearGemm<bf, bf, float, 200, 130, 64, 128, 2>(x, w, y, dyn);
}
extern "C" __global__ void __launch_bounds__(256) wgmmaNorm128x128(const bf *x, const bf *nw, const bf *w, bf *y, const int32_t *dyn) {
  v4cuda::normLinearGemm<bf, bf, bf, bf, 4096, 4096, true, 1024, 128, 128, 2>(x, nw, w, y, 1e-6, blockIdx.x, dyn);
}
extern "C" __global__ void __launch_bounds__(256) wgmmaSwiglu64x64(const bf *h, const bf *g, const bf *u, bf *y, const int32_t *dyn) {
  v4cuda::linearSwigluGemm<bf, bf, bf, 1024, 512, 64, 64, 2>(h, g, u, y, 7.0f, dyn);
}
extern "C" __global__ void __launch_bounds__(256) wgmmaPrimitive256(float *out) {
  extern __shared__ unsigned char shared[];
  unsigned char *tile = v4cuda::wgmmaAlignTile(shared);
  float acc[128] = {};
  v4cuda::wgmmaFence();
  v4cuda::wgmmaM64<256>(acc, v4cuda::wgmmaDescriptor(tile), v4cuda::wgmmaDescriptor(tile + 8192), true);
  v4cuda::wgmmaCommitGroup();
  v4cuda::wgmmaWaitGroup<0>(acc);
  for (int i = 0; i < 128; ++i)
    out[threadIdx.x * 128 + i] = acc[i];
}
)";

fs::path writeSource(const std::string &name, const std::string &text) {
  const fs::path dir = fs::temp_directory_path() / ("v4c-wgmma-test-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / name) << text;
  return dir / name;
}

std::string nvccCommand(const std::string &nvcc, const std::string &gencode, const fs::path &source) {
  return nvcc + " -std=c++17 " + gencode + " -I" + V4_SOURCE_DIR + "/codegen/cuda/include -I" + V4_SOURCE_DIR +
         " " + source.string();
}

TEST(DenseWgmmaTile, NvccBuildsTheWgmmaFormsForSm90a) {
  const std::string nvcc = nvccOrEmpty();
  if (nvcc.empty())
    GTEST_SKIP() << "nvcc not found: CUDA compile tests need the CUDA toolkit";
  const fs::path source = writeSource("wgmma.cu", kWgmmaEntries);
  const std::string sm90a = "-gencode=arch=compute_90a,code=sm_90a";
  // ptxas checks every wgmma form; -v reports when it had to serialize them.
  const fs::path cubin = source.parent_path() / "wgmma.cubin";
  const CommandResult build = run(nvccCommand(nvcc, sm90a, source) + " -cubin -Xptxas -v -o " + cubin.string());
  ASSERT_EQ(build.status, 0) << build.output;
  EXPECT_EQ(build.output.find("serialized"), std::string::npos) << "ptxas serializes the wgmma:\n" << build.output;
  size_t spillReports = 0, noSpill = 0;
  for (size_t at = build.output.find("bytes spill stores"); at != std::string::npos;
       at = build.output.find("bytes spill stores", at + 1))
    ++spillReports;
  for (size_t at = build.output.find(" 0 bytes spill stores"); at != std::string::npos;
       at = build.output.find(" 0 bytes spill stores", at + 1))
    ++noSpill;
  EXPECT_GE(spillReports, 4u) << build.output;
  EXPECT_EQ(noSpill, spillReports) << "register spills:\n" << build.output;
  const fs::path ptx = source.parent_path() / "wgmma.ptx";
  const CommandResult ptxBuild = run(nvccCommand(nvcc, sm90a, source) + " -ptx -o " + ptx.string());
  ASSERT_EQ(ptxBuild.status, 0) << ptxBuild.output;
  std::ifstream in(ptx);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const char *form : {"wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16",
                           "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16",
                           "wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16",
                           "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16", "wgmma.fence.sync.aligned",
                           "wgmma.commit_group.sync.aligned", "wgmma.wait_group.sync.aligned 0",
                           "fence.proxy.async.shared::cta", "cp.async.cg.shared.global", "cp.async.commit_group",
                           "cp.async.wait_group 1"})
    EXPECT_NE(text.find(form), std::string::npos) << form << " is missing from the PTX";
  // The SASS, where the CUDA toolkit has cuobjdump.
  const fs::path cuobjdump = fs::path(nvcc).parent_path() / "cuobjdump";
  if (fs::exists(cuobjdump)) {
    const CommandResult sass = run(cuobjdump.string() + " -sass " + cubin.string());
    ASSERT_EQ(sass.status, 0) << sass.output;
    EXPECT_NE(sass.output.find("HGMMA"), std::string::npos) << "no HGMMA in the SASS";
  } else {
    std::printf("note: %s is absent; the SASS was not checked for HGMMA\n", cuobjdump.c_str());
  }
  fs::remove_all(source.parent_path());
}

TEST(DenseWgmmaTile, NvccRefusesTheWgmmaTileForOtherArchs) {
  const std::string nvcc = nvccOrEmpty();
  if (nvcc.empty())
    GTEST_SKIP() << "nvcc not found: CUDA compile tests need the CUDA toolkit";
  const fs::path source = writeSource("wgmma80.cu", kWgmmaEntries);
  const CommandResult build = run(nvccCommand(nvcc, "-gencode=arch=compute_80,code=sm_80", source) + " -cubin -o " +
                        (source.parent_path() / "wgmma80.cubin").string());
  EXPECT_NE(build.status, 0);
  EXPECT_NE(build.output.find("wgmma needs sm_90a"), std::string::npos) << build.output;
  fs::remove_all(source.parent_path());
}

} // namespace
