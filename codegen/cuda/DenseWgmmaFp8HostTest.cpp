// The native e4m3 wgmma tile of v4.linear_fp8 (include/v4cuda/DenseWgmmaFp8.cuh,
// what DenseLinear.cuh's MMA = 2 runs on e4m3 operands in 128-wide groups)
// on the CPU through the emulation's e4m3 wgmma (testing/WgmmaEmulation.h)
// against ref::linearFp8, the one definition of the op's numerics.
//
// Shapes: K ragged (200: a last group of 72 codes, rows not 16-byte aligned;
// 45: less than one group), many groups (2048; 6-11 for the pipeline's runs
// and tails, both ways of filling B), N ragged (7, 45, 130),
// present < BM, BM / BN in {64, 128}; activations and weight blocks scaled
// over ~40 binary exponents, so the scales are powers of two far apart and a
// promotion that dropped or swapped a group's scale is off by orders of
// magnitude. The tolerance (1e-5 of sum |xq * wq|, fp32 reordering) is far
// below e4m3's rounding: a path that skipped the activation quantization
// (bf16 operands) fails it, which each case checks of its own reference.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "runtime/cpu/QuantKernels.h"
#include "runtime/cpu/Quantization.h"

#include "codegen/cuda/testing/HostEmulation.h"

#include <v4cuda/DenseLinear.cuh>
#include <v4cuda/Quant.cuh>

#include "codegen/cuda/CudaCodegen.h"
#include "codegen/cuda/KernelEmitter.h"
#include "codegen/cuda/testing/KernelTestSupport.h"

