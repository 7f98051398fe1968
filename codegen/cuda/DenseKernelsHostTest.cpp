// Runs the REAL dense kernel templates (include/v4cuda/{Dense,HyperConnection,
// Router}.cuh; the matmuls are in DenseMatmulHostTest.cpp) on the CPU through
// the host emulation (testing/HostEmulation.h) and compares them with the CPU
// reference kernels (runtime/cpu/ReferenceKernels.h).
//
// Every case first runs the op's emitter (DenseEmitters.cpp) on a one-step
// Program, checks that its entry calls the very template instantiation the
// test runs, and launches with the emitter's LaunchDims (grid, block, dynamic
// shared bytes): a disagreement between emitter and template fails here.
// Inputs are stored as f32 or bf16 and the reference is given the stored
// values; rows >= dyn[0] of every output start as NaN and must stay so.
// Tolerances: f32 outputs 1e-5 relative (to max(1, |ref|), or to sum |a*b|
// for matmuls, whose summation order differs); bf16 outputs add the rounding
// bound 2^-8 |ref|.
#include <climits>
#include <cmath>
#include <string>
#include <vector>

#include "runtime/cpu/ReferenceKernels.h"

#include "codegen/cuda/testing/HostEmulation.h"

#include <v4cuda/Dense.cuh>
#include <v4cuda/HyperConnection.cuh>
#include <v4cuda/Router.cuh>

#include "codegen/cuda/testing/KernelTestSupport.h"

