// An independent check of the memory planner on the real V4-Flash and V4-Pro
// graphs: replays every bucket's steps over the arena and proves that each
// value a step reads is still the bytes its producer wrote, i.e. no buffer
// live at the same time overlaps it. It knows nothing of the planner.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "mlir/Pass/PassManager.h"

#include "codegen/ProgramFromPlan.h"
#include "models/ModelBuilder.h"
#include "models/config/NamedConfigs.h"
#include "passes/Pipeline.h"

namespace {

struct Range {
  uint64_t begin, end;
  bool overlaps(const Range &other) const { return begin < other.end && other.begin < end; }
};

struct Write {
  Range range;
  size_t step;
};

// Returns the first violation, or "" when every read sees its producer's bytes.
std::string checkBucket(const v4rt::Bucket &bucket) {
  std::vector<Write> writes; // in step order
  for (size_t step = 0; step < bucket.steps.size(); ++step) {
    const v4rt::Step &s = bucket.steps[step];
    for (const v4rt::ArgRef &in : s.ins) {
      if (in.kind != v4rt::ArgKind::Arena)
        continue;
      const Range read{in.offset, in.offset + in.byteSize()};
      if (read.end > bucket.arenaBytes)
        return "step " + std::to_string(step) + " reads past the arena";
      // The producer is the latest write of exactly this range; nothing
      // written after it may touch the range.
      int64_t producer = -1;
      for (int64_t w = static_cast<int64_t>(writes.size()) - 1; w >= 0; --w)
        if (writes[w].range.begin == read.begin && writes[w].range.end == read.end) {
          producer = w;
          break;
        }
      if (producer < 0)
        return "step " + std::to_string(step) + " reads bytes no step wrote";
      for (size_t w = producer + 1; w < writes.size(); ++w)
        if (writes[w].range.overlaps(read))
          return "step " + std::to_string(writes[w].step) + " overwrites the input of step " +
                 std::to_string(step) + " (written by step " + std::to_string(writes[producer].step) + ")";
    }
    for (const v4rt::ArgRef &out : s.outs)
      if (out.kind == v4rt::ArgKind::Arena) {
        if (out.offset + out.byteSize() > bucket.arenaBytes)
          return "step " + std::to_string(step) + " writes past the arena";
        writes.push_back({{out.offset, out.offset + out.byteSize()}, step});
      }
  }
  return "";
}

struct Case {
  const char *model;
  bool fuse;
};

class ArenaCheck : public ::testing::TestWithParam<Case> {};

TEST_P(ArenaCheck, NoLiveBuffersOverlapInAnyBucket) {
  mlir::MLIRContext context;
  auto module = v4c::buildModel(context, v4c::namedConfig(GetParam().model));
  mlir::PassManager pm(&context);
  v4c::PipelineOptions options;
  options.buckets = "prefill:64,prefill:512,decode:1";
  options.fuse = GetParam().fuse;
  v4c::buildDefaultPipeline(pm, options);
  ASSERT_TRUE(mlir::succeeded(pm.run(*module)));
  const v4rt::Program program = v4c::programFromPlan(*module, "cpu");
  ASSERT_EQ(program.buckets.size(), 3u);
  for (const v4rt::Bucket &bucket : program.buckets) {
    EXPECT_GT(bucket.steps.size(), 900u);
    EXPECT_EQ(checkBucket(bucket), "") << bucket.name;
    // The planner shares memory: far below the naive sum.
    EXPECT_LT(bucket.arenaBytes * 10, bucket.naiveBytes) << bucket.name;
  }
}

INSTANTIATE_TEST_SUITE_P(RealConfigs, ArenaCheck,
                         ::testing::Values(Case{"v4-flash", true}, Case{"v4-flash", false},
                                           Case{"v4-pro", true}));

// The checker itself must catch an overlap: move one buffer onto another.
TEST(ArenaCheck, DetectsAnOverwrittenInput) {
  v4rt::Bucket bucket;
  bucket.arenaBytes = 1024;
  auto arena = [](uint64_t offset) {
    v4rt::ArgRef arg;
    arg.kind = v4rt::ArgKind::Arena;
    arg.offset = offset;
    arg.shape = {4, 4};
    return arg;
  };
  v4rt::Step a, b, c;
  a.outs = {arena(0)};
  b.outs = {arena(32)}; // overlaps [0, 64)
  b.ins = {};
  c.ins = {arena(0)};
  bucket.steps = {a, b, c};
  EXPECT_NE(checkBucket(bucket), "");
  bucket.steps[1].outs = {arena(64)};
  EXPECT_EQ(checkBucket(bucket), "");
}

} // namespace
