// Helpers of the kernel host tests (DenseKernelsHostTest.cpp, StateKernelsHostTest.cpp,
// DenseMatmulHostTest.cpp): stored inputs, NaN-filled outputs, tolerance
// checks, and the emitter's entry for a one-step Program, whose LaunchDims
// the tests launch with (testing/HostEmulation.h). Include after
// HostEmulation.h and the kernel headers.
#pragma once

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>

#include "codegen/cuda/KernelEmitter.h"
#include "common/Error.h"
#include "runtime/cpu/QuantKernels.h"
#include "runtime/cpu/Quantization.h"
#include "runtime/cpu/ReferenceKernels.h"

namespace v4emu::testing {

using v4c::cuda::EmittedKernel;
using v4rt::DType;
using bf16 = __nv_bfloat16;

inline const float kNaN = std::nanf("");

// ---- data ------------------------------------------------------------------------

inline std::vector<float> randoms(size_t count, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> values(count);
  for (float &v : values)
    v = dist(rng);
  return values;
}

template <typename S> std::vector<S> stored(const std::vector<float> &values) {
  std::vector<S> out;
  out.reserve(values.size());
  for (float v : values)
    out.push_back(v4cuda::fromFloat<S>(v));
  return out;
}
// The floats that storage in S holds (what the reference is given).
template <typename S> std::vector<float> asStored(std::vector<float> values) {
  for (float &v : values)
    v = v4cuda::toFloat(v4cuda::fromFloat<S>(v));
  return values;
}
template <typename S> std::vector<S> nanFilled(size_t count) { return std::vector<S>(count, v4cuda::fromFloat<S>(kNaN)); }

template <typename S> constexpr DType dtypeOf() {
  if constexpr (std::is_same_v<S, float>)
    return DType::F32;
  else if constexpr (std::is_same_v<S, bf16>)
    return DType::BF16;
  else
    return DType::I32;
}
template <typename S> std::string typeName() { return v4c::cuda::cTypeName(dtypeOf<S>()); }
inline std::string str(int64_t v) { return std::to_string(v); }

// ---- checks ----------------------------------------------------------------------

// Compares rows < present of `out` ([bucketRows, width]) with `expected`
// ([present, width]); rows >= present must still be NaN. `termScale`
// (optional, [present, width]): sum |a * b| of a matmul output, the scale of
// its summation-order error.
template <typename S>
void expectRows(const std::vector<S> &out, const std::vector<float> &expected, int64_t present, int64_t width,
                const std::string &what, float relative = 1e-5f, const std::vector<float> *termScale = nullptr) {
  constexpr bool kBf16 = std::is_same_v<S, bf16>;
  int bad = 0;
  for (int64_t i = 0; i < present * width && bad < 5; ++i) {
    const float actual = v4cuda::toFloat(out[i]), reference = expected[i];
    float scale = std::max(1.0f, std::fabs(reference));
    if (termScale)
      scale = std::max(scale, (*termScale)[i]);
    const float bound = relative * scale + (kBf16 ? std::ldexp(std::fabs(reference), -8) : 0.0f);
    if (!(std::fabs(actual - reference) <= bound)) {
      ADD_FAILURE() << what << ": row " << i / width << " column " << i % width << " = " << actual << ", reference "
                    << reference << " (bound " << bound << ")";
      ++bad;
    }
  }
  for (int64_t i = present * width; i < static_cast<int64_t>(out.size()); ++i)
    if (!std::isnan(v4cuda::toFloat(out[i]))) {
      ADD_FAILURE() << what << ": row " << i / width << " >= dyn[0] = " << present << " was written";
      break;
    }
}

// sum_k |x[t, k] * w[n, k]|: the magnitude a matmul output's rounding scales with.
inline std::vector<float> termScale(const std::vector<float> &x, int64_t present, int64_t K, const std::vector<float> &w,
                             int64_t N) {
  std::vector<float> scale(present * N);
  for (int64_t t = 0; t < present; ++t)
    for (int64_t n = 0; n < N; ++n) {
      double sum = 0.0;
      for (int64_t k = 0; k < K; ++k)
        sum += std::fabs(x[t * K + k] * w[n * K + k]);
      scale[t * N + n] = static_cast<float>(sum);
    }
  return scale;
}

// linear_fp8's weights and expectation: w [N, K] quantized to e4m3 codes and
// ue8m0 scales in `block`s, and ref::linearFp8 of x's first `present` rows.
struct Fp8LinearCase {
  std::vector<uint8_t> codes, scales;
  std::vector<float> expected; // [present, N]
};
inline Fp8LinearCase fp8LinearCase(const std::vector<float> &x, int64_t present, int64_t K,
                                   const std::vector<float> &w, int64_t N, v4rt::quant::BlockShape block) {
  Fp8LinearCase c;
  c.codes.resize(N * K);
  c.scales.resize(v4rt::quant::scaleCount(N, K, block));
  v4rt::quant::quantizeBlocks(w.data(), N, K, block, v4rt::quant::Format::E4M3, c.codes.data(), c.scales.data());
  c.expected.resize(present * N);
  v4rt::ref::linearFp8(x.data(), present, K, c.codes.data(), c.scales.data(), N, block, c.expected.data(), nullptr);
  return c;
}

// termScale of grouped_linear: x [present, G * KG] group g against weight
// rows [g * R, (g + 1) * R) of [G * R, KG]; output [present, G * R].
inline std::vector<float> groupedTermScale(const std::vector<float> &x, int64_t present, int64_t G, int64_t KG,
                                           const std::vector<float> &w, int64_t R) {
  std::vector<float> scale(present * G * R);
  for (int64_t g = 0; g < G; ++g)
    for (int64_t t = 0; t < present; ++t)
      for (int64_t r = 0; r < R; ++r) {
        double sum = 0.0;
        for (int64_t k = 0; k < KG; ++k)
          sum += std::fabs(x[(t * G + g) * KG + k] * w[(g * R + r) * KG + k]);
        scale[t * G * R + g * R + r] = static_cast<float>(sum);
      }
  return scale;
}

// linear_swiglu's expected rows (the reference kernels on h [present, K],
// gate / up weights [I, K]) and their tolerance scale: swiglu's slope is at
// most ~1.1 |up| in gate and ~limit in up, so the terms of both count.
struct SwigluExpectation {
  std::vector<float> values, scale;
};
inline SwigluExpectation swigluExpectation(const std::vector<float> &h, const std::vector<float> &gateW,
                                           const std::vector<float> &upW, int64_t present, int64_t K, int64_t I,
                                           float limit) {
  std::vector<float> gate(present * I), up(present * I);
  SwigluExpectation expected{std::vector<float>(present * I), std::vector<float>(present * I)};
  v4rt::ref::linear(h.data(), present, K, gateW.data(), I, gate.data(), nullptr);
  v4rt::ref::linear(h.data(), present, K, upW.data(), I, up.data(), nullptr);
  v4rt::ref::swiglu(gate.data(), up.data(), present * I, limit, expected.values.data());
  const std::vector<float> gateScale = termScale(h, present, K, gateW, I), upScale = termScale(h, present, K, upW, I);
  for (int64_t i = 0; i < present * I; ++i)
    expected.scale[i] = 2.0f * (gateScale[i] * std::min(std::fabs(up[i]), limit) + upScale[i] * limit);
  return expected;
}

// ---- the emitter's entry ----------------------------------------------------------

inline v4rt::ArgRef arg(DType dtype, std::vector<int64_t> shape, v4rt::ArgKind kind = v4rt::ArgKind::Arena) {
  v4rt::ArgRef ref;
  ref.kind = kind;
  ref.dtype = dtype;
  ref.shape = std::move(shape);
  return ref;
}
inline v4rt::ArgRef weight(DType dtype, std::vector<int64_t> shape) { return arg(dtype, std::move(shape), v4rt::ArgKind::Weight); }
inline v4rt::Attr intAttr(const std::string &name, std::vector<int64_t> values) {
  v4rt::Attr a;
  a.name = name;
  a.ints = std::move(values);
  return a;
}
inline v4rt::Attr floatAttr(const std::string &name, std::vector<double> values) {
  v4rt::Attr a;
  a.name = name;
  a.floats = std::move(values);
  return a;
}

// The emitter's kernel for the only step of `op` in `bucket` (its name, kind,
// tokens and batch; its steps are replaced), with the program's cache slots.
inline EmittedKernel emitInBucket(const std::string &op, v4rt::Bucket bucket, std::vector<v4rt::CacheSlot> caches,
                                  std::vector<v4rt::ArgRef> ins, std::vector<v4rt::ArgRef> outs,
                                  std::vector<v4rt::Attr> attrs) {
  v4rt::Program program;
  program.target = "sm_90a";
  program.kernels.push_back({op, {}});
  program.caches = std::move(caches);
  v4rt::Step step;
  step.kernel = 0;
  step.ins = std::move(ins);
  step.outs = std::move(outs);
  step.attrs = std::move(attrs);
  bucket.steps.assign(1, std::move(step));
  program.buckets.push_back(std::move(bucket));
  const v4c::cuda::KernelEmitterFn emitter = v4c::cuda::findEmitter(op);
  if (!emitter)
    throw v4c::Error("no emitter for " + op);
  return emitter(v4c::cuda::StepView(program, program.buckets[0], program.buckets[0].steps[0]));
}

// The emitter's kernel for one step of `op` in a prefill bucket of `tokens` tokens.
inline EmittedKernel emit(const std::string &op, int64_t tokens, std::vector<v4rt::ArgRef> ins,
                   std::vector<v4rt::ArgRef> outs, std::vector<v4rt::Attr> attrs = {}) {
  v4rt::Bucket bucket;
  bucket.name = "prefill_" + str(tokens);
  bucket.tokens = tokens;
  return emitInBucket(op, std::move(bucket), {}, std::move(ins), std::move(outs), std::move(attrs));
}

// "v4cuda::name<a, b, ...>": the instantiation the entry must call.
inline std::string instantiation(const std::string &name, const std::vector<std::string> &args) {
  std::string text = "v4cuda::" + name + "<";
  for (size_t i = 0; i < args.size(); ++i)
    text += (i ? ", " : "") + args[i];
  return text + ">(";
}

// Checks that `kernel` calls `callee`, then runs `body` with its launch geometry.
template <typename F> void launchEntry(const EmittedKernel &kernel, const std::string &callee, F body) {
  ASSERT_NE(kernel.source.find(callee), std::string::npos)
      << "the entry does not call " << callee << "...); the emitter wrote:\n"
      << kernel.source;
  const v4c::cuda::LaunchDims &d = kernel.dims;
  v4emu::launch(dim3(d.grid[0], d.grid[1], d.grid[2]), dim3(d.block[0], d.block[1], d.block[2]), d.sharedBytes, body);
}

inline std::string boolText(bool value) { return value ? "true" : "false"; }

// Template arguments of a matmul tile (none for the GEMV).
template <int BM, int BN, bool MMA> std::vector<std::string> tileArgs() {
  return BM == 0 ? std::vector<std::string>{} : std::vector<std::string>{str(BM), str(BN), boolText(MMA)};
}
inline std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string> &b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

} // namespace v4emu::testing