namespace {

using namespace v4emu::testing;
namespace ref = v4rt::ref;

// ---- elementwise and row ops -------------------------------------------------------

template <typename S> void runEmbed() {
  constexpr int T = 6, V = 10, D = 40;
  const int present = 4;
  const std::vector<int32_t> ids = {3, 0, 9, 3, 7, 7};
  const std::vector<float> table = asStored<S>(randoms(V * D, 1));
  const std::vector<S> tableS = stored<S>(table);
  std::vector<float> expected(present * D);
  ref::embed(ids.data(), present, table.data(), V, D, expected.data());
  const EmittedKernel k = emit("v4.embed", T, {arg(DType::I32, {T}, v4rt::ArgKind::Input), weight(dtypeOf<S>(), {V, D})},
                               {arg(dtypeOf<S>(), {T, D})});
  std::vector<S> out = nanFilled<S>(T * D);
  const int32_t dyn[1] = {present};
  launchEntry(k, instantiation("embed", {typeName<S>(), typeName<S>(), str(V), str(D)}),
              [&] { v4cuda::embed<S, S, V, D>(ids.data(), tableS.data(), out.data(), dyn); });
  expectRows(out, expected, present, D, "embed " + typeName<S>(), 0.0f);
}

template <typename S> void runAddSwigluExpand() {
  constexpr int T = 6, C = 45, HC = 4;
  const int present = 5;
  const std::vector<float> a = asStored<S>(randoms(T * C, 2, 3.0f)), b = asStored<S>(randoms(T * C, 3, 3.0f));
  const std::vector<S> aS = stored<S>(a), bS = stored<S>(b);
  const int32_t dyn[1] = {present};
  const DType dt = dtypeOf<S>();
  { // add
    std::vector<float> expected(present * C);
    ref::add(a.data(), b.data(), present * C, expected.data());
    const EmittedKernel k = emit("v4.add", T, {arg(dt, {T, C}), arg(dt, {T, C})}, {arg(dt, {T, C})});
    std::vector<S> out = nanFilled<S>(T * C);
    launchEntry(k, instantiation("add", {typeName<S>(), typeName<S>(), typeName<S>(), str(T), str(C)}),
                [&] { v4cuda::add<S, S, S, T, C>(aS.data(), bS.data(), out.data(), dyn); });
    expectRows(out, expected, present, C, "add " + typeName<S>(), 0.0f);
  }
  { // swiglu, limit 2 so that both clamps act
    std::vector<float> expected(present * C);
    ref::swiglu(a.data(), b.data(), present * C, 2.0, expected.data());
    const EmittedKernel k =
        emit("v4.swiglu", T, {arg(dt, {T, C}), arg(dt, {T, C})}, {arg(dt, {T, C})}, {floatAttr("limit", {2.0})});
    std::vector<S> out = nanFilled<S>(T * C);
    launchEntry(k, instantiation("swiglu", {typeName<S>(), typeName<S>(), typeName<S>(), str(T), str(C)}),
                [&] { v4cuda::swiglu<S, S, S, T, C>(aS.data(), bS.data(), out.data(), 2.0f, dyn); });
    expectRows(out, expected, present, C, "swiglu " + typeName<S>(), 1e-6f);
  }
  { // hc_expand
    std::vector<float> expected(present * HC * C);
    ref::hcExpand(a.data(), present, HC, C, expected.data());
    const EmittedKernel k = emit("v4.hc_expand", T, {arg(dt, {T, C})}, {arg(dt, {T, HC * C})}, {intAttr("hc", {HC})});
    std::vector<S> out = nanFilled<S>(T * HC * C);
    launchEntry(k, instantiation("hcExpand", {typeName<S>(), typeName<S>(), str(T), str(HC), str(C)}),
                [&] { v4cuda::hcExpand<S, S, T, HC, C>(aS.data(), out.data(), dyn); });
    expectRows(out, expected, present, HC * C, "hc_expand " + typeName<S>(), 0.0f);
  }
}

TEST(DenseKernelsOnHost, EmbedMatchesReference) {
  runEmbed<float>();
  runEmbed<bf16>();
}

TEST(DenseKernelsOnHost, AddSwigluHcExpandMatchReference) {
  runAddSwigluExpand<float>();
  runAddSwigluExpand<bf16>();
}

// rms_norm with groups of G channels: one warp per group (G <= 1024) or one
// block per group.
template <typename S, int T, int C, int G, bool HAS_W> void runRmsNorm(int present) {
  const std::vector<float> x = asStored<S>(randoms(T * C, 4, 2.0f)), w = asStored<S>(randoms(G, 5));
  const std::vector<S> xS = stored<S>(x), wS = stored<S>(w);
  std::vector<float> expected(present * C);
  ref::rmsNorm(x.data(), present, C, G, HAS_W ? w.data() : nullptr, 1e-6, expected.data());
  const DType dt = dtypeOf<S>();
  std::vector<v4rt::ArgRef> ins = {arg(dt, {T, C})};
  if (HAS_W)
    ins.push_back(weight(dt, {G}));
  const EmittedKernel k =
      emit("v4.rms_norm", T, ins, {arg(dt, {T, C})}, {intAttr("group", {G}), floatAttr("eps", {1e-6})});
  std::vector<S> out = nanFilled<S>(T * C);
  const int32_t dyn[1] = {present};
  using TW = std::conditional_t<HAS_W, S, float>;
  launchEntry(k,
              instantiation("rmsNorm", {typeName<S>(), typeName<TW>(), typeName<S>(), str(C), str(G), boolText(HAS_W)}),
              [&] {
                v4cuda::rmsNorm<S, TW, S, C, G, HAS_W>(xS.data(), HAS_W ? reinterpret_cast<const TW *>(wS.data()) : nullptr,
                                                       out.data(), 1e-6, dyn);
              });
  expectRows(out, expected, present, C, "rms_norm " + typeName<S>() + " C " + str(C) + " G " + str(G), 2e-6f);
}

TEST(DenseKernelsOnHost, RmsNormMatchesReference) {
  runRmsNorm<float, 4, 96, 32, true>(3);    // 3 groups of a row, one block
  runRmsNorm<float, 3, 96, 96, false>(3);   // one group, no weight
  runRmsNorm<float, 2, 640, 64, true>(1);   // 10 groups: two blocks per row
  runRmsNorm<float, 3, 2080, 1040, true>(2); // a block per group
  runRmsNorm<bf16, 4, 96, 32, true>(3);
  runRmsNorm<bf16, 3, 2080, 1040, false>(2);
}

template <typename S, int T, int C, int HD, int RD> void runRope(int present, bool inverse) {
  std::vector<float> invFreq;
  for (int i = 0; i < RD / 2; ++i)
    invFreq.push_back(static_cast<float>(1.0 / std::pow(10000.0, 2.0 * i / RD)));
  const double scaling = 1.25;
  const std::vector<float> x = asStored<S>(randoms(T * C, 6));
  const std::vector<S> xS = stored<S>(x);
  std::vector<int32_t> positions(T);
  for (int t = 0; t < T; ++t)
    positions[t] = 1000 + 37 * t;
  std::vector<float> expected(present * C);
  ref::rope(x.data(), positions.data(), present, C, {HD, RD, invFreq.data(), scaling}, inverse, expected.data());
  const DType dt = dtypeOf<S>();
  const EmittedKernel k = emit("v4.rope", T, {arg(dt, {T, C}), arg(DType::I32, {T})}, {arg(dt, {T, C})},
                               {intAttr("head_dim", {HD}), intAttr("rope_dim", {RD}),
                                floatAttr("inv_freq", std::vector<double>(invFreq.begin(), invFreq.end())),
                                floatAttr("scaling", {scaling}), intAttr("inverse", {inverse ? 1 : 0})});
  std::vector<S> out = nanFilled<S>(T * C);
  const int32_t dyn[1] = {present};
  launchEntry(k, instantiation("rope", {typeName<S>(), typeName<S>(), str(T), str(C), str(HD), str(RD)}), [&] {
    v4cuda::rope<S, S, T, C, HD, RD>(xS.data(), positions.data(), out.data(), invFreq.data(), scaling, inverse, dyn);
  });
  expectRows(out, expected, present, C, std::string("rope ") + (inverse ? "inverse " : "") + typeName<S>(), 0.0f);
}

TEST(DenseKernelsOnHost, RopeMatchesReference) {
  runRope<float, 5, 96, 32, 8>(4, false);
  runRope<float, 5, 96, 32, 8>(4, true);
  runRope<float, 3, 64, 64, 64>(3, false); // the whole head rotated
  runRope<bf16, 5, 96, 32, 8>(2, true);
}

// ---- mHC ---------------------------------------------------------------------------

constexpr int kHc = 4, kHcD = 40, kHcRows = (2 + kHc) * kHc;
constexpr double kNormEps = 1e-6;
constexpr float kHcEps = 1e-6f;

std::vector<v4rt::Attr> hcAttrs(int iterations) {
  return {intAttr("hc", {kHc}), floatAttr("norm_eps", {kNormEps}), floatAttr("hc_eps", {kHcEps}),
          intAttr("sinkhorn_iters", {iterations})};
}
ref::HyperParams hyperParams(int iterations, int64_t D = kHcD) { return {kHc, D, kNormEps, kHcEps, iterations}; }

// The device scratch of a split (decode) kernel: partial dots and the
// hand-off counter, which must read 0 after every launch.
template <int T, int ROWS, int PARTS> struct HcSplitScratch {
  std::vector<float> partials = std::vector<float>(v4cuda::hcSplitScratch<T, ROWS, PARTS>(), kNaN);
  unsigned int done = 0;
};

// T <= 8: the split shape (the emitter's choice), else token tiles of 8.
template <typename S, int D = kHcD, int T = 5> void runHcPreHead(int iterations, int present = 3) {
  constexpr int W = kHc * D;
  constexpr bool kSplit = T <= 8;
  constexpr int kParts = (W + v4cuda::hcSplitChunk<float>() - 1) / v4cuda::hcSplitChunk<float>();
  const std::vector<float> X = asStored<S>(randoms(T * W, 20, 2.0f)), fn = randoms(kHcRows * W, 21, 0.1f),
                           base = randoms(kHcRows, 22), scale = {0.7f, -1.3f, 2.1f};
  const std::vector<S> XS = stored<S>(X);
  const DType dt = dtypeOf<S>(), f32 = DType::F32;
  const int32_t dyn[1] = {present};
  const std::string t = typeName<S>(), f = "float";
  { // hc_pre: collapsed in S, post / comb f32 (the precision pass keeps them)
    std::vector<float> collapsed(present * D), post(present * kHc), comb(present * kHc * kHc);
    ref::hcPre(X.data(), present, fn.data(), base.data(), scale.data(), hyperParams(iterations, D), collapsed.data(),
               post.data(), comb.data(), nullptr);
    const EmittedKernel k = emit("v4.hc_pre", T,
                                 {arg(dt, {T, W}), weight(f32, {kHcRows, W}), weight(f32, {kHcRows}), weight(f32, {3})},
                                 {arg(dt, {T, D}), arg(f32, {T, kHc}), arg(f32, {T, kHc * kHc})}, hcAttrs(iterations));
    std::vector<S> outCollapsed = nanFilled<S>(T * D);
    std::vector<float> outPost = nanFilled<float>(T * kHc), outComb = nanFilled<float>(T * kHc * kHc);
    if constexpr (kSplit) {
      HcSplitScratch<T, kHcRows, kParts> scratch;
      // Twice: the hand-off counter must be back at 0 (a graph replay).
      for (int run = 0; run < 2; ++run)
        launchEntry(k, instantiation("hcPreSplit", {t, f, f, f, t, f, f, str(T), str(kHc), str(D), str(kParts)}), [&] {
          v4cuda::hcPreSplit<S, float, float, float, S, float, float, T, kHc, D, kParts>(
              XS.data(), fn.data(), base.data(), scale.data(), outCollapsed.data(), outPost.data(), outComb.data(),
              kNormEps, kHcEps, iterations, scratch.partials.data(), &scratch.done, dyn);
        });
      EXPECT_EQ(scratch.done, 0u) << "the last block resets the counter";
    } else {
      launchEntry(k, instantiation("hcPreTile", {t, f, f, f, t, f, f, str(T), str(kHc), str(D)}), [&] {
        v4cuda::hcPreTile<S, float, float, float, S, float, float, T, kHc, D>(
            XS.data(), fn.data(), base.data(), scale.data(), outCollapsed.data(), outPost.data(), outComb.data(),
            kNormEps, kHcEps, iterations, dyn);
      });
    }
    const std::string what = "hc_pre " + t + " sinkhorn " + str(iterations) + " T " + str(T);
    expectRows(outCollapsed, collapsed, present, D, what + " collapsed", 2e-5f);
    expectRows(outPost, post, present, kHc, what + " post", 2e-5f);
    expectRows(outComb, comb, present, kHc * kHc, what + " comb", 2e-5f);
  }
  { // hc_head
    std::vector<float> expected(present * D);
    ref::hcHead(X.data(), present, fn.data(), base.data(), scale.data(), hyperParams(iterations, D), expected.data());
    const EmittedKernel k = emit("v4.hc_head", T,
                                 {arg(dt, {T, W}), weight(f32, {kHc, W}), weight(f32, {kHc}), weight(f32, {1})},
                                 {arg(dt, {T, D})},
                                 {intAttr("hc", {kHc}), floatAttr("norm_eps", {kNormEps}), floatAttr("hc_eps", {kHcEps})});
    std::vector<S> out = nanFilled<S>(T * D);
    if constexpr (kSplit) {
      HcSplitScratch<T, kHc, kParts> scratch;
      launchEntry(k, instantiation("hcHeadSplit", {t, f, f, f, t, str(T), str(kHc), str(D), str(kParts)}), [&] {
        v4cuda::hcHeadSplit<S, float, float, float, S, T, kHc, D, kParts>(XS.data(), fn.data(), base.data(),
                                                                          scale.data(), out.data(), kNormEps, kHcEps,
                                                                          scratch.partials.data(), &scratch.done, dyn);
      });
      EXPECT_EQ(scratch.done, 0u) << "the last block resets the counter";
    } else {
      launchEntry(k, instantiation("hcHeadTile", {t, f, f, f, t, str(T), str(kHc), str(D)}), [&] {
        v4cuda::hcHeadTile<S, float, float, float, S, T, kHc, D>(XS.data(), fn.data(), base.data(), scale.data(),
                                                                 out.data(), kNormEps, kHcEps, dyn);
      });
    }
    expectRows(out, expected, present, D, "hc_head " + t + " T " + str(T), 2e-5f);
  }
}

TEST(DenseKernelsOnHost, HcPreSinkhornAndHcHeadMatchReference) {
  runHcPreHead<float>(1);
  runHcPreHead<float>(20);
  runHcPreHead<bf16>(20);
  runHcPreHead<float, kHcD, 12>(20, 10);  // token tiles (prefill): 8 + a partial tile of 2
  runHcPreHead<bf16, 200, 20>(20, 17);     // 800 columns: chunks of 512, the second partial; tiles 8, 8, 1
  runHcPreHead<bf16, 36, 8>(3, 8);       // split: 144 columns = 2 parts, the second partial; all 8 rows present
  runHcPreHead<bf16, 100, 3>(20, 1);     // split: 400 columns = 4 parts
}

// A comb that mixes the streams: a random positive matrix, rows summing to ~1.
std::vector<float> combRows(int64_t T, uint32_t seed) {
  std::vector<float> comb = randoms(T * kHc * kHc, seed);
  for (float &c : comb)
    c = 0.5f * (c + 1.0f) / kHc;
  return comb;
}

template <typename S, int T = 5> void runHcPostAndPostPre(int present = 4) {
  constexpr int W = kHc * kHcD, kIters = 20;
  constexpr bool kSplit = T <= 8;
  constexpr int kParts = (W + v4cuda::hcSplitChunk<S>() - 1) / v4cuda::hcSplitChunk<S>();
  const std::vector<float> X = asStored<S>(randoms(T * W, 23, 2.0f)), y = asStored<S>(randoms(T * kHcD, 24)),
                           post = randoms(T * kHc, 25), comb = combRows(T, 26);
  const std::vector<float> fn = asStored<S>(randoms(kHcRows * W, 27, 0.1f)), base = randoms(kHcRows, 28),
                           scale = {0.9f, 1.1f, -0.8f};
  const std::vector<S> XS = stored<S>(X), yS = stored<S>(y), fnS = stored<S>(fn);
  const DType dt = dtypeOf<S>(), f32 = DType::F32;
  const int32_t dyn[1] = {present};
  const std::string t = typeName<S>(), f = "float";
  std::vector<float> streams(present * W);
  ref::hcPost(X.data(), y.data(), post.data(), comb.data(), present, kHc, kHcD, streams.data());
  { // hc_post
    const EmittedKernel k = emit("v4.hc_post", T,
                                 {arg(dt, {T, W}), arg(dt, {T, kHcD}), arg(f32, {T, kHc}), arg(f32, {T, kHc * kHc})},
                                 {arg(dt, {T, W})}, {intAttr("hc", {kHc})});
    std::vector<S> out = nanFilled<S>(T * W);
    launchEntry(k, instantiation("hcPost", {t, t, f, f, t, str(T), str(kHc), str(kHcD)}), [&] {
      v4cuda::hcPost<S, S, float, float, S, T, kHc, kHcD>(XS.data(), yS.data(), post.data(), comb.data(), out.data(),
                                                          dyn);
    });
    expectRows(out, streams, present, W, "hc_post " + t, 1e-6f);
  }
  { // hc_post_pre: hc_pre reads the streams row as stored (the unfused pair's arena)
    const std::vector<float> storedStreams = asStored<S>(streams);
    std::vector<float> collapsed(present * kHcD), newPost(present * kHc), newComb(present * kHc * kHc);
    ref::hcPre(storedStreams.data(), present, fn.data(), base.data(), scale.data(), hyperParams(kIters),
               collapsed.data(), newPost.data(), newComb.data(), nullptr);
    const EmittedKernel k = emit(
        "v4.hc_post_pre", T,
        {arg(dt, {T, W}), arg(dt, {T, kHcD}), arg(f32, {T, kHc}), arg(f32, {T, kHc * kHc}), weight(dt, {kHcRows, W}),
         weight(f32, {kHcRows}), weight(f32, {3})},
        {arg(dt, {T, W}), arg(dt, {T, kHcD}), arg(f32, {T, kHc}), arg(f32, {T, kHc * kHc})}, hcAttrs(kIters));
    std::vector<S> outStreams = nanFilled<S>(T * W), outCollapsed = nanFilled<S>(T * kHcD);
    std::vector<float> outPost = nanFilled<float>(T * kHc), outComb = nanFilled<float>(T * kHc * kHc);
    if constexpr (kSplit) {
      HcSplitScratch<T, kHcRows, kParts> scratch;
      launchEntry(k,
                  instantiation("hcPostPreSplit",
                                {t, t, f, f, t, f, f, t, t, f, f, str(T), str(kHc), str(kHcD), str(kParts)}),
                  [&] {
                    v4cuda::hcPostPreSplit<S, S, float, float, S, float, float, S, S, float, float, T, kHc, kHcD,
                                           kParts>(
                        XS.data(), yS.data(), post.data(), comb.data(), fnS.data(), base.data(), scale.data(),
                        outStreams.data(), outCollapsed.data(), outPost.data(), outComb.data(), kNormEps, kHcEps,
                        kIters, scratch.partials.data(), &scratch.done, dyn);
                  });
      EXPECT_EQ(scratch.done, 0u) << "the last block resets the counter";
    } else {
      launchEntry(k, instantiation("hcPostPreTile", {t, t, f, f, t, f, f, t, t, f, f, str(T), str(kHc), str(kHcD)}), [&] {
        v4cuda::hcPostPreTile<S, S, float, float, S, float, float, S, S, float, float, T, kHc, kHcD>(
            XS.data(), yS.data(), post.data(), comb.data(), fnS.data(), base.data(), scale.data(), outStreams.data(),
            outCollapsed.data(), outPost.data(), outComb.data(), kNormEps, kHcEps, kIters, dyn);
      });
    }
    expectRows(outStreams, streams, present, W, "hc_post_pre streams " + t, 1e-6f);
    expectRows(outCollapsed, collapsed, present, kHcD, "hc_post_pre collapsed " + t, 2e-5f);
    expectRows(outPost, newPost, present, kHc, "hc_post_pre post " + t, 2e-5f);
    expectRows(outComb, newComb, present, kHc * kHc, "hc_post_pre comb " + t, 2e-5f);
  }
}

TEST(DenseKernelsOnHost, HcPostAndHcPostPreMatchReference) {
  runHcPostAndPostPre<float>();
  runHcPostAndPostPre<bf16>();
  runHcPostAndPostPre<bf16, 10>(9);  // token tiles (prefill)
  runHcPostAndPostPre<float, 16>(16); // two full tiles
}

// ---- routers -------------------------------------------------------------------------

void expectIds(const std::vector<int32_t> &out, const std::vector<int32_t> &expected, int64_t present, int64_t k,
               const std::string &what) {
  for (int64_t i = 0; i < present * k; ++i)
    if (out[i] != expected[i]) {
      ADD_FAILURE() << what << ": token " << i / k << " slot " << i % k << " = " << out[i] << ", reference "
                    << expected[i];
      return;
    }
  for (int64_t i = present * k; i < static_cast<int64_t>(out.size()); ++i)
    if (out[i] != INT_MIN) {
      ADD_FAILURE() << what << ": row " << i / k << " >= dyn[0] = " << present << " was written";
      return;
    }
}

// PARTS: 0 for the per-token shape (T > 8), else the split's parts of D.
template <typename S, int D, int E, int K, int T, int PARTS> void runRouter(int present) {
  const std::vector<float> h = asStored<S>(randoms(T * D, 29));
  std::vector<float> gate = randoms(E * D, 30, 0.3f), bias = randoms(E, 31, 0.05f);
  // Ties: expert e + E/2 is a copy of expert e (same gate row and bias), so
  // equal biased scores must go to the lower index.
  for (int e = 0; e < E / 4; ++e) {
    std::copy(gate.begin() + e * D, gate.begin() + (e + 1) * D, gate.begin() + (e + E / 2) * D);
    bias[e + E / 2] = bias[e];
  }
  gate = asStored<S>(gate);
  const std::vector<S> hS = stored<S>(h), gateS = stored<S>(gate);
  const double scaling = 2.5;
  std::vector<float> weights(present * K);
  std::vector<int32_t> experts(present * K);
  ref::router(h.data(), present, D, gate.data(), bias.data(), {E, K, scaling}, weights.data(), experts.data());
  const DType dt = dtypeOf<S>(), f32 = DType::F32;
  const EmittedKernel k = emit("v4.router", T, {arg(dt, {T, D}), weight(dt, {E, D}), weight(f32, {E})},
                               {arg(f32, {T, K}), arg(DType::I32, {T, K})},
                               {intAttr("top_k", {K}), floatAttr("routed_scaling", {scaling})});
  std::vector<float> outWeights = nanFilled<float>(T * K);
  std::vector<int32_t> outExperts(T * K, INT_MIN);
  const int32_t dyn[1] = {present};
  const std::string t = typeName<S>();
  if constexpr (PARTS > 0) { // T <= 8: the split shape; PARTS is what the emitter picks for this shape
    std::vector<float> partials(v4cuda::routerSplitScratch<T, E, PARTS>(), kNaN);
    unsigned int done = 0;
    for (int run = 0; run < 2; ++run) // twice: the counter must be back at 0 (a graph replay)
      launchEntry(k, instantiation("routerSplit", {t, t, "float", "float", str(T), str(D), str(E), str(K), str(PARTS)}),
                  [&] {
                    v4cuda::routerSplit<S, S, float, float, T, D, E, K, PARTS>(
                        hS.data(), gateS.data(), bias.data(), outWeights.data(), outExperts.data(),
                        static_cast<float>(scaling), partials.data(), &done, dyn);
                  });
    EXPECT_EQ(done, 0u) << "the last block resets the counter";
  } else {
    launchEntry(k, instantiation("router", {t, t, "float", "float", str(D), str(E), str(K)}), [&] {
      v4cuda::router<S, S, float, float, D, E, K>(hS.data(), gateS.data(), bias.data(), outWeights.data(),
                                                  outExperts.data(), static_cast<float>(scaling), dyn);
    });
  }
  const std::string what = "router " + t + " E " + str(E) + " k " + str(K) + " T " + str(T);
  expectIds(outExperts, experts, present, K, what + " experts");
  expectRows(outWeights, weights, present, K, what + " weights", 2e-6f);
}

TEST(DenseKernelsOnHost, RouterTopKMatchesReferenceWithTies) {
  // Many equal pairs among the top: all of the top 12 of 24 experts.
  runRouter<float, 40, 24, 12, 12, 0>(9);
  runRouter<float, 64, 72, 6, 10, 0>(10); // E > 32: several experts per lane
  runRouter<bf16, 64, 72, 6, 12, 0>(2);
  runRouter<float, 64, 600, 6, 13, 0>(11); // E > 512: 4 tokens per block, the last block partial
  // Split (decode) shape: parts of D per warp, the last block selects.
  runRouter<float, 40, 24, 12, 4, 1>(3);
  runRouter<float, 256, 72, 6, 8, 2>(8);  // E > 32, every row present
  runRouter<bf16, 512, 72, 6, 4, 2>(2);   // 16-byte bf16 loads of the gate
}

template <typename S> void runHashRouter() {
  constexpr int T = 4, D = 40, E = 12, K = 3, V = 9;
  const int present = 3;
  const std::vector<float> h = asStored<S>(randoms(T * D, 32)), gate = asStored<S>(randoms(E * D, 33, 0.3f));
  const std::vector<S> hS = stored<S>(h), gateS = stored<S>(gate);
  std::vector<int32_t> tid2eid(V * K);
  for (int i = 0; i < V * K; ++i)
    tid2eid[i] = (i * 7 + 2) % (E + 3) - 1; // some out of range: clamped like the reference
  const std::vector<int32_t> ids = {4, 8, 20, 0}; // 20 > V - 1: clamped
  const double scaling = 1.5;
  std::vector<float> weights(present * K);
  std::vector<int32_t> experts(present * K);
  ref::hashRouter(h.data(), present, D, gate.data(), tid2eid.data(), V, ids.data(), {E, K, scaling}, weights.data(),
                  experts.data());
  const DType dt = dtypeOf<S>(), f32 = DType::F32, i32 = DType::I32;
  const EmittedKernel k =
      emit("v4.hash_router", T,
           {arg(dt, {T, D}), weight(dt, {E, D}), weight(i32, {V, K}), arg(i32, {T}, v4rt::ArgKind::Input)},
           {arg(f32, {T, K}), arg(i32, {T, K})}, {floatAttr("routed_scaling", {scaling})});
  std::vector<float> outWeights = nanFilled<float>(T * K);
  std::vector<int32_t> outExperts(T * K, INT_MIN);
  const int32_t dyn[1] = {present};
  const std::string t = typeName<S>();
  launchEntry(k, instantiation("hashRouter", {t, t, "float", str(D), str(E), str(K), str(V)}), [&] {
    v4cuda::hashRouter<S, S, float, D, E, K, V>(hS.data(), gateS.data(), tid2eid.data(), ids.data(), outWeights.data(),
                                                outExperts.data(), static_cast<float>(scaling), dyn);
  });
  expectIds(outExperts, experts, present, K, "hash_router " + t + " experts");
  expectRows(outWeights, weights, present, K, "hash_router " + t + " weights", 2e-6f);
}

TEST(DenseKernelsOnHost, HashRouterMatchesReference) {
  runHashRouter<float>();
  runHashRouter<bf16>();
}

// Real V4-Flash widths at decode (T = 1): hidden 4096 x hc 4, 256 experts
// top-6, 64 heads x 512 normed per head.
TEST(DenseKernelsOnHost, FlashWidthsAtDecodeMatchReference) {
  runHcPreHead<bf16, 4096, 1>(20, 1);
  runRouter<bf16, 4096, 256, 6, 1, 16>(1);
  runRouter<float, 4096, 256, 6, 1, 16>(1); // the f32 gate V4-Flash's bf16 artifact has
  runRmsNorm<bf16, 1, 64 * 512, 512, false>(1);
}

// add, swiglu, rms_norm and rope may run in place (out == an input, docs/ops.md).
template <typename S> void runInPlace() {
  constexpr int T = 4, C = 96, HD = 32, RD = 8, G = 32;
  const int present = 3;
  const std::vector<float> a = asStored<S>(randoms(T * C, 40, 2.0f)), b = asStored<S>(randoms(T * C, 41));
  const DType dt = dtypeOf<S>();
  const int32_t dyn[1] = {present};
  const std::string t = typeName<S>();
  // Rows >= present of the in-place buffer hold their input: they must keep it.
  auto expectInPlace = [&](const std::vector<S> &buffer, const std::vector<float> &expected, const std::string &what) {
    std::vector<S> head(buffer.begin(), buffer.begin() + present * C);
    head.resize(buffer.size(), v4cuda::fromFloat<S>(kNaN));
    expectRows(head, expected, present, C, what, 2e-6f);
    for (int64_t i = present * C; i < T * C; ++i)
      if (v4cuda::toFloat(buffer[i]) != a[i]) {
        ADD_FAILURE() << what << ": element " << i << " past dyn[0] rows changed";
        break;
      }
  };
  { // add: out == a
    std::vector<float> expected(present * C);
    ref::add(a.data(), b.data(), present * C, expected.data());
    const EmittedKernel k = emit("v4.add", T, {arg(dt, {T, C}), arg(dt, {T, C})}, {arg(dt, {T, C})});
    std::vector<S> buffer = stored<S>(a);
    const std::vector<S> bS = stored<S>(b);
    launchEntry(k, instantiation("add", {t, t, t, str(T), str(C)}),
                [&] { v4cuda::add<S, S, S, T, C>(buffer.data(), bS.data(), buffer.data(), dyn); });
    expectInPlace(buffer, expected, "add in place " + t);
  }
  { // rms_norm: out == x
    std::vector<float> expected(present * C);
    ref::rmsNorm(a.data(), present, C, G, nullptr, 1e-6, expected.data());
    const EmittedKernel k =
        emit("v4.rms_norm", T, {arg(dt, {T, C})}, {arg(dt, {T, C})}, {intAttr("group", {G}), floatAttr("eps", {1e-6})});
    std::vector<S> buffer = stored<S>(a);
    launchEntry(k, instantiation("rmsNorm", {t, "float", t, str(C), str(G), "false"}), [&] {
      v4cuda::rmsNorm<S, float, S, C, G, false>(buffer.data(), nullptr, buffer.data(), 1e-6, dyn);
    });
    expectInPlace(buffer, expected, "rms_norm in place " + t);
  }
  { // rope: out == x
    const std::vector<float> invFreq = {1.0f, 0.1f, 0.01f, 0.001f};
    const std::vector<int32_t> positions = {5, 6, 7, 8};
    std::vector<float> expected(present * C);
    ref::rope(a.data(), positions.data(), present, C, {HD, RD, invFreq.data(), 1.0}, false, expected.data());
    const EmittedKernel k = emit("v4.rope", T, {arg(dt, {T, C}), arg(DType::I32, {T})}, {arg(dt, {T, C})},
                                 {intAttr("head_dim", {HD}), intAttr("rope_dim", {RD}),
                                  floatAttr("inv_freq", std::vector<double>(invFreq.begin(), invFreq.end())),
                                  floatAttr("scaling", {1.0}), intAttr("inverse", {0})});
    std::vector<S> buffer = stored<S>(a);
    launchEntry(k, instantiation("rope", {t, t, str(T), str(C), str(HD), str(RD)}), [&] {
      v4cuda::rope<S, S, T, C, HD, RD>(buffer.data(), positions.data(), buffer.data(), invFreq.data(), 1.0, false, dyn);
    });
    expectInPlace(buffer, expected, "rope in place " + t);
  }
}

TEST(DenseKernelsOnHost, InPlaceElementwiseMatchesReference) {
  runInPlace<float>();
  runInPlace<bf16>();
}

} // namespace