namespace {

using namespace v4emu::testing;
namespace ref = v4rt::ref;
namespace quant = v4rt::quant;

constexpr int kGroup = 128;

template <typename TX, int K> using Rows = v4cuda::QuantRows<TX, K, kGroup>;
template <int K, int BR> using Weights = v4cuda::Fp8Weights<K, BR, kGroup>;

// Which tile the drivers pick: native for 128-wide groups over whole
// 128-row column blocks, the bf16 (dequantizing) tile otherwise.
static_assert(v4cuda::kWgmmaFp8Native<Rows<bf16, 200>, Weights<200, 128>>);
static_assert(v4cuda::kWgmmaFp8Native<Rows<float, 45>, Weights<45, 256>>);
static_assert(!v4cuda::kWgmmaFp8Native<Rows<bf16, 256>, Weights<256, 16>>);
static_assert(!v4cuda::kWgmmaFp8Native<v4cuda::QuantRows<bf16, 256, 64>, v4cuda::Fp8Weights<256, 128, 64>>);
static_assert(!v4cuda::kWgmmaFp8Native<v4cuda::PlainRows<bf16, 256, 0>, v4cuda::PlainWeights<bf16, 256>>);

// B's codes by cp.async where its rows are 16-byte aligned (K % 16 == 0);
// the activations always through registers (they are quantized).
static_assert(v4cuda::CpAsyncCodesOk<Weights<256, 128>>::value);
static_assert(!v4cuda::CpAsyncCodesOk<Weights<200, 128>>::value);
static_assert(!v4cuda::CpAsyncCodesOk<Rows<bf16, 256>>::value);
// The ping-pong's unit is a whole group's mmas, except on the 128 x 128
// tile: two n64 halves (registers).
static_assert(v4cuda::kWgmmaFp8Splits<64, 128> == 1 && v4cuda::kWgmmaFp8Splits<128, 64> == 1 &&
              v4cuda::kWgmmaFp8Splits<64, 64> == 1 && v4cuda::kWgmmaFp8Splits<128, 128> == 2);

TEST(DenseWgmmaFp8Tile, SharedBytesAreTheInterfaceValues) {
  // Four stages of (BM + BN) rows of 128 codes + the 1024-byte alignment
  // slack: the bf16 tile's bytes.
  EXPECT_EQ((v4cuda::gemmWgmmaFp8TileBytes<128, 128>()), 132096);
  EXPECT_EQ((v4cuda::gemmWgmmaFp8TileBytes<64, 128>()), 99328);
  EXPECT_EQ((v4cuda::gemmWgmmaFp8TileBytes<64, 64>()), 66560);
  EXPECT_EQ((v4cuda::gemmWgmmaFp8TileBytes<128, 64>()), 99328);
  EXPECT_EQ((v4cuda::gemmWgmmaFp8TileBytes<128, 128>()), (v4cuda::gemmWgmmaTileBytes<128, 128>()));
}

// 2^e with e spread over [-span, span] by (a, b).
float spread(int a, int b, int span) { return std::ldexp(1.0f, (a * 7 + b * 13) % (2 * span + 1) - span); }

// One linear_fp8 problem: activations as TX stores them, e4m3 weights in
// [BR, 128] blocks, the reference and its tolerance scale.
struct Fp8Problem {
  int T, K, N, present;
  std::vector<float> x;               // [T, K], values TX holds
  std::vector<uint8_t> codes, scales; // weights
  std::vector<float> expected, terms; // [present, N]: ref::linearFp8, sum |xq * wq|
  std::vector<float> unquantized;     // [present, N]: x (not e4m3-rounded) times the weights
};

template <typename TX> Fp8Problem makeProblem(int T, int K, int N, int BR, int present, uint32_t seed) {
  Fp8Problem p{T, K, N, present, {}, {}, {}, {}, {}, {}};
  std::vector<float> x = randoms(size_t(T) * K, seed, 4.0f), w = randoms(size_t(N) * K, seed + 1, 0.5f);
  for (int t = 0; t < T; ++t) // a scale exponent per (row, group): ue8m0 bytes ~ 2^-19 .. 2^21
    for (int k = 0; k < K; ++k)
      x[size_t(t) * K + k] *= spread(t, k / kGroup, 20);
  for (int n = 0; n < N; ++n) // and per weight block
    for (int k = 0; k < K; ++k)
      w[size_t(n) * K + k] *= spread(n / BR + 3, k / kGroup, 12);
  p.x = asStored<TX>(x);
  const quant::BlockShape block{BR, kGroup};
  Fp8LinearCase c = fp8LinearCase(p.x, present, K, w, N, block);
  p.codes = std::move(c.codes), p.scales = std::move(c.scales), p.expected = std::move(c.expected);
  std::vector<float> xq(p.x.begin(), p.x.begin() + size_t(present) * K), wq(size_t(N) * K);
  ref::fakeQuantizeActivations(xq.data(), present, K, kGroup);
  quant::dequantizeBlocks(p.codes.data(), p.scales.data(), N, K, block, quant::Format::E4M3, wq.data());
  p.terms = termScale(xq, present, K, wq, N);
  p.unquantized.resize(size_t(present) * N);
  ref::linear(p.x.data(), present, K, wq.data(), N, p.unquantized.data(), nullptr);
  return p;
}

constexpr float kRelative = 1e-5f;

// The tolerance discriminates: the same weights times activations that were
// not rounded to e4m3 miss it almost everywhere.
void expectToleranceCatchesUnquantizedActivations(const Fp8Problem &p, const std::string &what) {
  int64_t outside = 0;
  for (size_t i = 0; i < p.expected.size(); ++i)
    outside += !(std::fabs(p.unquantized[i] - p.expected[i]) <= kRelative * std::max(1.0f, p.terms[i]));
  EXPECT_GT(outside, int64_t(p.expected.size()) * 9 / 10) << what << ": the tolerance would not catch a bf16-only path";
}

// Runs the driver (DenseLinear.cuh matmulGemm with MMA = 2) with the tile's
// launch geometry.
template <typename TX, typename TY, int T, int K, int N, int BR, int BM, int BN>
void runLinearFp8(int present, uint32_t seed = 21) {
  static_assert(v4cuda::kWgmmaFp8Native<Rows<TX, K>, Weights<K, BR>>, "the native tile runs these");
  const Fp8Problem p = makeProblem<TX>(T, K, N, BR, present, seed);
  const std::string what = "wgmma e4m3 linear_fp8 T " + str(T) + " K " + str(K) + " N " + str(N) + " BR " + str(BR) +
                           " BM " + str(BM) + " BN " + str(BN) + " present " + str(present);
  expectToleranceCatchesUnquantizedActivations(p, what);
  const std::vector<TX> xS = stored<TX>(p.x);
  std::vector<TY> out = nanFilled<TY>(size_t(T) * N);
  const int32_t dyn[1] = {present};
  const auto *w8 = reinterpret_cast<const __nv_fp8_e4m3 *>(p.codes.data());
  const size_t shared = v4cuda::gemmWgmmaFp8TileBytes<BM, BN>() + BM * Rows<TX, K>::kTableBytesPerRow;
  v4emu::launch(dim3((N + BN - 1) / BN, (T + BM - 1) / BM, 1), dim3(v4cuda::kWgmmaFp8Threads), shared, [&] {
    v4cuda::linearFp8Gemm<TX, TY, K, N, BR, kGroup, BM, BN, 2>(xS.data(), w8, p.scales.data(), out.data(), dyn);
  });
  expectRows(out, p.expected, present, N, what, kRelative, &p.terms);
}

TEST(DenseWgmmaFp8Tile, OneGroupAndRaggedShapes) {
  runLinearFp8<bf16, float, 20, 128, 7, 128, 64, 64>(17);       // one group, 7 of 64 columns
  runLinearFp8<bf16, float, 20, 45, 45, 128, 64, 64>(20);       // K < one group, unaligned rows
  runLinearFp8<float, float, 12, 200, 45, 128, 64, 128>(12);    // ragged last group; warpgroups split BN
  runLinearFp8<bf16, bf16, 130, 200, 130, 128, 128, 128>(129);  // two row tiles, the second 1 row
  runLinearFp8<float, float, 150, 256, 130, 256, 128, 64>(140); // BR 256: two column tiles per block
}

TEST(DenseWgmmaFp8Tile, ManyGroupsPromoteEachScale) {
  runLinearFp8<bf16, float, 70, 2048, 130, 128, 64, 128>(70); // 16 groups through both stages
  runLinearFp8<float, float, 136, 1024, 64, 128, 128, 64>(131, 5);
}

// The promotion pipeline (runs of kWgmmaFp8Run groups, two fragments
// ping-ponging in each, by group or by n64 half at 128 x 128; 4 stages in
// a ring) over 6..9 groups: a run and a tail of each length 1..3, the ring
// wrapping twice. Every group's scales
// are 2^13 apart from its neighbours', so promoting a fragment that is
// still in flight (NaN in the emulation), the other fragment, a group's
// fragment with another group's scales, or mmas on a stage refilled too
// early all miss the reference by orders of magnitude.
TEST(DenseWgmmaFp8Tile, PipelineRunsAndTailsOverManyGroups) {
  runLinearFp8<bf16, float, 70, 896, 130, 128, 64, 128>(70, 3);     // 7 groups: run + tail 3, cp.async B
  runLinearFp8<float, float, 100, 680, 45, 128, 128, 64>(97, 4);    // 6 groups, ragged: run + tail 2, B in registers
  runLinearFp8<bf16, bf16, 40, 1152, 64, 256, 64, 64>(33, 6);       // 9 groups: two runs + a tail of 1
  runLinearFp8<bf16, float, 140, 768, 200, 128, 128, 128>(133, 7); // 6 groups in n64 halves: 12 units
  runLinearFp8<float, float, 130, 904, 130, 128, 128, 128>(129, 8); // 8 groups (ragged), halves, B in registers
}

// Runs the 64 x 64 tile (one block, all T rows present) on a problem that
// `poison` edits, and checks that exactly the outputs `poisoned(t, n)`
// names are NaN, in the reference as in the tile, and the rest match.
template <int T, int K, int N, class Poison, class Poisoned>
void expectNanConfined(uint32_t seed, Poison poison, Poisoned poisoned, const char *what) {
  Fp8Problem p = makeProblem<bf16>(T, K, N, 128, T, seed);
  poison(p);
  ref::linearFp8(p.x.data(), T, K, p.codes.data(), p.scales.data(), N, {128, kGroup}, p.expected.data(), nullptr);
  const std::vector<bf16> xS = stored<bf16>(p.x);
  std::vector<float> out = nanFilled<float>(size_t(T) * N);
  const int32_t dyn[1] = {T};
  const auto *w8 = reinterpret_cast<const __nv_fp8_e4m3 *>(p.codes.data());
  v4emu::launch(dim3(1, 1, 1), dim3(v4cuda::kWgmmaFp8Threads),
                v4cuda::gemmWgmmaFp8TileBytes<64, 64>() + 64 * Rows<bf16, K>::kTableBytesPerRow, [&] {
                  v4cuda::linearFp8Gemm<bf16, float, K, N, 128, kGroup, 64, 64, 2>(xS.data(), w8, p.scales.data(),
                                                                                   out.data(), dyn);
                });
  for (int t = 0; t < T; ++t)
    for (int n = 0; n < N; ++n) {
      const float actual = out[t * N + n], expected = p.expected[t * N + n];
      if (poisoned(t, n)) {
        ASSERT_TRUE(std::isnan(expected)) << "the reference's " << what;
        EXPECT_TRUE(std::isnan(actual)) << "row " << t << " column " << n;
      } else {
        EXPECT_NEAR(actual, expected, kRelative * std::max(1.0f, p.terms[t * N + n])) << "row " << t << " column " << n;
      }
    }
}

// A NaN activation makes its row NaN (a NaN code), as in the reference; the
// other rows are untouched.
TEST(DenseWgmmaFp8Tile, NanActivationPoisonsItsRowOnly) {
  constexpr int K = 256;
  expectNanConfined<20, K, 45>(
      9, [](Fp8Problem &p) { p.x[3 * K + 200] = std::nanf(""); }, [](int t, int) { return t == 3; }, "row 3");
}

// A NaN weight code (0x7F) makes its column NaN, and only its column: with
// K = 400 (16-byte rows, so cp.async; 16 codes in the last group) the
// bytes past K of row 6 are row 7's first codes in memory, which the
// copies must zero-fill (A's zero codes times a NaN code would be NaN).
TEST(DenseWgmmaFp8Tile, NanWeightPoisonsItsColumnOnly) {
  constexpr int K = 400;
  static_assert(v4cuda::CpAsyncCodesOk<Weights<K, 128>>::value, "the cp.async path");
  expectNanConfined<20, K, 45>(
      11, [](Fp8Problem &p) { p.codes[size_t(7) * K] = 0x7F; }, [](int, int n) { return n == 7; }, "column 7");
}

// The emitter's entry for --tensor-cores wgmma: the native tile's shape tag,
// its shared bytes (the static_asserts in the entry), launched with the
// entry's geometry.
TEST(DenseWgmmaFp8Tile, EmittedEntryRunsTheNativeTile) {
  constexpr int T = 150, K = 200, N = 130;
  v4rt::Program program;
  program.target = "sm_90a";
  program.kernels.push_back({"v4.linear_fp8", {}});
  v4rt::Bucket bucket;
  bucket.name = "prefill_" + str(T);
  bucket.tokens = T;
  v4rt::Step step;
  step.kernel = 0;
  step.ins = {arg(DType::BF16, {T, K}), weight(DType::F8E4M3, {N, K}), weight(DType::U8, {2, 2})};
  step.outs = {arg(DType::F32, {T, N})};
  step.attrs = {intAttr("block", {128, 128})};
  const v4c::cuda::KernelEmitterFn emitter = v4c::cuda::findEmitter("v4.linear_fp8");
  ASSERT_TRUE(emitter);
  const EmittedKernel kernel =
      emitter(v4c::cuda::StepView(program, bucket, step, v4c::cuda::CudaTargetOptions{v4c::cuda::TensorCores::Wgmma}));
  EXPECT_NE(kernel.entry.find("_wgmma128x128_"), std::string::npos) << kernel.entry;
  EXPECT_NE(kernel.source.find("v4cuda::gemmWgmmaFp8TileBytes<128, 128>() == 132096"), std::string::npos)
      << kernel.source;
  EXPECT_NE(kernel.source.find("v4cuda::kWgmmaFp8Native<v4cuda::QuantRows<__nv_bfloat16, 200, 128>, "
                               "v4cuda::Fp8Weights<200, 128, 128>>"),
            std::string::npos)
      << kernel.source;
  EXPECT_EQ(kernel.dims.sharedBytes, 132096u + 128 * 2);
  const int present = 141;
  const Fp8Problem p = makeProblem<bf16>(T, K, N, 128, present, 33);
  const std::vector<bf16> xS = stored<bf16>(p.x);
  std::vector<float> out = nanFilled<float>(size_t(T) * N);
  const int32_t dyn[1] = {present};
  const auto *w8 = reinterpret_cast<const __nv_fp8_e4m3 *>(p.codes.data());
  launchEntry(kernel,
              instantiation("linearFp8Gemm", {"__nv_bfloat16", "float", "200", "130", "128", "128", "128", "128", "2"}),
              [&] {
                v4cuda::linearFp8Gemm<bf16, float, K, N, 128, 128, 128, 128, 2>(xS.data(), w8, p.scales.data(),
                                                                                out.data(), dyn);
              });
  expectRows(out, p.expected, present, N, "emitted wgmma e4m3 linear_fp8", kRelative, &p.terms);
}

// ---- nvcc: the device forms ----------------------------------------------------

// The four tile shapes (BM = 64 gives m64n32 / m64n64, BM = 128 m64n64,
// also 128 x 128 in n64 halves; runs of 4 groups, a tail of 3 at K = 1408)
// and the n128 / n256 primitive forms: ptxas validates every e4m3 wgmma,
// and serializes none.
const char *kE4m3Entries = R"(#include <v4cuda/All.cuh>
using bf = __nv_bfloat16;
using e4m3 = __nv_fp8_e4m3;
extern "C" __global__ void __launch_bounds__(256) fp8Linear128x128(const bf *x, const e4m3 *w, const uint8_t *s, bf *y, const int32_t *dyn) {
  v4cuda::linearFp8Gemm<bf, bf, 7168, 1536, 128, 128, 128, 128, 2>(x, w, s, y, dyn);
}
extern "C" __global__ void __launch_bounds__(256) fp8Linear64x128(const float *x, const e4m3 *w, const uint8_t *s, float *y, const int32_t *dyn) {
  v4cuda::linearFp8Gemm<float, float, 200, 130, 128, 128, 64, 128, 2>(x, w, s, y, dyn);
}
extern "C" __global__ void __launch_bounds__(256) fp8Linear64x64(const bf *x, const e4m3 *w, const uint8_t *s, bf *y, const int32_t *dyn) {
  v4cuda::linearFp8Gemm<bf, bf, 4096, 45, 128, 128, 64, 64, 2>(x, w, s, y, dyn);
}
extern "C" __global__ void __launch_bounds__(256) fp8Linear128x64(const bf *x, const e4m3 *w, const uint8_t *s, float *y, const int32_t *dyn) {
  v4cuda::linearFp8Gemm<bf, float, 1024, 64, 128, 128, 128, 64, 2>(x, w, s, y, dyn);
}
extern "C" __global__ void __launch_bounds__(256) fp8Linear64x128Runs(const bf *x, const e4m3 *w, const uint8_t *s, bf *y, const int32_t *dyn) {
  v4cuda::linearFp8Gemm<bf, bf, 1408, 1536, 128, 128, 64, 128, 2>(x, w, s, y, dyn);
}
template <int N> __device__ void e4m3Primitive(float *out) {
  extern __shared__ unsigned char shared[];
  unsigned char *tile = v4cuda::wgmmaAlignTile(shared);
  float acc[N / 2] = {};
  v4cuda::wgmmaFence();
  v4cuda::wgmmaM64E4m3<N>(acc, v4cuda::wgmmaDescriptor(tile), v4cuda::wgmmaDescriptor(tile + 8192), true);
  v4cuda::wgmmaCommitGroup();
  v4cuda::wgmmaWaitGroup<0>(acc);
  for (int i = 0; i < N / 2; ++i)
    out[threadIdx.x * (N / 2) + i] = acc[i];
}
extern "C" __global__ void __launch_bounds__(128) e4m3Primitive128(float *out) { e4m3Primitive<128>(out); }
extern "C" __global__ void __launch_bounds__(128) e4m3Primitive256(float *out) { e4m3Primitive<256>(out); }
)";

