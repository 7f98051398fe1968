// Bytes and FLOPs of single steps (profile's ceilings), on hand-made programs.
#include <cmath>

#include <gtest/gtest.h>

#include "common/Error.h"
#include "tools/v4run/ProgramTestSupport.h"
#include "tools/v4run/StepWork.h"

namespace v4run {
namespace {

using namespace test; // ArgKind, ArgRef, DType, weight(), cache(), arena(), makeWeight()

ArgRef positions(int64_t tokens) { return ArgRef{ArgKind::Input, 1, 0, DType::I32, {tokens}}; }

v4rt::Attr intAttr(const char *name, int64_t value) { return v4rt::Attr{name, {value}, {}, {}}; }

// A program with one kernel per op (CPU names, or CUDA-like entry names).
struct Fixture {
  v4rt::Program program;
  v4rt::Bucket prefill, decode, batched;

  Fixture() {
    program.target = "cpu";
    // 8 experts top-2, vocab 50.
    program.configJson = R"({"n_routed_experts": 8, "num_experts_per_tok": 2, "vocab_size": 50})";
    program.inputs = {{"ids", DType::I32, 1}, {"positions", DType::I32, 1}};
    program.outputs = {{"logits", DType::F32, 50}};
    program.weights = {makeWeight("wq", {96, 64}, DType::BF16),           // 0: linear [N=96, K=64]
                       makeWeight("gate_up", {8, 32, 64}, DType::BF16),   // 1: experts, I = 16
                       makeWeight("down", {8, 64, 16}, DType::BF16),      // 2
                       makeWeight("w8", {128, 64}, DType::F8E4M3),        // 3: fp8 codes
                       makeWeight("w8_scale", {1, 1}, DType::U8),         // 4
                       makeWeight("norm", {64}, DType::F32),              // 5
                       makeWeight("wk", {32, 64}, DType::BF16),           // 6
                       makeWeight("sinks", {4}, DType::F32)};             // 7
    // window W = 8 rows of 16 bf16; CSA entries rate 4 width 16 bf16.
    program.caches = {{"l0.window", 0, v4rt::CacheKind::Window, 8, 16, 0, DType::BF16},
                      {"l0.entries", 0, v4rt::CacheKind::Entries, 0, 16, 4, DType::BF16},
                      {"l0.keys", 0, v4rt::CacheKind::Entries, 0, 8, 4, DType::F32},
                      {"l0.state", 0, v4rt::CacheKind::CompressState, 8, 32, 0, DType::F32}};
    for (const char *name : {"v4.linear", "v4.moe", "v4.linear_fp8", "v4.norm_linear", "v4.attention",
                             "v4.indexer_topk", "v4.cache_append", "v4.embed"})
      program.kernels.push_back({name, {}, 0});
    prefill = bucket("prefill_16", v4rt::BucketKind::Prefill, 16, 1);
    decode = bucket("decode_1", v4rt::BucketKind::Decode, 1, 1);
    batched = bucket("decode_4", v4rt::BucketKind::Decode, 4, 4);
  }

