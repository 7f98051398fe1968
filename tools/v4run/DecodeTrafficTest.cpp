// The bytes bench counts for a decode step, on a hand-made program.
#include <gtest/gtest.h>

#include "tools/v4run/DecodeTraffic.h"
#include "tools/v4run/ProgramTestSupport.h"

namespace v4run {
namespace {

using namespace test; // ArgKind, ArgRef, DType, weight(), cache(), arena(), makeWeight()

// vocab 100, hidden 8, 4 experts top-1 (k/E = 1/4), window 16, entries rate 4 (top-K 2).
v4rt::Program program() {
  v4rt::Program p;
  p.target = "sm_90a";
  p.configJson = R"({"n_routed_experts": 4, "num_experts_per_tok": 1, "vocab_size": 100})";
  p.inputs = {{"ids", DType::I32, 1}, {"positions", DType::I32, 1}};
  p.outputs = {{"logits", DType::F32, 100}};
  p.weights = {makeWeight("embed", {100, 8}, DType::BF16),      // 1600 bytes, 16 per row
               makeWeight("lm_head", {100, 8}, DType::F32),     // 3200
               makeWeight("experts", {4, 16, 8}, DType::F32),   // 2048, a quarter read
               makeWeight("gate", {4, 8}, DType::F32)};         // 128 (router: rank 2, read whole)
  p.caches = {{"l0.window", 0, v4rt::CacheKind::Window, 16, 8, 0, DType::BF16},
              {"l0.entries", 0, v4rt::CacheKind::Entries, 0, 8, 4, DType::F32},
              {"l0.state", 0, v4rt::CacheKind::CompressState, 8, 4, 0, DType::F32}};
  v4rt::Bucket decode;
  decode.name = "decode_1";
  decode.kind = v4rt::BucketKind::Decode;
  decode.tokens = 1;
  v4rt::Step embed;
  embed.ins = {ArgRef{ArgKind::Input, 0, 0, DType::I32, {1}}, weight(0)};
  v4rt::Step append; // writes the window: no read counted
  append.ins = {cache(0), arena(DType::F32, {1, 8})};
  append.outs = {cache(0)};
  v4rt::Step compress; // reads and writes its state
  compress.ins = {arena(DType::F32, {1, 8}), cache(2), cache(1)};
  compress.outs = {cache(2), cache(1)};
  v4rt::Step attention; // window + the top-2 of the visible entries
  attention.ins = {arena(DType::F32, {1, 8}), cache(0), cache(1), arena(DType::I32, {1, 2})};
  attention.outs = {arena(DType::F32, {1, 8})};
  v4rt::Step router;
  router.ins = {arena(DType::F32, {1, 8}), weight(3)};
  v4rt::Step moe;
  moe.ins = {arena(DType::F32, {1, 8}), arena(DType::F32, {1, 1}), arena(DType::I32, {1, 1}), weight(2)};
  v4rt::Step head;
  head.ins = {arena(DType::F32, {1, 8}), weight(1), weight(0)}; // the embedding again: counted once
  decode.steps = {embed, append, compress, attention, router, moe, head};
  v4rt::Bucket prefill = decode;
  prefill.name = "prefill_64";
  prefill.kind = v4rt::BucketKind::Prefill;
  prefill.tokens = 64;
  prefill.steps.clear();
  p.buckets = {prefill, decode};
  return p;
}

TEST(DecodeTraffic, CountsWhatOneStepReads) {
  const v4rt::Program p = program();
  EXPECT_EQ(decodeBucketOf(p).name, "decode_1");
  // Context 100: window min(100, 16) rows x 8 bf16 read, one appended;
  // entries (101 / 4 = 25 visible) capped at top-2 x 8 f32; the whole state
  // 8 x 4 f32 read and one row of it written; no entry completes at 100.
  const DecodeTraffic t = decodeTraffic(p, 100, 1);
  EXPECT_EQ(t.weightBytes, 16u + 3200u + 2048u / 4 + 128u);
  EXPECT_EQ(t.routedExpertBytes, 2048u);
  EXPECT_EQ(t.cacheBytes, 16u * 8 * 2 + 8 * 2 + 2u * 8 * 4 + 8u * 4 * 4 + 4 * 4);
  EXPECT_EQ(t.total(), t.weightBytes + t.cacheBytes);
  // Context 5: 5 window rows; one visible entry (below K).
  EXPECT_EQ(decodeTraffic(p, 5, 1).cacheBytes, 5u * 8 * 2 + 8 * 2 + 1u * 8 * 4 + 8u * 4 * 4 + 4 * 4);
  // Context 7: the token at position 7 completes entry 1 (8 f32 written).
  EXPECT_EQ(decodeTraffic(p, 7, 1).cacheBytes, 7u * 8 * 2 + 8 * 2 + 2u * 8 * 4 + 8u * 4 * 4 + 4 * 4 + 8 * 4);
}

TEST(DecodeTraffic, BatchesShareWeightsButNotCaches) {
  const v4rt::Program p = program();
  const DecodeTraffic one = decodeTraffic(p, 100, 1), two = decodeTraffic(p, 100, 2);
  EXPECT_EQ(two.cacheBytes, 2 * one.cacheBytes);
  // Two tokens touch 1 - (3/4)^2 = 7/16 of the experts and two embedding rows.
  EXPECT_EQ(two.weightBytes, 2u * 16 + 3200u + 2048u * 7 / 16 + 128u);
}

TEST(DecodeTraffic, BatchedBucketRowsAreSessions) {
  v4rt::Program p = program();
  v4rt::Bucket batched = p.buckets.back();
  batched.name = "decode_4";
  batched.tokens = batched.batch = 4;
  for (v4rt::Step &step : batched.steps)
    for (auto *args : {&step.ins, &step.outs})
      for (ArgRef &arg : *args)
        if (arg.kind == ArgKind::Arena || arg.kind == ArgKind::Input)
          arg.shape[0] = 4;
  p.buckets.push_back(batched);
  EXPECT_EQ(decodeBucketOf(p, 1).name, "decode_1");
  EXPECT_EQ(decodeBucketOf(p, 3).name, "decode_4");
  EXPECT_EQ(decodeBucketOf(p, 9).name, "decode_1"); // none big enough: one session at a time
  // Three sessions in the 4-row bucket: each reads its own caches.
  EXPECT_EQ(decodeTraffic(p, 100, 3).cacheBytes, 3 * decodeTraffic(p, 100, 1).cacheBytes);
  EXPECT_EQ(decodeTraffic(p, 100, 3).weightBytes, 3u * 16 + 3200u + 2048u * 37 / 64 + 128u);
}

TEST(DecodeTraffic, FallsBackToThePrefillBucket) {
  v4rt::Program p = program();
  p.buckets.pop_back();
  EXPECT_EQ(decodeBucketOf(p).name, "prefill_64");
}

} // namespace
} // namespace v4run
