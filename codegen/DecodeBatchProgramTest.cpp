// Batched decode buckets of the conformance models through the default
// pipeline and programFromPlan: a decode_4 bucket is decode_1 with 4 rows,
// laid out so the runtime can split every cache step by row.
#include "codegen/ProgramFromPlan.h"

#include "models/ModelBuilder.h"
#include "models/config/ModelConfig.h"
#include "passes/Pipeline.h"

#include "mlir/Pass/PassManager.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace {

const v4rt::Bucket &bucketNamed(const v4rt::Program &program, const std::string &name) {
  for (const v4rt::Bucket &bucket : program.buckets)
    if (bucket.name == name)
      return bucket;
  throw std::runtime_error("no bucket " + name);
}

class DecodeBatchProgramTest : public ::testing::TestWithParam<std::string> {};

TEST_P(DecodeBatchProgramTest, DecodeFourIsDecodeOneWithFourRows) {
  v4c::ModelConfig config =
      v4c::ModelConfig::fromFile(std::string(V4_CONFORMANCE_DIR) + "/" + GetParam() + "/config.json");
  mlir::MLIRContext context;
  v4c::loadModelDialects(context);
  mlir::OwningOpRef<mlir::ModuleOp> module = v4c::buildModel(context, config);
  ASSERT_TRUE(module);
  mlir::PassManager pm(&context);
  v4c::PipelineOptions options;
  options.buckets = "prefill:8,decode:1,decode:4";
  v4c::buildDefaultPipeline(pm, options);
  ASSERT_TRUE(mlir::succeeded(pm.run(*module)));
  const v4rt::Program program = v4c::programFromPlan(*module, "cpu");

  const v4rt::Bucket &one = bucketNamed(program, "decode_1"), &four = bucketNamed(program, "decode_4");
  EXPECT_EQ(four.kind, v4rt::BucketKind::Decode);
  EXPECT_EQ(four.batch, 4);
  EXPECT_EQ(four.tokens, 4);
  EXPECT_GT(four.arenaBytes, one.arenaBytes);
  // The same launches in the same order (the rope-append fusion fires in
  // both), with the same weights and caches.
  ASSERT_EQ(four.steps.size(), one.steps.size());
  int64_t cacheSteps = 0, fusedRopeAppends = 0;
  for (size_t i = 0; i < one.steps.size(); ++i) {
    const v4rt::Step &a = one.steps[i], &b = four.steps[i];
    ASSERT_EQ(a.kernel, b.kernel) << "step " << i;
    ASSERT_EQ(a.ins.size(), b.ins.size()) << "step " << i;
    ASSERT_EQ(a.outs.size(), b.outs.size()) << "step " << i;
    fusedRopeAppends += program.kernels[b.kernel].name == "v4.rope_cache_append";
    bool readsCache = false;
    for (const auto &[refsOne, refsFour] : {std::pair{&a.ins, &b.ins}, std::pair{&a.outs, &b.outs}})
      for (size_t k = 0; k < refsOne->size(); ++k) {
        const v4rt::ArgRef &x = (*refsOne)[k], &y = (*refsFour)[k];
        ASSERT_EQ(x.kind, y.kind) << "step " << i;
        readsCache = readsCache || y.kind == v4rt::ArgKind::Cache;
        if (y.kind == v4rt::ArgKind::Weight || y.kind == v4rt::ArgKind::Cache) {
          EXPECT_EQ(x.index, y.index) << "step " << i;
          EXPECT_EQ(x.shape, y.shape) << "step " << i;
          continue;
        }
        // Token-major: 4 rows of decode_1's row, so row r of an operand is
        // the bytes [r, r + 1) x byteSize / 4 (what the runtime hands a row).
        ASSERT_EQ(y.shape.size(), x.shape.size()) << "step " << i;
        EXPECT_EQ(x.shape.at(0), 1) << "step " << i;
        EXPECT_EQ(y.shape.at(0), 4) << "step " << i;
        EXPECT_TRUE(std::equal(x.shape.begin() + 1, x.shape.end(), y.shape.begin() + 1)) << "step " << i;
        EXPECT_EQ(y.byteSize(), 4 * x.byteSize()) << "step " << i;
        if (y.kind == v4rt::ArgKind::Arena)
          EXPECT_LE(y.offset + y.byteSize(), four.arenaBytes) << "step " << i;
      }
    cacheSteps += readsCache;
  }
  EXPECT_GT(cacheSteps, config.numLayers); // attention + window append at least, per layer
  EXPECT_EQ(fusedRopeAppends, config.numLayers);
}

INSTANTIATE_TEST_SUITE_P(Conformance, DecodeBatchProgramTest,
                         ::testing::Values("tiny-mixed", "tiny-real-rates", "tiny-yarn"),
                         [](const auto &info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

} // namespace
