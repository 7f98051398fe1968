// Shared by the tensor-core MoE host tests (MoeMmaHostTest.cpp: the wmma
// variant, MoeWgmmaHostTest.cpp: the wgmma variant): a case's data, routing
// and scratch, the summation-order error scale, and the runner that emits
// the entry (StateEmitters.cpp) and launches the variant it calls on the
// host emulation against ref::moe / ref::moeFp4.
//
// The kernels are exact up to the order of fp32 additions (MoeMma.cuh), so
// the output is compared in f32 at 1e-5 of the summed term magnitudes, not at
// bf16 precision: dropping the lower bf16 terms of the SwiGLU output, or
// rounding any non-bf16 operand, fails these checks.
// Include after HostEmulation.h, the kernel headers and KernelTestSupport.h.
#pragma once

#include <algorithm>
#include <climits>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "runtime/cpu/QuantKernels.h"
#include "runtime/cpu/Quantization.h"
#include "runtime/cpu/ReferenceKernels.h"

namespace v4emu::testing {

namespace ref = v4rt::ref;

// The kernel's FP4 template argument for a case's expert rows.
template <typename Rows> constexpr bool kFp4Rows = std::is_same_v<std::decay_t<Rows>, v4cuda::state::Fp4ExpertRows>;

// The MoE emitter's entry for one step of `op` in a prefill bucket of
// `tokens` tokens of an sm_90a program, with `tensorCores`.
inline EmittedKernel emitMoe(const std::string &op, int64_t tokens, std::vector<v4rt::ArgRef> ins,
                             std::vector<v4rt::ArgRef> outs, std::vector<v4rt::Attr> attrs,
                             v4c::cuda::TensorCores tensorCores, const std::string &target = "sm_90a") {
  v4rt::Program program;
  program.target = target;
  program.kernels.push_back({op, {}});
  v4rt::Bucket bucket;
  bucket.name = "prefill_" + str(tokens);
  bucket.tokens = tokens;
  v4rt::Step step;
  step.kernel = 0;
  step.ins = std::move(ins);
  step.outs = std::move(outs);
  step.attrs = std::move(attrs);
  bucket.steps.push_back(std::move(step));
  program.buckets.push_back(std::move(bucket));
  v4c::cuda::CudaTargetOptions options;
  options.tensorCores = tensorCores;
  return v4c::cuda::findEmitter(op)(
      v4c::cuda::StepView(program, program.buckets[0], program.buckets[0].steps[0], options));
}

struct MoeCase {
  int T;       // bucket tokens
  int present; // dyn[0]
  int E, k, D, I;
  bool crowd; // most pairs on expert 0 (several tiles), the last expert empty
};

// Routing; with fp4 one id is out of range: clamped like ref::moeFp4 does
// (ref::moe assumes valid ids).
inline std::vector<int32_t> routing(const MoeCase &c, bool clampOne) {
  std::vector<int32_t> experts(c.T * c.k);
  for (int t = 0; t < c.T; ++t)
    for (int s = 0; s < c.k; ++s) {
      int e = (t * 5 + s * 3 + 1) % (c.E - 1); // the last expert gets nothing
      if (c.crowd && s == 0)
        e = 0;
      if (clampOne && t == 3 && s == c.k - 1)
        e = c.E + 7; // clamped to E - 1 by kernel and reference alike
      experts[t * c.k + s] = e;
    }
  return experts;
}

// Scratch of one entry, as the emitter sizes it.
struct Scratch {
  explicit Scratch(const MoeCase &c, int maxTiles)
      : order(c.T * c.k, -1), tileExpert(maxTiles, -1), tileBegin(maxTiles, -1), tileCount(maxTiles, -1),
        act(static_cast<size_t>(c.T) * c.k * c.I, kNaN), accumulator(static_cast<size_t>(c.T) * c.D, 0.0f),
        tokenDone(c.T, 0u), tileDone(maxTiles, 0u), control(4, 0u) {}
  std::vector<int> order, tileExpert, tileBegin, tileCount;
  std::vector<float> act, accumulator;
  std::vector<unsigned int> tokenDone, tileDone, control;
  v4cuda::MoeMmaScratch view() {
    return {order.data(),       tileExpert.data(), tileBegin.data(), tileCount.data(), act.data(),
            accumulator.data(), tokenDone.data(),  tileDone.data(),  control.data()};
  }
  void expectClean() const {
    for (float a : accumulator)
      ASSERT_EQ(a, 0.0f) << "the accumulator must be cleared for the next launch";
    for (unsigned v : tokenDone)
      ASSERT_EQ(v, 0u) << "per-token counters must be reset";
    for (unsigned v : tileDone)
      ASSERT_EQ(v, 0u) << "per-tile counters must be reset";
    EXPECT_EQ(control[0], 0u) << "the ticket counter must be reset";
    EXPECT_EQ(control[1], 0u) << "the routed flag must be reset";
    EXPECT_EQ(control[2], 0u) << "the finished-blocks counter must be reset";
  }
};

// sum over the slots of |weight| * sum_i |act_i| * |down_i|, with act_i the
// SwiGLU of the f64 dots plus 1% of their term magnitudes (room for the fp32
// dots' rounding): the scale of the output's summation-order error. Tight
// enough that rounding the SwiGLU output to one bf16 term (2^-9 relative)
// fails the 1e-5 check.
inline std::vector<float> outputScale(const MoeCase &c, const std::vector<float> &h, const std::vector<float> &weights,
                                      const std::vector<int32_t> &experts, const std::vector<float> &gateUp,
                                      const std::vector<float> &down, double limit) {
  std::vector<float> scale(c.present * c.D, 0.0f);
  for (int t = 0; t < c.present; ++t)
    for (int s = 0; s < c.k; ++s) {
      const int e = std::min(std::max(experts[t * c.k + s], 0), c.E - 1);
      std::vector<double> act(c.I);
      for (int i = 0; i < c.I; ++i) {
        double g = 0.0, u = 0.0, gAbs = 0.0, uAbs = 0.0;
        for (int d = 0; d < c.D; ++d) {
          const double gt = gateUp[(static_cast<size_t>(e) * 2 * c.I + i) * c.D + d] * h[t * c.D + d];
          const double ut = gateUp[(static_cast<size_t>(e) * 2 * c.I + c.I + i) * c.D + d] * h[t * c.D + d];
          g += gt, u += ut, gAbs += std::fabs(gt), uAbs += std::fabs(ut);
        }
        const double gc = std::min(g, limit), uc = std::clamp(u, -limit, limit);
        act[i] = std::fabs(gc / (1.0 + std::exp(-gc)) * uc) + 0.01 * (gAbs + uAbs);
      }
      for (int d = 0; d < c.D; ++d) {
        double sum = 0.0;
        for (int i = 0; i < c.I; ++i)
          sum += act[i] * std::fabs(down[(static_cast<size_t>(e) * c.D + d) * c.I + i]);
        scale[t * c.D + d] += static_cast<float>(sum * std::fabs(weights[t * c.k + s]));
      }
    }
  return scale;
}

// Runs the emitter's entry for `c` (wmma or wgmma variant, as
// `tensorCores` selects) twice against ref::moe / ref::moeFp4.
template <typename HS> void runMoeGrouped(const MoeCase &c, bool fp4, v4c::cuda::TensorCores tensorCores) {
  const bool wgmma = tensorCores == v4c::cuda::TensorCores::Wgmma;
  const DType hType = dtypeOf<HS>(), f32 = DType::F32, i32 = DType::I32;
  const std::vector<float> h = asStored<HS>(randoms(c.T * c.D, 51));
  std::vector<float> gateUp = randoms(static_cast<size_t>(c.E) * 2 * c.I * c.D, 52, 0.2f),
                     down = randoms(static_cast<size_t>(c.E) * c.D * c.I, 53, 0.2f), weights = randoms(c.T * c.k, 54);
  const std::vector<int32_t> experts = routing(c, fp4);
  const std::vector<HS> hS = stored<HS>(h);
  ref::MoeParams params{c.E, c.k, c.D, c.I, 1.5}; // a low SwiGLU limit: both clamps act
  std::vector<float> expected(c.present * c.D);
  const int blockCols = 32;
  std::vector<uint8_t> guCodes(gateUp.size()), dnCodes(down.size());
  std::vector<uint8_t> guScales(static_cast<size_t>(c.E) * 2 * c.I * (c.D / blockCols)),
      dnScales(static_cast<size_t>(c.E) * c.D * (c.I / blockCols));
  std::vector<bf16> gateUpS, downS;
  if (fp4) {
    using namespace v4rt::quant;
    quantizeBlocks(gateUp.data(), c.E * 2 * c.I, c.D, {1, blockCols}, Format::E2M1, guCodes.data(), guScales.data());
    quantizeBlocks(down.data(), c.E * c.D, c.I, {1, blockCols}, Format::E2M1, dnCodes.data(), dnScales.data());
    ref::moeFp4(h.data(), c.present, weights.data(), experts.data(), guCodes.data(), guScales.data(), dnCodes.data(),
                dnScales.data(), blockCols, params, expected.data(), nullptr);
  } else {
    gateUp = asStored<bf16>(gateUp);
    down = asStored<bf16>(down);
    gateUpS = stored<bf16>(gateUp);
    downS = stored<bf16>(down);
    ref::moe(h.data(), c.present, weights.data(), experts.data(), gateUp.data(), down.data(), params, expected.data(),
             nullptr);
  }
  const std::vector<float> scale = outputScale(c, h, weights, experts, gateUp, down, 1.5);

  std::vector<v4rt::ArgRef> ins = {arg(hType, {c.T, c.D}), arg(f32, {c.T, c.k}), arg(i32, {c.T, c.k})};
  std::vector<v4rt::Attr> attrs = {floatAttr("swiglu_limit", {1.5})};
  if (fp4) {
    ins.push_back(weight(DType::U8, {c.E, 2 * c.I, c.D}));
    ins.push_back(weight(DType::U8, {c.E, 2 * c.I, c.D / blockCols}));
    ins.push_back(weight(DType::U8, {c.E, c.D, c.I}));
    ins.push_back(weight(DType::U8, {c.E, c.D, c.I / blockCols}));
    attrs.push_back(intAttr("block", {1, blockCols}));
  } else {
    ins.push_back(weight(DType::BF16, {c.E, 2 * c.I, c.D}));
    ins.push_back(weight(DType::BF16, {c.E, c.D, c.I}));
  }
  const EmittedKernel k = emitMoe(fp4 ? "v4.moe_fp4" : "v4.moe", c.T, ins, {arg(f32, {c.T, c.D})}, attrs, tensorCores);
  const int maxTiles = v4cuda::moeMmaMaxTiles(c.T, c.k, c.E);
  ASSERT_EQ(k.dims.grid[0], static_cast<unsigned>(v4cuda::moeMmaBlocks(c.T, c.k, c.E, c.D, c.I)));
  ASSERT_EQ(k.dims.sharedBytes,
            static_cast<unsigned>(wgmma ? v4cuda::moeWgmmaSharedBytes(c.D, fp4) : v4cuda::moeMmaSharedBytes(c.D)));
  ASSERT_NE(k.entry.find(wgmma ? "_wgmma64_" : "_mma64_"), std::string::npos) << k.entry;
  ASSERT_NE(k.source.find(", shape, " + str(maxTiles) + ", scratch, dyn);"), std::string::npos) << k.source;

  Scratch scratch(c, maxTiles);
  const v4cuda::MoeShape shape{c.E, c.k, c.D, c.I, 1.5f};
  const int32_t dyn[1] = {c.present};
  const std::string what = std::string(fp4 ? "moe_fp4" : "moe") + (wgmma ? " wgmma" : " mma") + " T " + str(c.T) +
                           " present " + str(c.present) + " E " + str(c.E) + " k " + str(c.k);
  for (int launch = 0; launch < 2; ++launch) { // twice: a graph replay starts from the reset scratch
    std::vector<float> out = nanFilled<float>(c.T * c.D);
    // The variant's kernel with this case's expert rows (the entry's arguments).
    auto run = [&](const auto &gateUpRows, const auto &downRows) {
      if (wgmma)
        v4cuda::moeGroupedWgmma<kFp4Rows<decltype(gateUpRows)>>(hS.data(), weights.data(), experts.data(), gateUpRows,
                                                                downRows, out.data(), shape, maxTiles, scratch.view(),
                                                                dyn);
      else
        v4cuda::moeGroupedMma<kFp4Rows<decltype(gateUpRows)>>(hS.data(), weights.data(), experts.data(), gateUpRows,
                                                              downRows, out.data(), shape, maxTiles, scratch.view(),
                                                              dyn);
    };
    launchEntry(k, instantiation(wgmma ? "moeGroupedWgmma" : "moeGroupedMma", {boolText(fp4)}), [&] {
      if (fp4)
        run(v4cuda::state::Fp4ExpertRows{guCodes.data(), guScales.data(), c.D, blockCols},
            v4cuda::state::Fp4ExpertRows{dnCodes.data(), dnScales.data(), c.I, blockCols});
      else
        run(v4cuda::state::DenseExpertRows<bf16>{gateUpS.data(), c.D},
            v4cuda::state::DenseExpertRows<bf16>{downS.data(), c.I});
    });
    expectRows(out, expected, c.present, c.D, what + " launch " + str(launch), 1e-5f, &scale);
    scratch.expectClean();
  }
}

} // namespace v4emu::testing
