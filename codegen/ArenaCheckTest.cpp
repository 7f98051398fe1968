// An independent check of the memory planner on the real V4-Flash and V4-Pro
// graphs: replays every bucket's steps over the arena and proves that each
// value a step reads is still the bytes its producer wrote, i.e. no buffer
// live at the same time overlaps it. It knows nothing of the planner.
//
// One exception is legal: a step whose kernel is a V4_InPlaceElementwise op
// (looked up in the dialect, not in the planner's attributes) may write its
// first output over exactly the bytes of an input of the same shape and type.
// That input is then dead: any later read of it fails the check like any
// other overwritten input.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "mlir/Pass/PassManager.h"

#include "codegen/ProgramFromPlan.h"
#include "dialects/plan/PlanOps.h"
#include "dialects/v4/V4Ops.h"
#include "models/ModelBuilder.h"
#include "models/config/NamedConfigs.h"
#include "passes/Pipeline.h"

namespace {

struct Range {
  uint64_t begin, end;
  bool overlaps(const Range &other) const { return begin < other.end && other.begin < end; }
  bool operator==(const Range &other) const { return begin == other.begin && end == other.end; }
};

// Which value each arena argument of a step holds (an id per plan.alloc; 0
// for other arguments), and whether the step's kernel may write outs[0] over
// an input.
struct StepValues {
  std::vector<uintptr_t> ins, outs;
  bool inPlaceElementwise = false;
};

struct Write {
  Range range;
  size_t step;
  uintptr_t value;
};

Range rangeOf(const v4rt::ArgRef &arg) { return {arg.offset, arg.offset + arg.byteSize()}; }

bool mayWriteOver(const v4rt::ArgRef &out, const v4rt::ArgRef &in) {
  return rangeOf(out) == rangeOf(in) && out.dtype == in.dtype && out.shape == in.shape;
}

// Returns the first violation, or "" when every read sees its producer's bytes.
std::string checkBucket(const v4rt::Bucket &bucket, const std::vector<StepValues> &values) {
  if (values.size() != bucket.steps.size())
    return "the bucket has " + std::to_string(bucket.steps.size()) + " steps but " +
           std::to_string(values.size()) + " step descriptions";
  std::vector<Write> writes; // in step order
  for (size_t step = 0; step < bucket.steps.size(); ++step) {
    const v4rt::Step &s = bucket.steps[step];
    const std::string at = "step " + std::to_string(step);
    for (size_t i = 0; i < s.ins.size(); ++i) {
      if (s.ins[i].kind != v4rt::ArgKind::Arena)
        continue;
      const Range read = rangeOf(s.ins[i]);
      if (read.end > bucket.arenaBytes)
        return at + " reads past the arena";
      // The producer is the latest write of this value; nothing written
      // after it may touch its bytes.
      int64_t producer = -1;
      for (int64_t w = static_cast<int64_t>(writes.size()) - 1; w >= 0 && producer < 0; --w)
        if (writes[w].value == values[step].ins.at(i))
          producer = w;
      if (producer < 0)
        return at + " reads input #" + std::to_string(i) + ", which no step wrote";
      if (!(writes[producer].range == read))
        return at + " reads input #" + std::to_string(i) + " at other bytes than its producer wrote";
      for (size_t w = producer + 1; w < writes.size(); ++w)
        if (writes[w].range.overlaps(read))
          return "step " + std::to_string(writes[w].step) + " overwrites the input of " + at +
                 " (written by step " + std::to_string(writes[producer].step) + ")";
    }
    for (size_t o = 0; o < s.outs.size(); ++o) {
      if (s.outs[o].kind != v4rt::ArgKind::Arena)
        continue;
      const Range written = rangeOf(s.outs[o]);
      if (written.end > bucket.arenaBytes)
        return at + " writes past the arena";
      for (size_t other = 0; other < o; ++other)
        if (s.outs[other].kind == v4rt::ArgKind::Arena && rangeOf(s.outs[other]).overlaps(written))
          return at + " writes outputs #" + std::to_string(other) + " and #" + std::to_string(o) +
                 " over each other";
      for (size_t i = 0; i < s.ins.size(); ++i) {
        if (s.ins[i].kind != v4rt::ArgKind::Arena || !rangeOf(s.ins[i]).overlaps(written))
          continue;
        if (o != 0 || !values[step].inPlaceElementwise || !mayWriteOver(s.outs[o], s.ins[i]))
          return at + " writes output #" + std::to_string(o) + " over its input #" + std::to_string(i);
      }
      writes.push_back({written, step, values[step].outs.at(o)});
    }
  }
  return "";
}

// The value identities of `bucketOp`'s launches, and the in-place property of
// each kernel's v4 op.
std::vector<StepValues> describeSteps(v4c::plan::BucketOp bucketOp) {
  auto idOf = [](mlir::Value value) -> uintptr_t {
    return value.getDefiningOp<v4c::plan::AllocOp>() ? reinterpret_cast<uintptr_t>(value.getAsOpaquePointer())
                                                     : 0;
  };
  std::vector<StepValues> steps;
  for (auto launch : bucketOp.getBodyBlock().getOps<v4c::plan::LaunchOp>()) {
    StepValues step;
    for (mlir::Value in : launch.getIns())
      step.ins.push_back(idOf(in));
    for (mlir::Value out : launch.getOuts())
      step.outs.push_back(idOf(out));
    std::optional<mlir::RegisteredOperationName> op =
        mlir::RegisteredOperationName::lookup(launch.getKernel(), launch.getContext());
    step.inPlaceElementwise = op && op->hasTrait<v4c::v4::OpTrait::InPlaceElementwise>();
    steps.push_back(std::move(step));
  }
  return steps;
}

// Steps whose first output sits exactly on one of their inputs.
int64_t countInPlaceSteps(const v4rt::Bucket &bucket) {
  int64_t count = 0;
  for (const v4rt::Step &step : bucket.steps)
    for (const v4rt::ArgRef &in : step.ins)
      if (!step.outs.empty() && step.outs[0].kind == v4rt::ArgKind::Arena && in.kind == v4rt::ArgKind::Arena &&
          rangeOf(in) == rangeOf(step.outs[0])) {
        ++count;
        break;
      }
  return count;
}

struct Case {
  const char *model;
  bool fuse;
};

class ArenaCheck : public ::testing::TestWithParam<Case> {};

TEST_P(ArenaCheck, NoLiveBuffersOverlapInAnyBucket) {
  mlir::MLIRContext context;
  const v4c::ModelConfig config = v4c::namedConfig(GetParam().model);
  auto module = v4c::buildModel(context, config);
  mlir::PassManager pm(&context);
  v4c::PipelineOptions options;
  options.buckets = "prefill:64,prefill:512,decode:1";
  options.fuse = GetParam().fuse;
  v4c::buildDefaultPipeline(pm, options);
  ASSERT_TRUE(mlir::succeeded(pm.run(*module)));
  const v4rt::Program program = v4c::programFromPlan(*module, "cpu");
  ASSERT_EQ(program.buckets.size(), 3u);
  size_t index = 0;
  for (auto bucketOp : module->getOps<v4c::plan::BucketOp>()) {
    const v4rt::Bucket &bucket = program.buckets.at(index++);
    ASSERT_EQ(bucket.name, bucketOp.getSymName().str());
    EXPECT_GT(bucket.steps.size(), 900u);
    EXPECT_EQ(checkBucket(bucket, describeSteps(bucketOp)), "") << bucket.name;
    // The planner shares memory: far below the naive sum.
    EXPECT_LT(bucket.arenaBytes * 10, bucket.naiveBytes) << bucket.name;
    // In-place reuse fires on the real graph, at least once per layer (the
    // query rope writes over the query), so the legal exception above is
    // exercised.
    EXPECT_GE(countInPlaceSteps(bucket), config.numLayers) << bucket.name;
  }
}

INSTANTIATE_TEST_SUITE_P(RealConfigs, ArenaCheck,
                         ::testing::Values(Case{"v4-flash", true}, Case{"v4-flash", false},
                                           Case{"v4-pro", true}));

v4rt::ArgRef arena(uint64_t offset, std::vector<int64_t> shape = {4, 4}) {
  v4rt::ArgRef arg;
  arg.kind = v4rt::ArgKind::Arena;
  arg.offset = offset;
  arg.shape = std::move(shape);
  return arg;
}

// The checker itself must catch an overlap: move one buffer onto another.
TEST(ArenaCheck, DetectsAnOverwrittenInput) {
  v4rt::Bucket bucket;
  bucket.arenaBytes = 1024;
  v4rt::Step a, b, c;
  a.outs = {arena(0)};
  b.outs = {arena(32)}; // overlaps [0, 64)
  c.ins = {arena(0)};
  bucket.steps = {a, b, c};
  // Values: a writes 1, b writes 2, c reads 1.
  std::vector<StepValues> values = {{{}, {1}}, {{}, {2}}, {{1}, {}}};
  EXPECT_NE(checkBucket(bucket, values), "");
  bucket.steps[1].outs = {arena(64)};
  EXPECT_EQ(checkBucket(bucket, values), "");
}

// a writes x; b writes y over x in place; c reads y. Legal only for a kernel
// with the in-place property and exactly x's bytes, shape and type.
TEST(ArenaCheck, AcceptsOnlyALegalInPlaceStep) {
  v4rt::Bucket bucket;
  bucket.arenaBytes = 1024;
  v4rt::Step a, b, c;
  a.outs = {arena(0)};
  b.ins = {arena(0)};
  b.outs = {arena(0)};
  c.ins = {arena(0)};
  bucket.steps = {a, b, c};
  std::vector<StepValues> values = {{{}, {1}}, {{1}, {2}, true}, {{2}, {}}};
  EXPECT_EQ(checkBucket(bucket, values), "");

  values[1].inPlaceElementwise = false; // e.g. a linear: it reads x after writing y
  EXPECT_NE(checkBucket(bucket, values), "");
  values[1].inPlaceElementwise = true;

  bucket.steps[1].outs = {arena(32, {4, 4})}; // a shifted window of x
  bucket.steps[2].ins = {arena(32, {4, 4})};
  EXPECT_NE(checkBucket(bucket, values), "");

  bucket.steps[1].outs = {arena(0, {2, 8})}; // same bytes, other shape
  bucket.steps[2].ins = {arena(0, {2, 8})};
  EXPECT_NE(checkBucket(bucket, values), "");
}

// After an in-place step, its input is gone: reading it again is a violation.
TEST(ArenaCheck, DetectsAReadOfAnInputWrittenOverInPlace) {
  v4rt::Bucket bucket;
  bucket.arenaBytes = 1024;
  v4rt::Step a, b, c;
  a.outs = {arena(0)};
  b.ins = {arena(0)};
  b.outs = {arena(0)};
  c.ins = {arena(0), arena(0)}; // reads x (value 1) and y (value 2)
  bucket.steps = {a, b, c};
  std::vector<StepValues> values = {{{}, {1}}, {{1}, {2}, true}, {{1, 2}, {}}};
  EXPECT_NE(checkBucket(bucket, values).find("overwrites the input of step 2"), std::string::npos)
      << checkBucket(bucket, values);
}

} // namespace
