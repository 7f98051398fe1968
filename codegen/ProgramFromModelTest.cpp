// The model builder's real graphs (the conformance configs) through the
// default pipeline and programFromPlan.
#include "codegen/ProgramFromPlan.h"

#include "models/ModelBuilder.h"
#include "models/config/ModelConfig.h"
#include "passes/Pipeline.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/PassManager.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>

namespace {

class ProgramFromModelTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ProgramFromModelTest, EveryStepIsPlanned) {
  v4c::ModelConfig config =
      v4c::ModelConfig::fromFile(std::string(V4_CONFORMANCE_DIR) + "/" + GetParam() + "/config.json");
  mlir::MLIRContext context;
  v4c::loadModelDialects(context);
  mlir::OwningOpRef<mlir::ModuleOp> module = v4c::buildModel(context, config);
  ASSERT_TRUE(module);
  auto forward = module->lookupSymbol<mlir::func::FuncOp>("forward");
  ASSERT_TRUE(forward);
  size_t cacheArguments = forward.getNumArguments() - 2;
  size_t globals = 0;
  for (mlir::Operation &op : module->getBody()->getOperations())
    globals += op.getName().getStringRef() == "v4.global";

  mlir::PassManager pm(&context);
  v4c::PipelineOptions options;
  options.buckets = "prefill:8,decode:2";
  v4c::buildDefaultPipeline(pm, options);
  ASSERT_TRUE(mlir::succeeded(pm.run(*module)));
  v4rt::Program program = v4c::programFromPlan(*module, "cpu");

  EXPECT_EQ(program.weights.size(), globals);
  EXPECT_EQ(program.caches.size(), cacheArguments);
  ASSERT_EQ(program.outputs.size(), 1u);
  EXPECT_EQ(program.outputs[0].width, config.vocabSize);
  ASSERT_EQ(program.buckets.size(), 2u);
  for (const v4rt::Bucket &bucket : program.buckets) {
    // Every layer is at least mHC pre/post twice, norms, projections, attention and MoE.
    EXPECT_GE(bucket.steps.size(), static_cast<size_t>(10 * config.numLayers)) << bucket.name;
    std::printf("%s/%s: %zu steps, arena %llu of naive %llu bytes\n", GetParam().c_str(), bucket.name.c_str(),
                bucket.steps.size(), static_cast<unsigned long long>(bucket.arenaBytes),
                static_cast<unsigned long long>(bucket.naiveBytes));
    EXPECT_LE(bucket.arenaBytes, bucket.naiveBytes) << bucket.name;
    EXPECT_GT(bucket.arenaBytes, 0u) << bucket.name;
    EXPECT_EQ(bucket.steps.back().outs.at(0).kind, v4rt::ArgKind::Output) << bucket.name;
    for (const v4rt::Step &step : bucket.steps) {
      EXPECT_EQ(program.kernels.at(step.kernel).name.rfind("v4.", 0), 0u);
      for (const auto *refs : {&step.ins, &step.outs})
        for (const v4rt::ArgRef &ref : *refs) {
          if (ref.kind != v4rt::ArgKind::Arena)
            continue;
          const uint64_t bytes = ref.byteSize();
          EXPECT_EQ(ref.offset % 64, 0u);
          EXPECT_LE(ref.offset + bytes, bucket.arenaBytes) << bucket.name;
          EXPECT_EQ(ref.shape.at(0), bucket.tokens) << "activations are token-major";
        }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Conformance, ProgramFromModelTest,
                         ::testing::Values("tiny-mixed", "tiny-real-rates", "tiny-yarn"),
                         [](const auto &info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

} // namespace