std::string readText(const std::filesystem::path &path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

size_t occurrences(const std::string &text, const std::string &what) {
  size_t count = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
    ++count;
  return count;
}

TEST(DenseWgmmaFp8Tile, NvccBuildsTheE4m3FormsForSm90a) {
  std::string nvcc;
  try {
    nvcc = v4c::cuda::findNvcc();
  } catch (const v4c::Error &error) {
    GTEST_SKIP() << "nvcc not found, the e4m3 wgmma forms were not built: " << error.what();
  }
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("v4c-wgmma-fp8-test-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "fp8.cu") << kE4m3Entries;
  const std::string base = nvcc + " -std=c++17 -gencode=arch=compute_90a,code=sm_90a -I" + V4_SOURCE_DIR +
                           "/codegen/cuda/include -I" + V4_SOURCE_DIR + " " + (dir / "fp8.cu").string();
  // ptxas -v: registers, spills, and its warning when it serializes wgmma.
  ASSERT_EQ(std::system((base + " -cubin -Xptxas -v -o " + (dir / "fp8.cubin").string() + " > " +
                         (dir / "ptxas.log").string() + " 2>&1")
                            .c_str()),
            0)
      << readText(dir / "ptxas.log");
  const std::string ptxas = readText(dir / "ptxas.log");
  EXPECT_EQ(ptxas.find("serialized"), std::string::npos) << "ptxas serializes the wgmma:\n" << ptxas;
  EXPECT_EQ(occurrences(ptxas, "bytes spill stores"), 8u) << ptxas; // the seven entries and v4_fill_dummy
  EXPECT_EQ(occurrences(ptxas, " 0 bytes spill stores"), 8u) << "register spills:\n" << ptxas;
  ASSERT_EQ(
      std::system(
          (base + " -ptx -o " + (dir / "fp8.ptx").string() + " > " + (dir / "ptx.log").string() + " 2>&1").c_str()),
      0)
      << readText(dir / "ptx.log");
  const std::string ptx = readText(dir / "fp8.ptx");
  for (const char *form :
       {"wgmma.mma_async.sync.aligned.m64n32k32.f32.e4m3.e4m3", "wgmma.mma_async.sync.aligned.m64n64k32.f32.e4m3.e4m3",
        "wgmma.mma_async.sync.aligned.m64n128k32.f32.e4m3.e4m3",
        "wgmma.mma_async.sync.aligned.m64n256k32.f32.e4m3.e4m3"})
    EXPECT_NE(ptx.find(form), std::string::npos) << form << " is missing from the PTX";
  // The native tile never dequantizes: no bf16 wgmma in the fp8 entries.
  EXPECT_EQ(ptx.find(".bf16.bf16"), std::string::npos);
  std::printf("%s", ptxas.c_str());
  fs::remove_all(dir);
}

} // namespace