  static v4rt::Bucket bucket(const char *name, v4rt::BucketKind kind, int64_t tokens, int64_t batch) {
    v4rt::Bucket b;
    b.name = name;
    b.kind = kind;
    b.tokens = tokens;
    b.batch = batch;
    const int64_t T = tokens;
    v4rt::Step linear;
    linear.kernel = 0;
    linear.ins = {arena(DType::BF16, {T, 64}), weight(0)};
    linear.outs = {arena(DType::BF16, {T, 96})};
    v4rt::Step moe; // h, weights [T, 2], experts [T, 2], gate_up, down
    moe.kernel = 1;
    moe.ins = {arena(DType::BF16, {T, 64}), arena(DType::F32, {T, 2}), arena(DType::I32, {T, 2}), weight(1),
               weight(2)};
    moe.outs = {arena(DType::BF16, {T, 64})};
    v4rt::Step fp8;
    fp8.kernel = 2;
    fp8.ins = {arena(DType::BF16, {T, 64}), weight(3), weight(4)};
    fp8.outs = {arena(DType::BF16, {T, 128})};
    v4rt::Step normLinear; // x, norm_w, two weights
    normLinear.kernel = 3;
    normLinear.ins = {arena(DType::BF16, {T, 64}), weight(5), weight(0), weight(6)};
    normLinear.outs = {arena(DType::BF16, {T, 96}), arena(DType::BF16, {T, 32})};
    normLinear.attrs = {v4rt::Attr{"operandSegmentSizes", {1, 1, 2}, {}, {}}};
    v4rt::Step attention; // q [T, 4 x 16], kv, sinks, positions, window, entries, topk [T, 3]
    attention.kernel = 4;
    attention.ins = {arena(DType::BF16, {T, 64}), arena(DType::BF16, {T, 16}), weight(7), positions(T),
                     cache(0, DType::BF16), cache(1, DType::BF16), arena(DType::I32, {T, 3})};
    attention.outs = {arena(DType::BF16, {T, 64})};
    attention.attrs = {intAttr("num_heads", 4), intAttr("head_dim", 16), intAttr("window", 8), intAttr("rate", 4),
                       v4rt::Attr{"operandSegmentSizes", {1, 1, 1, 1, 1, 1, 1}, {}, {}}};
    v4rt::Step indexer; // q [T, 2 x 8], weights [T, 2], positions, keys
    indexer.kernel = 5;
    indexer.ins = {arena(DType::F32, {T, 16}), arena(DType::F32, {T, 2}), positions(T), cache(2)};
    indexer.outs = {arena(DType::I32, {T, 3})};
    indexer.attrs = {intAttr("heads", 2), intAttr("head_dim", 8), intAttr("rate", 4)};
    v4rt::Step append; // window, kv, positions -> window'
    append.kernel = 6;
    append.ins = {cache(0, DType::BF16), arena(DType::BF16, {T, 16}), positions(T)};
    append.outs = {cache(0, DType::BF16)};
    b.steps = {linear, moe, fp8, normLinear, attention, indexer, append};
    return b;
  }
};

TEST(StepWork, LinearBytesAndFlops) {
  Fixture f;
  const WorkModel model(f.program);
  // 16 rows of a bf16 [96, 64] linear: 2 x 16 x 96 x 64 FLOPs; the weight
  // once, x and y at the live rows.
  StepWork w = model.step(f.prefill, f.prefill.steps[0], RunShape{16, 0});
  EXPECT_EQ(w.op, "v4.linear");
  EXPECT_EQ(w.weightBytes, 96u * 64 * 2);
  EXPECT_EQ(w.activationBytes, 16u * 64 * 2 + 16u * 96 * 2);
  EXPECT_EQ(w.cacheReadBytes + w.cacheWrittenBytes, 0u);
  EXPECT_DOUBLE_EQ(w.flops, 2.0 * 16 * 96 * 64);
  EXPECT_EQ(w.math, MathKind::BF16);
  // 5 live rows of the 16-row bucket: activations and FLOPs scale, the weight does not.
  w = model.step(f.prefill, f.prefill.steps[0], RunShape{5, 0});
  EXPECT_EQ(w.weightBytes, 96u * 64 * 2);
  EXPECT_EQ(w.activationBytes, 5u * 64 * 2 + 5u * 96 * 2);
  EXPECT_DOUBLE_EQ(w.flops, 2.0 * 5 * 96 * 64);
}

TEST(StepWork, MoeReadsTheExpertsItsTokensTouch) {
  Fixture f;
  const WorkModel model(f.program);
  const uint64_t experts = 8u * 32 * 64 * 2 + 8u * 64 * 16 * 2;
  // One token: k/E = 1/4 of the experts; 2 x k x 3 x I x D FLOPs.
  StepWork w = model.step(f.decode, f.decode.steps[1], RunShape{1, 0});
  EXPECT_EQ(w.op, "v4.moe");
  EXPECT_EQ(w.weightBytes, experts / 4);
  EXPECT_DOUBLE_EQ(w.flops, 2.0 * 1 * 2 * 3 * 16 * 64);
  // 16 tokens touch 1 - (3/4)^16 of them.
  w = model.step(f.prefill, f.prefill.steps[1], RunShape{16, 0});
  EXPECT_NEAR(static_cast<double>(w.weightBytes), (1.0 - std::pow(0.75, 16)) * experts, 1.0);
  EXPECT_DOUBLE_EQ(w.flops, 2.0 * 16 * 2 * 3 * 16 * 64);
}

TEST(StepWork, Fp8LinearAndNormLinear) {
  Fixture f;
  const WorkModel model(f.program);
  StepWork w = model.step(f.decode, f.decode.steps[2], RunShape{1, 0});
  EXPECT_EQ(w.op, "v4.linear_fp8");
  EXPECT_EQ(w.weightBytes, 128u * 64 + 1u);
  EXPECT_DOUBLE_EQ(w.flops, 2.0 * 128 * 64);
  EXPECT_EQ(w.math, MathKind::FP8);
  // norm_linear: both weights of the variadic operand, not the norm weight.
  w = model.step(f.prefill, f.prefill.steps[3], RunShape{16, 0});
  EXPECT_EQ(w.op, "v4.norm_linear");
  EXPECT_DOUBLE_EQ(w.flops, 2.0 * 16 * (96 * 64 + 32 * 64));
  EXPECT_EQ(w.weightBytes, 64u * 4 + 96u * 64 * 2 + 32u * 64 * 2);
}

TEST(StepWork, AttentionOverWindowAndTopKEntries) {
  Fixture f;
  const WorkModel model(f.program);
  // Decode at context 100 (position 100): window min(101, 8) = 8 candidates,
  // entries 101 / 4 = 25 visible, top-3 of them: 11 x 4 x 4 heads x 16 FLOPs.
  StepWork w = model.step(f.decode, f.decode.steps[4], RunShape{1, 100});
  EXPECT_EQ(w.op, "v4.attention");
  EXPECT_DOUBLE_EQ(w.flops, 4.0 * 4 * 16 * (8 + 3));
  // Reads 8 window rows (min(100, W)) and 3 entries, 16 bf16 each.
  EXPECT_EQ(w.cacheReadBytes, 8u * 32 + 3u * 32);
  EXPECT_EQ(w.cacheWrittenBytes, 0u);
  // Prefill of 16 tokens from context 0: positions 0..15 see min(p + 1, 8)
  // window rows and min((p + 1) / 4, 3) entries.
  double candidates = 0;
  for (int p = 0; p < 16; ++p)
    candidates += std::min(p + 1, 8) + std::min((p + 1) / 4, 3);
  w = model.step(f.prefill, f.prefill.steps[4], RunShape{16, 0});
  EXPECT_DOUBLE_EQ(w.flops, 4.0 * 4 * 16 * candidates);
  EXPECT_EQ(w.cacheReadBytes, 0u * 32 + 4u * 32); // no older window rows; entries visible at the end: 16 / 4
  // Four sessions at context 100 in the batched bucket: each reads its own.
  w = model.step(f.batched, f.batched.steps[4], RunShape{4, 100});
  EXPECT_DOUBLE_EQ(w.flops, 4 * 4.0 * 4 * 16 * (8 + 3));
  EXPECT_EQ(w.cacheReadBytes, 4 * (8u * 32 + 3u * 32));
}

TEST(StepWork, IndexerScoresEveryVisibleKey) {
  Fixture f;
  const WorkModel model(f.program);
  // Position 1000: 1001 / 4 = 250 keys of 8 f32, 2 heads x 8 dims each.
  const StepWork w = model.step(f.decode, f.decode.steps[5], RunShape{1, 1000});
  EXPECT_EQ(w.op, "v4.indexer_topk");
  EXPECT_EQ(w.cacheReadBytes, 250u * 8 * 4);
  EXPECT_DOUBLE_EQ(w.flops, 2.0 * 2 * 8 * 250);
  EXPECT_EQ(w.math, MathKind::F32);
}

TEST(StepWork, CacheAppendWritesRows) {
  Fixture f;
  const WorkModel model(f.program);
  StepWork w = model.step(f.prefill, f.prefill.steps[6], RunShape{16, 40});
  EXPECT_EQ(w.op, "v4.cache_append");
  EXPECT_EQ(w.cacheReadBytes, 0u);
  EXPECT_EQ(w.cacheWrittenBytes, 8u * 32); // 16 tokens into a ring of 8 rows
  EXPECT_DOUBLE_EQ(w.flops, 0.0);
  w = model.step(f.batched, f.batched.steps[6], RunShape{3, 40});
  EXPECT_EQ(w.cacheWrittenBytes, 3u * 32); // one row per session
}

TEST(StepWork, KvCacheBytesPerToken) {
  Fixture f;
  // Entries: 16 bf16 / 4 + 8 f32 / 4 per token.
  EXPECT_DOUBLE_EQ(WorkModel(f.program).cacheBytesPerToken(), 32.0 / 4 + 32.0 / 4);
}

TEST(StepWork, OpOfCudaEntryNames) {
  Fixture f;
  f.program.kernels = {{"v4_linear_gemv_bf16_bf16_to_bf16_T1_K64_N96", {}, 0},
                       {"v4_linear_fp8_gemv_bf16_f8_u8_to_bf16_T1", {}, 0},
                       {"v4s_rope_cache_append_bf16_f32_i32_to_f32_bf16_T1_1a2b3c4d", {}, 0},
                       {"v4s_attention_f32_T1_deadbeef", {}, 0},
                       {"v4_rope", {}, 0},
                       {"v4_ropey_thing", {}, 0},
                       {"custom_kernel", {}, 0}};
  const char *expected[] = {"v4.linear", "v4.linear_fp8", "v4.rope_cache_append", "v4.attention", "v4.rope", "?", "?"};
  for (uint32_t k = 0; k < f.program.kernels.size(); ++k) {
    v4rt::Step step;
    step.kernel = k;
    EXPECT_EQ(stepOp(f.program, step), expected[k]) << f.program.kernels[k].name;
  }
}

TEST(StepWork, RejectsRowsOutsideTheBucket) {
  Fixture f;
  const WorkModel model(f.program);
  EXPECT_THROW(model.step(f.decode, f.decode.steps[0], RunShape{2, 0}), v4c::Error);
  EXPECT_THROW(model.step(f.decode, f.decode.steps[0], RunShape{0, 0}), v4c::Error);
}

TEST(StepWork, RejectsAConfigWithoutExperts) {
  Fixture f;
  f.program.configJson = R"({"vocab_size": 50})";
  EXPECT_THROW(WorkModel model(f.program), v4c::Error);
}

} // namespace
} // namespace v4run
