// Runs the REAL matmul kernel templates (include/v4cuda/{DenseLinear,DenseMma,
// Quant}.cuh: GEMV, FFMA tile, tensor-core tile) for v4.linear,
// v4.grouped_linear, v4.norm_linear, v4.linear_swiglu and v4.linear_fp8 on the
// CPU (testing/HostEmulation.h) against the CPU reference kernels, launched
// with their emitters' geometry; see DenseKernelsHostTest.cpp for the method.
// K and N are not multiples of the tiles (K = 40, 45, 200; N = 7, 45, 130).
#include <cmath>
#include <string>
#include <vector>

#include "runtime/cpu/QuantKernels.h"
#include "runtime/cpu/Quantization.h"
#include "runtime/cpu/ReferenceKernels.h"

#include "codegen/cuda/testing/HostEmulation.h"

#include <v4cuda/DenseLinear.cuh>
#include <v4cuda/Quant.cuh>

#include "codegen/cuda/testing/KernelTestSupport.h"

namespace {

using namespace v4emu::testing;
namespace ref = v4rt::ref;

// ---- matmuls -----------------------------------------------------------------------
// BM == 0: the GEMV (T <= 8); else the tile the emitter picks: BM x BN, on
// tensor cores when both operands are bf16 (MMA).

template <typename S, typename TY, int T, int K, int N, int BM = 0, int BN = 0, int KS = 1> void runLinear(int present) {
  constexpr bool kMma = std::is_same_v<S, bf16>;
  const std::vector<float> x = asStored<S>(randoms(T * K, 7)), w = asStored<S>(randoms(N * K, 8));
  const std::vector<S> xS = stored<S>(x), wS = stored<S>(w);
  std::vector<float> expected(present * N);
  ref::linear(x.data(), present, K, w.data(), N, expected.data(), nullptr);
  const std::vector<float> scale = termScale(x, present, K, w, N);
  const EmittedKernel k = emit("v4.linear", T, {arg(dtypeOf<S>(), {T, K}), weight(dtypeOf<S>(), {N, K})},
                               {arg(dtypeOf<TY>(), {T, N})});
  std::vector<TY> out = nanFilled<TY>(T * N);
  const int32_t dyn[1] = {present};
  const std::vector<std::string> types = {typeName<S>(), typeName<S>(), typeName<TY>()};
  if constexpr (BM == 0)
    launchEntry(k, instantiation("linearGemv", concat(types, {str(T), str(K), str(N), str(KS)})),
                [&] { v4cuda::linearGemv<S, S, TY, T, K, N, KS>(xS.data(), wS.data(), out.data(), dyn); });
  else
    launchEntry(k, instantiation("linearGemm", concat(types, concat({str(K), str(N)}, tileArgs<BM, BN, kMma>()))),
                [&] { v4cuda::linearGemm<S, S, TY, K, N, BM, BN, kMma>(xS.data(), wS.data(), out.data(), dyn); });
  expectRows(out, expected, present, N,
             "linear " + typeName<S>() + " T " + str(T) + " K " + str(K) + " N " + str(N) + " BM " + str(BM) + " KS " +
                 str(KS),
             1e-5f,
             &scale);
}

TEST(DenseKernelsOnHost, LinearGemvMatchesReference) {
  runLinear<float, float, 4, 40, 7>(3);
  runLinear<float, float, 8, 200, 45>(8);
  runLinear<float, float, 1, 40, 130>(1);
  runLinear<bf16, bf16, 4, 200, 45>(3);
  runLinear<bf16, float, 2, 40, 130>(1); // bf16 program, f32 logits
  runLinear<float, float, 3, 45, 7>(2);   // K not a multiple of the vector: scalar loads
  runLinear<bf16, bf16, 3, 45, 45>(3);
  // K split over the warps of a row pair (narrow weights at decode); the
  // emitter picks KS, the instantiation check proves it.
  runLinear<float, float, 3, 1000, 45, 0, 0, 4>(3);  // 8 steps of 128, 2 per split, the last partial
  runLinear<bf16, bf16, 8, 1024, 7, 0, 0, 4>(8);     // every row present, N not a multiple of the rows per block
  runLinear<bf16, float, 1, 4096, 20, 0, 0, 8>(1);   // 8 splits of 512
  runLinear<float, float, 2, 264, 3, 0, 0, 2>(1);    // 3 steps over 2 splits: 1 and 2, the last partial
}

TEST(DenseKernelsOnHost, LinearFfmaTileMatchesReference) {
  runLinear<float, float, 20, 40, 7, 64, 64>(17);
  runLinear<float, float, 12, 200, 45, 64, 64>(12);
  runLinear<float, float, 20, 40, 130, 64, 128>(9);
  runLinear<float, float, 150, 40, 45, 128, 64>(140); // two row tiles, the second partial
  runLinear<float, float, 20, 45, 7, 64, 64>(20);
}

TEST(DenseKernelsOnHost, LinearTensorCoreTileMatchesReference) {
  runLinear<bf16, bf16, 20, 40, 7, 64, 64>(17);
  runLinear<bf16, bf16, 12, 200, 45, 64, 64>(12);
  runLinear<bf16, bf16, 20, 40, 130, 64, 128>(9);
  runLinear<bf16, float, 150, 40, 45, 128, 64>(140);
  runLinear<bf16, bf16, 20, 45, 7, 64, 64>(20); // unaligned rows: element-wise chunk fills
}

template <typename S, int T, int G, int KG, int R, int BM = 0, int BN = 0, int KS = 1> void runGroupedLinear(int present) {
  constexpr bool kMma = std::is_same_v<S, bf16>;
  const std::vector<float> x = asStored<S>(randoms(T * G * KG, 9)), w = asStored<S>(randoms(G * R * KG, 10));
  const std::vector<S> xS = stored<S>(x), wS = stored<S>(w);
  std::vector<float> expected(present * G * R);
  ref::groupedLinear(x.data(), present, G, KG, w.data(), R, expected.data(), nullptr);
  const std::vector<float> scale = groupedTermScale(x, present, G, KG, w, R);
  const DType dt = dtypeOf<S>();
  const EmittedKernel k = emit("v4.grouped_linear", T, {arg(dt, {T, G * KG}), weight(dt, {G * R, KG})},
                               {arg(dt, {T, G * R})}, {intAttr("groups", {G})});
  std::vector<S> out = nanFilled<S>(T * G * R);
  const int32_t dyn[1] = {present};
  const std::vector<std::string> types = {typeName<S>(), typeName<S>(), typeName<S>()};
  if constexpr (BM == 0)
    launchEntry(k, instantiation("groupedLinearGemv", concat(types, {str(T), str(G), str(KG), str(R), str(KS)})),
                [&] { v4cuda::groupedLinearGemv<S, S, S, T, G, KG, R, KS>(xS.data(), wS.data(), out.data(), dyn); });
  else
    launchEntry(k,
                instantiation("groupedLinearGemm", concat(types, concat({str(G), str(KG), str(R)}, tileArgs<BM, BN, kMma>()))),
                [&] { v4cuda::groupedLinearGemm<S, S, S, G, KG, R, BM, BN, kMma>(xS.data(), wS.data(), out.data(), dyn); });
  expectRows(out, expected, present, G * R, "grouped_linear " + typeName<S>() + " T " + str(T), 1e-5f, &scale);
}

TEST(DenseKernelsOnHost, GroupedLinearMatchesReference) {
  runGroupedLinear<float, 4, 3, 40, 7>(3);
  runGroupedLinear<float, 20, 3, 40, 7, 64, 64>(18);
  runGroupedLinear<bf16, 4, 3, 40, 7>(4);
  runGroupedLinear<bf16, 20, 3, 40, 7, 64, 64>(18);
  runGroupedLinear<bf16, 2, 3, 1024, 9, 0, 0, 4>(2); // K split per group
}

// norm_linear: rms_norm (groups of G, weight) fused before two weights.
template <typename S, int T, int K, int G, int N0, int N1, int BM = 0, int BN = 0, int KS = 1>
void runNormLinear(int present) {
  constexpr bool kMma = std::is_same_v<S, bf16>;
  const std::vector<float> x = asStored<S>(randoms(T * K, 11, 2.0f)), nw = asStored<S>(randoms(G, 12)),
                           w0 = asStored<S>(randoms(N0 * K, 13)), w1 = asStored<S>(randoms(N1 * K, 14));
  const std::vector<S> xS = stored<S>(x), nwS = stored<S>(nw), w0S = stored<S>(w0), w1S = stored<S>(w1);
  std::vector<float> normed(present * K), expected0(present * N0), expected1(present * N1);
  ref::rmsNorm(x.data(), present, K, G, nw.data(), 1e-6, normed.data());
  ref::linear(normed.data(), present, K, w0.data(), N0, expected0.data(), nullptr);
  ref::linear(normed.data(), present, K, w1.data(), N1, expected1.data(), nullptr);
  // The tensor-core tile rounds the normed rows to bf16 (as the unfused bf16
  // program stores them): relative 2^-9 per term.
  const std::vector<float> scale0 = termScale(normed, present, K, w0, N0), scale1 = termScale(normed, present, K, w1, N1);
  const float relative = kMma && BM != 0 ? std::ldexp(1.0f, -8) : 1e-5f;
  const DType dt = dtypeOf<S>();
  const EmittedKernel k =
      emit("v4.norm_linear", T, {arg(dt, {T, K}), weight(dt, {G}), weight(dt, {N0, K}), weight(dt, {N1, K})},
           {arg(dt, {T, N0}), arg(dt, {T, N1})},
           {intAttr("operandSegmentSizes", {1, 1, 2}), intAttr("group", {G}), floatAttr("eps", {1e-6})});
  std::vector<S> out0 = nanFilled<S>(T * N0), out1 = nanFilled<S>(T * N1);
  const int32_t dyn[1] = {present};
  const std::string t = typeName<S>();
  constexpr int kBlocks0 = BM == 0 ? (N0 + 16 / KS - 1) / (16 / KS) : (N0 + BN - 1) / BN;
  const std::string callee = BM == 0 ? "normLinearGemv" : "normLinearGemm";
  const std::vector<std::string> head = BM == 0 ? std::vector<std::string>{t, t, t, t, str(T), str(K), str(G), "true"}
                                                : std::vector<std::string>{t, t, t, t, str(K), str(G), "true"};
  ASSERT_NE(k.source.find("if (tile < " + str(kBlocks0) + ")"), std::string::npos) << k.source;
  const std::vector<std::string> tail = BM == 0 ? std::vector<std::string>{str(KS)} : tileArgs<BM, BN, kMma>();
  ASSERT_NE(k.source.find(instantiation(callee, concat(concat(head, {str(N1)}), tail))), std::string::npos) << k.source;
  launchEntry(k, instantiation(callee, concat(concat(head, {str(N0)}), tail)), [&] {
    const int tile = blockIdx.x; // the entry's dispatch over the weights' column blocks
    if constexpr (BM == 0) {
      if (tile < kBlocks0)
        v4cuda::normLinearGemv<S, S, S, S, T, K, G, true, N0, KS>(xS.data(), nwS.data(), w0S.data(), out0.data(),
                                                                   1e-6, tile, dyn);
      else
        v4cuda::normLinearGemv<S, S, S, S, T, K, G, true, N1, KS>(xS.data(), nwS.data(), w1S.data(), out1.data(),
                                                                   1e-6, tile - kBlocks0, dyn);
    } else {
      if (tile < kBlocks0)
        v4cuda::normLinearGemm<S, S, S, S, K, G, true, N0, BM, BN, kMma>(xS.data(), nwS.data(), w0S.data(),
                                                                          out0.data(), 1e-6, tile, dyn);
      else
        v4cuda::normLinearGemm<S, S, S, S, K, G, true, N1, BM, BN, kMma>(xS.data(), nwS.data(), w1S.data(),
                                                                          out1.data(), 1e-6, tile - kBlocks0, dyn);
    }
  });
  expectRows(out0, expected0, present, N0, "norm_linear w0 " + t + " T " + str(T), relative, &scale0);
  expectRows(out1, expected1, present, N1, "norm_linear w1 " + t + " T " + str(T), relative, &scale1);
}

TEST(DenseKernelsOnHost, NormLinearMatchesReference) {
  runNormLinear<float, 4, 96, 32, 7, 45>(3);
  runNormLinear<float, 20, 96, 32, 7, 130, 64, 128>(19);
  runNormLinear<bf16, 4, 96, 96, 45, 7>(4);
  runNormLinear<bf16, 20, 96, 32, 45, 7, 64, 64>(11);
  runNormLinear<float, 5, 1024, 256, 45, 7, 0, 0, 8>(5); // K split, the norm table before the partial sums
}

template <typename S, int T, int K, int I, int BM = 0, int BN = 0, int KS = 1> void runLinearSwiglu(int present) {
  constexpr bool kMma = std::is_same_v<S, bf16>;
  const float limit = 3.0f;
  const std::vector<float> h = asStored<S>(randoms(T * K, 15)), gw = asStored<S>(randoms(I * K, 16)),
                           uw = asStored<S>(randoms(I * K, 17));
  const std::vector<S> hS = stored<S>(h), gwS = stored<S>(gw), uwS = stored<S>(uw);
  const SwigluExpectation expected = swigluExpectation(h, gw, uw, present, K, I, limit);
  const DType dt = dtypeOf<S>();
  const EmittedKernel k = emit("v4.linear_swiglu", T, {arg(dt, {T, K}), weight(dt, {I, K}), weight(dt, {I, K})},
                               {arg(dt, {T, I})}, {floatAttr("limit", {limit})});
  std::vector<S> out = nanFilled<S>(T * I);
  const int32_t dyn[1] = {present};
  const std::vector<std::string> types = {typeName<S>(), typeName<S>(), typeName<S>()};
  if constexpr (BM == 0)
    launchEntry(k, instantiation("linearSwigluGemv", concat(types, {str(T), str(K), str(I), str(KS)})), [&] {
      v4cuda::linearSwigluGemv<S, S, S, T, K, I, KS>(hS.data(), gwS.data(), uwS.data(), out.data(), limit, dyn);
    });
  else
    launchEntry(k, instantiation("linearSwigluGemm", concat(types, concat({str(K), str(I)}, tileArgs<BM, BN, kMma>()))),
                [&] {
                  v4cuda::linearSwigluGemm<S, S, S, K, I, BM, BN, kMma>(hS.data(), gwS.data(), uwS.data(), out.data(),
                                                                        limit, dyn);
                });
  expectRows(out, expected.values, present, I, "linear_swiglu " + typeName<S>() + " T " + str(T), 1e-5f,
             &expected.scale);
}

TEST(DenseKernelsOnHost, LinearSwigluMatchesReference) {
  runLinearSwiglu<float, 4, 40, 45>(4);
  runLinearSwiglu<float, 20, 200, 45, 64, 128>(13); // 90 virtual columns
  runLinearSwiglu<bf16, 3, 200, 7>(2);
  runLinearSwiglu<bf16, 20, 40, 45, 64, 128>(20);
  runLinearSwiglu<bf16, 2, 1024, 9, 0, 0, 4>(2); // K split: gate/up pairs stay in one warp's rows
}

// linear_fp8: e4m3 weights in [BR, BC] blocks, activations quantized per 1 x BC.
template <typename S, int T, int K, int N, int BR, int BC, int BM = 0, int BN = 0, int KS = 1>
void runLinearFp8(int present) {
  std::vector<float> x = asStored<S>(randoms(T * K, 18, 4.0f));
  x[5] = 0.0f; // a group with a zero keeps its other values
  const std::vector<float> w = randoms(N * K, 19, 0.5f);
  const std::vector<S> xS = stored<S>(x);
  const Fp8LinearCase fp8 = fp8LinearCase(x, present, K, w, N, {BR, BC});
  const std::vector<uint8_t> &codes = fp8.codes, &scales = fp8.scales;
  const std::vector<float> &expected = fp8.expected;
  const std::vector<float> scale = termScale(x, present, K, w, N);
  const int64_t scaleRows = (N + BR - 1) / BR, scaleCols = (K + BC - 1) / BC;
  const EmittedKernel k = emit("v4.linear_fp8", T,
                               {arg(dtypeOf<S>(), {T, K}), weight(DType::F8E4M3, {N, K}), weight(DType::U8, {scaleRows, scaleCols})},
                               {arg(dtypeOf<S>(), {T, N})}, {intAttr("block", {BR, BC})});
  std::vector<S> out = nanFilled<S>(T * N);
  const int32_t dyn[1] = {present};
  const auto *w8 = reinterpret_cast<const __nv_fp8_e4m3 *>(codes.data());
  const std::vector<std::string> types = {typeName<S>(), typeName<S>()};
  if constexpr (BM == 0)
    launchEntry(k, instantiation("linearFp8Gemv", concat(types, {str(T), str(K), str(N), str(BR), str(BC), str(KS)})),
                [&] { v4cuda::linearFp8Gemv<S, S, T, K, N, BR, BC, KS>(xS.data(), w8, scales.data(), out.data(), dyn); });
  else
    launchEntry(k,
                instantiation("linearFp8Gemm",
                              concat(types, concat({str(K), str(N), str(BR), str(BC)}, tileArgs<BM, BN, true>()))),
                [&] {
                  v4cuda::linearFp8Gemm<S, S, K, N, BR, BC, BM, BN, true>(xS.data(), w8, scales.data(), out.data(),
                                                                           dyn);
                });
  expectRows(out, expected, present, N, "linear_fp8 " + typeName<S>() + " T " + str(T) + " K " + str(K), 1e-5f,
             &scale);
}

TEST(DenseKernelsOnHost, LinearFp8MatchesReference) {
  runLinearFp8<float, 4, 200, 45, 16, 128>(3);  // GEMV, a partial last K block
  runLinearFp8<bf16, 2, 256, 7, 128, 128>(2);   // GEMV, 16 codes per load
  runLinearFp8<float, 20, 200, 45, 16, 128, 64, 64>(17); // tensor-core tile for f32 activations too
  runLinearFp8<bf16, 20, 256, 130, 128, 32, 64, 128>(20);
  runLinearFp8<bf16, 3, 1024, 9, 16, 128, 0, 0, 2>(3); // K split; 3 rows x 8 scale bytes before the partial sums
}

// Real V4-Flash widths at decode (T = 1): hidden 4096, fp8 blocks of 128.
TEST(DenseKernelsOnHost, FlashWidthMatmulsAtDecodeMatchReference) {
  runLinearFp8<bf16, 1, 4096, 64, 128, 128, 0, 0, 8>(1);
  runNormLinear<bf16, 1, 4096, 4096, 64, 16, 0, 0, 8>(1);
  runLinear<bf16, bf16, 1, 4096, 512, 0, 0, 8>(1); // the 4096 -> 512 projection: 256 blocks of 2 rows
}

} // namespace
