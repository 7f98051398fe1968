// The fused CPU kernels give bit-identical results to running the kernels of
// the ops they replace one after another (the fusion passes rely on it).
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "runtime/cpu/CpuKernels.h"

namespace v4rt {
namespace {

struct Arg {
  void *data;
  std::vector<int64_t> shape;
};

Attr intAttr(const char *name, std::vector<int64_t> values) { return {name, std::move(values), {}, ""}; }
Attr floatAttr(const char *name, std::vector<double> values) { return {name, {}, std::move(values), ""}; }

// Runs the registered CPU kernel `name` as the runtime would for one step.
void launch(const std::string &name, int64_t tokens, const std::vector<Arg> &ins,
            const std::vector<Arg> &outs, const std::vector<Attr> &attrs, ThreadPool *pool) {
  Step step;
  for (const Arg &arg : ins)
    step.ins.push_back(ArgRef{ArgKind::Arena, 0, 0, DType::F32, arg.shape});
  for (const Arg &arg : outs)
    step.outs.push_back(ArgRef{ArgKind::Arena, 0, 0, DType::F32, arg.shape});
  step.attrs = attrs;
  std::vector<std::vector<float>> floatAttrs;
  for (const Attr &attr : attrs)
    floatAttrs.emplace_back(attr.floats.begin(), attr.floats.end());
  KernelArgs args(step, floatAttrs);
  args.tokens = tokens;
  args.pool = pool;
  for (const Arg &arg : ins)
    args.ins.push_back(arg.data);
  for (const Arg &arg : outs)
    args.outs.push_back(arg.data);
  CpuKernelFn kernel = findCpuKernel(name);
  ASSERT_NE(kernel, nullptr) << "no CPU kernel " << name;
  kernel(args);
}

std::vector<float> randomValues(size_t count, unsigned seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> values(count);
  for (float &value : values)
    value = normal(rng);
  return values;
}

// Bitwise equality: fusion must not change a single rounding.
void expectSameBits(const std::vector<float> &fused, const std::vector<float> &unfused) {
  ASSERT_EQ(fused.size(), unfused.size());
  EXPECT_EQ(std::memcmp(fused.data(), unfused.data(), fused.size() * sizeof(float)), 0);
}

class FusedKernels : public ::testing::Test {
protected:
  ThreadPool pool{2};
};

TEST_F(FusedKernels, NormLinearEqualsNormThenEachLinear) {
  const int64_t T = 5, K = 32, N0 = 24, N1 = 7;
  auto x = randomValues(T * K, 1, 3.0f), normW = randomValues(K, 2);
  auto w0 = randomValues(N0 * K, 3), w1 = randomValues(N1 * K, 4);
  const std::vector<Attr> normAttrs = {intAttr("group", {K}), floatAttr("eps", {1e-6})};
  std::vector<float> normed(T * K), y0(T * N0), y1(T * N1);
  launch("v4.rms_norm", T, {{x.data(), {T, K}}, {normW.data(), {K}}}, {{normed.data(), {T, K}}},
         normAttrs, &pool);
  launch("v4.linear", T, {{normed.data(), {T, K}}, {w0.data(), {N0, K}}}, {{y0.data(), {T, N0}}}, {}, &pool);
  launch("v4.linear", T, {{normed.data(), {T, K}}, {w1.data(), {N1, K}}}, {{y1.data(), {T, N1}}}, {}, &pool);

  std::vector<float> f0(T * N0), f1(T * N1);
  std::vector<Attr> fusedAttrs = normAttrs;
  fusedAttrs.push_back(intAttr("operandSegmentSizes", {1, 1, 2}));
  launch("v4.norm_linear", T,
         {{x.data(), {T, K}}, {normW.data(), {K}}, {w0.data(), {N0, K}}, {w1.data(), {N1, K}}},
         {{f0.data(), {T, N0}}, {f1.data(), {T, N1}}}, fusedAttrs, &pool);
  expectSameBits(f0, y0);
  expectSameBits(f1, y1);
}

TEST_F(FusedKernels, NormLinearWithoutNormWeightUsesPerGroupNorm) {
  const int64_t T = 3, K = 32, N = 8, G = 8;
  auto x = randomValues(T * K, 5), w = randomValues(N * K, 6);
  const std::vector<Attr> normAttrs = {intAttr("group", {G}), floatAttr("eps", {1e-6})};
  std::vector<float> normed(T * K), y(T * N), fused(T * N);
  launch("v4.rms_norm", T, {{x.data(), {T, K}}}, {{normed.data(), {T, K}}}, normAttrs, &pool);
  launch("v4.linear", T, {{normed.data(), {T, K}}, {w.data(), {N, K}}}, {{y.data(), {T, N}}}, {}, &pool);
  std::vector<Attr> fusedAttrs = normAttrs;
  fusedAttrs.push_back(intAttr("operandSegmentSizes", {1, 0, 1}));
  launch("v4.norm_linear", T, {{x.data(), {T, K}}, {w.data(), {N, K}}}, {{fused.data(), {T, N}}},
         fusedAttrs, &pool);
  expectSameBits(fused, y);
}

TEST_F(FusedKernels, LinearSwigluEqualsTwoLinearsThenSwiglu) {
  const int64_t T = 4, D = 16, I = 12;
  auto h = randomValues(T * D, 7, 2.0f), wg = randomValues(I * D, 8), wu = randomValues(I * D, 9);
  // A small limit so the clamps are active on some entries.
  const std::vector<Attr> attrs = {floatAttr("limit", {1.5})};
  std::vector<float> g(T * I), u(T * I), a(T * I), fused(T * I);
  launch("v4.linear", T, {{h.data(), {T, D}}, {wg.data(), {I, D}}}, {{g.data(), {T, I}}}, {}, &pool);
  launch("v4.linear", T, {{h.data(), {T, D}}, {wu.data(), {I, D}}}, {{u.data(), {T, I}}}, {}, &pool);
  launch("v4.swiglu", T, {{g.data(), {T, I}}, {u.data(), {T, I}}}, {{a.data(), {T, I}}}, attrs, &pool);
  launch("v4.linear_swiglu", T, {{h.data(), {T, D}}, {wg.data(), {I, D}}, {wu.data(), {I, D}}},
         {{fused.data(), {T, I}}}, attrs, &pool);
  expectSameBits(fused, a);
  bool clamped = false;
  for (float value : u)
    clamped |= value > 1.5f || value < -1.5f;
  EXPECT_TRUE(clamped) << "the test data should exercise the clamp";
}

TEST_F(FusedKernels, HcPostPreEqualsPostThenPre) {
  const int64_t T = 3, hc = 4, D = 8, mixes = (2 + hc) * hc;
  auto X = randomValues(T * hc * D, 10), y = randomValues(T * D, 11);
  auto post = randomValues(T * hc, 12), comb = randomValues(T * hc * hc, 13);
  auto fn = randomValues(mixes * hc * D, 14, 0.1f), base = randomValues(mixes, 15);
  std::vector<float> scale = {0.5f, 0.7f, 0.9f};
  const std::vector<Attr> preAttrs = {intAttr("hc", {hc}), floatAttr("norm_eps", {1e-6}),
                                      floatAttr("hc_eps", {1e-6}), intAttr("sinkhorn_iters", {20})};
  std::vector<float> X2(T * hc * D), c(T * D), p(T * hc), m(T * hc * hc);
  launch("v4.hc_post", T,
         {{X.data(), {T, hc * D}}, {y.data(), {T, D}}, {post.data(), {T, hc}}, {comb.data(), {T, hc * hc}}},
         {{X2.data(), {T, hc * D}}}, {intAttr("hc", {hc})}, &pool);
  launch("v4.hc_pre", T,
         {{X2.data(), {T, hc * D}}, {fn.data(), {mixes, hc * D}}, {base.data(), {mixes}}, {scale.data(), {3}}},
         {{c.data(), {T, D}}, {p.data(), {T, hc}}, {m.data(), {T, hc * hc}}}, preAttrs, &pool);

  std::vector<float> fX2(T * hc * D), fc(T * D), fp(T * hc), fm(T * hc * hc);
  launch("v4.hc_post_pre", T,
         {{X.data(), {T, hc * D}}, {y.data(), {T, D}}, {post.data(), {T, hc}}, {comb.data(), {T, hc * hc}},
          {fn.data(), {mixes, hc * D}}, {base.data(), {mixes}}, {scale.data(), {3}}},
         {{fX2.data(), {T, hc * D}}, {fc.data(), {T, D}}, {fp.data(), {T, hc}}, {fm.data(), {T, hc * hc}}},
         preAttrs, &pool);
  expectSameBits(fX2, X2);
  expectSameBits(fc, c);
  expectSameBits(fp, p);
  expectSameBits(fm, m);
}

TEST_F(FusedKernels, RopeCacheAppendEqualsRopeThenAppend) {
  const int64_t hd = 16, W = 4;
  auto kv = randomValues(hd, 16);
  std::vector<int32_t> position = {6};
  const std::vector<Attr> attrs = {intAttr("head_dim", {hd}), intAttr("rope_dim", {4}),
                                   floatAttr("inv_freq", {1.0, 0.01}), floatAttr("scaling", {1.0}),
                                   intAttr("inverse", {0})};
  CacheBuffer window, fusedWindow;
  window.width = fusedWindow.width = hd;
  window.resizeRows(W);
  fusedWindow.resizeRows(W);
  std::vector<float> roped(hd), fusedRoped(hd);
  launch("v4.rope", 1, {{kv.data(), {1, hd}}, {position.data(), {1}}}, {{roped.data(), {1, hd}}}, attrs, &pool);
  launch("v4.cache_append", 1, {{&window, {}}, {roped.data(), {1, hd}}, {position.data(), {1}}}, {{&window, {}}},
         {}, &pool);
  launch("v4.rope_cache_append", 1, {{&fusedWindow, {}}, {kv.data(), {1, hd}}, {position.data(), {1}}},
         {{fusedRoped.data(), {1, hd}}, {&fusedWindow, {}}}, attrs, &pool);
  expectSameBits(fusedRoped, roped);
  expectSameBits(fusedWindow.data, window.data);
  // Slot 6 mod 4 holds the roped row, which differs from kv in its rope channels.
  EXPECT_EQ(std::memcmp(window.row(2), roped.data(), hd * sizeof(float)), 0);
  EXPECT_NE(std::memcmp(roped.data(), kv.data(), hd * sizeof(float)), 0);
}

TEST_F(FusedKernels, LinearCompressEqualsTwoLinearsThenCompress) {
  // CSA (overlap): Cin = 2C; 11 tokens complete two windows of 4 and start a third.
  const int64_t T = 11, D = 16, C = 8, Cin = 2 * C, m = 4;
  auto h = randomValues(T * D, 17), wkv = randomValues(Cin * D, 18), wg = randomValues(Cin * D, 19);
  auto bias = randomValues(m * Cin, 20), normW = randomValues(C, 21);
  std::vector<int32_t> positions(T);
  for (int64_t t = 0; t < T; ++t)
    positions[t] = static_cast<int32_t>(t);
  const std::vector<Attr> attrs = {intAttr("rate", {m}), intAttr("head_dim", {C}), intAttr("overlap", {1}),
                                   intAttr("rope_dim", {4}), floatAttr("inv_freq", {1.0, 0.01}),
                                   floatAttr("scaling", {1.0}), floatAttr("eps", {1e-6})};
  auto freshCaches = [&](CacheBuffer &state, CacheBuffer &entries) {
    state.width = 2 * Cin;
    state.resizeRows(2 * m);
    entries.width = C;
    entries.resizeRows(0);
  };
  CacheBuffer state, entries, fusedState, fusedEntries;
  freshCaches(state, entries);
  freshCaches(fusedState, fusedEntries);
  std::vector<float> kv(T * Cin), gate(T * Cin);
  launch("v4.linear", T, {{h.data(), {T, D}}, {wkv.data(), {Cin, D}}}, {{kv.data(), {T, Cin}}}, {}, &pool);
  launch("v4.linear", T, {{h.data(), {T, D}}, {wg.data(), {Cin, D}}}, {{gate.data(), {T, Cin}}}, {}, &pool);
  launch("v4.compress", T,
         {{kv.data(), {T, Cin}}, {gate.data(), {T, Cin}}, {bias.data(), {m, Cin}}, {normW.data(), {C}},
          {positions.data(), {T}}, {&state, {}}, {&entries, {}}},
         {{&state, {}}, {&entries, {}}}, attrs, &pool);
  launch("v4.linear_compress", T,
         {{h.data(), {T, D}}, {wkv.data(), {Cin, D}}, {wg.data(), {Cin, D}}, {bias.data(), {m, Cin}},
          {normW.data(), {C}}, {positions.data(), {T}}, {&fusedState, {}}, {&fusedEntries, {}}},
         {{&fusedState, {}}, {&fusedEntries, {}}}, attrs, &pool);
  EXPECT_EQ(entries.rows, 2);
  EXPECT_EQ(fusedEntries.rows, entries.rows);
  expectSameBits(fusedEntries.data, entries.data);
  expectSameBits(fusedState.data, state.data);
}

} // namespace
} // namespace v4rt
