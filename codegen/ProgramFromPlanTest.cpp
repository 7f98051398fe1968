// A small v4 model through the default pipeline, then programFromPlan.
#include "codegen/ProgramFromPlan.h"

#include "common/Error.h"
#include "dialects/plan/PlanDialect.h"
#include "dialects/v4/V4Dialect.h"
#include "passes/Pipeline.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"

#include <gtest/gtest.h>

using namespace mlir;

namespace {

constexpr const char *kModel = R"mlir(
v4.global @"model.embed.weight" : tensor<16x8xf32>
v4.global @"model.sinks" : tensor<1xf32>
v4.global @"model.norm.weight" : tensor<8xf32>
func.func @forward(%ids: tensor<?xi32>, %pos: tensor<?xi32>,
                   %win: !v4.cache<window, rows = 4, width = 8, f32> {v4.cache_name = "layers.0.window", v4.layer = 0 : i64})
    -> (tensor<?x16xf32>, !v4.cache<window, rows = 4, width = 8, f32>) {
  %table = v4.weight @"model.embed.weight" : tensor<16x8xf32>
  %x = v4.embed %ids, %table : (tensor<?xi32>, tensor<16x8xf32>) -> tensor<?x8xf32>
  %sinks = v4.weight @"model.sinks" : tensor<1xf32>
  %att = v4.attention %x, %x, %sinks, %pos, %win
      {head_dim = 8 : i64, num_heads = 1 : i64, rate = 0 : i64, scale = 0.5 : f64, window = 4 : i64}
      : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<1xf32>, tensor<?xi32>, !v4.cache<window, rows = 4, width = 8, f32>)
      -> tensor<?x8xf32>
  %win2 = v4.cache_append %win, %x, %pos
      : (!v4.cache<window, rows = 4, width = 8, f32>, tensor<?x8xf32>, tensor<?xi32>) -> !v4.cache<window, rows = 4, width = 8, f32>
  %norm = v4.weight @"model.norm.weight" : tensor<8xf32>
  %h = v4.rms_norm %att, %norm {eps = 0.25 : f64, group = 8 : i64} : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
  %r = v4.add %h, %x : (tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
  %logits = v4.linear %r, %table : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
  return %logits, %win2 : tensor<?x16xf32>, !v4.cache<window, rows = 4, width = 8, f32>
}
)mlir";

class ProgramFromPlanTest : public ::testing::Test {
protected:
  ProgramFromPlanTest() {
    context.loadDialect<v4c::v4::V4Dialect, v4c::plan::PlanDialect, func::FuncDialect>();
  }

  OwningOpRef<ModuleOp> parse(const char *source) {
    OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(source, &context);
    EXPECT_TRUE(module);
    return module;
  }

  OwningOpRef<ModuleOp> compile(const std::string &buckets) {
    OwningOpRef<ModuleOp> module = parse(kModel);
    PassManager pm(&context);
    v4c::PipelineOptions options;
    options.buckets = buckets;
    v4c::buildDefaultPipeline(pm, options);
    EXPECT_TRUE(succeeded(pm.run(*module)));
    return module;
  }

  static const v4rt::Attr *findAttr(const v4rt::Step &step, const std::string &name) {
    for (const v4rt::Attr &attr : step.attrs)
      if (attr.name == name)
        return &attr;
    return nullptr;
  }

  MLIRContext context;
};

TEST_F(ProgramFromPlanTest, TablesAndBuckets) {
  OwningOpRef<ModuleOp> module = compile("prefill:4,decode:2");
  v4rt::Program program = v4c::programFromPlan(*module, "cpu");
  EXPECT_EQ(program.target, "cpu");

  ASSERT_EQ(program.weights.size(), 3u);
  EXPECT_EQ(program.weights[0].name, "model.embed.weight");
  EXPECT_EQ(program.weights[0].shape, (std::vector<int64_t>{16, 8}));
  EXPECT_EQ(program.weights[0].dtype, v4rt::DType::F32);
  EXPECT_EQ(program.weights[1].name, "model.sinks");
  EXPECT_EQ(program.weights[2].name, "model.norm.weight");
  EXPECT_EQ(program.weights[2].data, nullptr);

  ASSERT_EQ(program.caches.size(), 1u);
  EXPECT_EQ(program.caches[0].name, "layers.0.window");
  EXPECT_EQ(program.caches[0].kind, v4rt::CacheKind::Window);
  EXPECT_EQ(program.caches[0].rows, 4);
  EXPECT_EQ(program.caches[0].width, 8);
  EXPECT_EQ(program.caches[0].rate, 0);
  EXPECT_EQ(program.caches[0].layer, 0);

  ASSERT_EQ(program.inputs.size(), 2u);
  EXPECT_EQ(program.inputs[0].name, "ids");
  EXPECT_EQ(program.inputs[1].name, "positions");
  ASSERT_EQ(program.outputs.size(), 1u);
  EXPECT_EQ(program.outputs[0].name, "logits");
  EXPECT_EQ(program.outputs[0].width, 16);

  std::vector<std::string> kernels;
  for (const v4rt::Kernel &kernel : program.kernels)
    kernels.push_back(kernel.name);
  EXPECT_EQ(kernels, (std::vector<std::string>{"v4.embed", "v4.attention", "v4.cache_append", "v4.rms_norm",
                                               "v4.add", "v4.linear"}));

  ASSERT_EQ(program.buckets.size(), 2u);
  const v4rt::Bucket &prefill = program.buckets[0];
  EXPECT_EQ(prefill.name, "prefill_4");
  EXPECT_EQ(prefill.kind, v4rt::BucketKind::Prefill);
  EXPECT_EQ(prefill.tokens, 4);
  EXPECT_EQ(prefill.batch, 1);
  // x (128 B) lives to the add; att, h and r are 128 B each: att dies at the
  // norm that writes h, h at the add that writes r, and both write in place
  // (V4_InPlaceElementwise), so att, h and r share one range.
  EXPECT_EQ(prefill.naiveBytes, 4u * 128u);
  EXPECT_EQ(prefill.arenaBytes, 2u * 128u);
  ASSERT_EQ(prefill.steps.size(), 6u);

  const v4rt::Step &embed = prefill.steps[0];
  EXPECT_EQ(embed.kernel, 0u);
  ASSERT_EQ(embed.ins.size(), 2u);
  EXPECT_EQ(embed.ins[0].kind, v4rt::ArgKind::Input);
  EXPECT_EQ(embed.ins[0].index, 0u);
  EXPECT_EQ(embed.ins[0].dtype, v4rt::DType::I32);
  EXPECT_EQ(embed.ins[0].shape, (std::vector<int64_t>{4}));
  EXPECT_EQ(embed.ins[1].kind, v4rt::ArgKind::Weight);
  EXPECT_EQ(embed.ins[1].index, 0u);
  ASSERT_EQ(embed.outs.size(), 1u);
  EXPECT_EQ(embed.outs[0].kind, v4rt::ArgKind::Arena);
  EXPECT_EQ(embed.outs[0].shape, (std::vector<int64_t>{4, 8}));
  EXPECT_EQ(embed.outs[0].offset % 64, 0u);

  const v4rt::Step &attention = prefill.steps[1];
  ASSERT_EQ(attention.ins.size(), 5u);
  EXPECT_EQ(attention.ins[1].offset, embed.outs[0].offset);
  EXPECT_EQ(attention.ins[2].kind, v4rt::ArgKind::Weight);
  EXPECT_EQ(attention.ins[2].index, 1u);
  EXPECT_EQ(attention.ins[3].kind, v4rt::ArgKind::Input);
  EXPECT_EQ(attention.ins[3].index, 1u);
  EXPECT_EQ(attention.ins[4].kind, v4rt::ArgKind::Cache);
  EXPECT_EQ(attention.ins[4].index, 0u);
  EXPECT_EQ(attention.ins[4].shape, (std::vector<int64_t>{4, 8}));
  const v4rt::Attr *heads = findAttr(attention, "num_heads");
  ASSERT_NE(heads, nullptr);
  EXPECT_EQ(heads->ints, (std::vector<int64_t>{1}));
  const v4rt::Attr *scale = findAttr(attention, "scale");
  ASSERT_NE(scale, nullptr);
  EXPECT_EQ(scale->floats, (std::vector<double>{0.5}));
  const v4rt::Attr *segments = findAttr(attention, "operandSegmentSizes");
  ASSERT_NE(segments, nullptr);
  EXPECT_EQ(segments->ints, (std::vector<int64_t>{1, 1, 1, 1, 1, 0, 0}));

  const v4rt::Step &append = prefill.steps[2];
  ASSERT_EQ(append.outs.size(), 1u);
  EXPECT_EQ(append.outs[0].kind, v4rt::ArgKind::Cache);
  EXPECT_EQ(append.outs[0].index, 0u);

  const v4rt::Step &linear = prefill.steps[5];
  EXPECT_EQ(linear.kernel, 5u);
  ASSERT_EQ(linear.outs.size(), 1u);
  EXPECT_EQ(linear.outs[0].kind, v4rt::ArgKind::Output);
  EXPECT_EQ(linear.outs[0].index, 0u);
  EXPECT_EQ(linear.outs[0].shape, (std::vector<int64_t>{4, 16}));

  const v4rt::Bucket &decode = program.buckets[1];
  EXPECT_EQ(decode.name, "decode_2");
  EXPECT_EQ(decode.kind, v4rt::BucketKind::Decode);
  EXPECT_EQ(decode.tokens, 2);
  EXPECT_EQ(decode.batch, 2);
  ASSERT_EQ(decode.steps.size(), 6u);
  EXPECT_EQ(decode.steps[5].outs[0].shape, (std::vector<int64_t>{2, 16}));
  // Kernels are shared across buckets.
  EXPECT_EQ(decode.steps[0].kernel, 0u);
  EXPECT_EQ(program.kernels.size(), 6u);
}

TEST_F(ProgramFromPlanTest, ParamKinds) {
  OwningOpRef<ModuleOp> module = parse(R"mlir(
    plan.bucket @prefill_1 attributes {kind = "prefill", tokens = 1 : i64, batch = 1 : i64,
                                       arena_bytes = 64 : i64, naive_bytes = 64 : i64} {
      %a = plan.alloc offset 0 : !plan.buffer<1x8xf32>
      plan.launch "k"() -> (%a : !plan.buffer<1x8xf32>)
          {params = {flag = true, n = 3 : i32, x = 1.5 : f32, f = array<f32: 0.5, 2.0>, d = array<f64: 0.25>,
                     i = array<i64: 4, 5>, s = "swa"}}
    }
  )mlir");
  v4rt::Program program = v4c::programFromPlan(*module, "sm_90a");
  ASSERT_EQ(program.buckets.size(), 1u);
  const v4rt::Step &step = program.buckets[0].steps.at(0);
  EXPECT_EQ(findAttr(step, "flag")->ints, (std::vector<int64_t>{1}));
  EXPECT_EQ(findAttr(step, "n")->ints, (std::vector<int64_t>{3}));
  EXPECT_EQ(findAttr(step, "x")->floats, (std::vector<double>{1.5}));
  EXPECT_EQ(findAttr(step, "f")->floats, (std::vector<double>{0.5, 2.0}));
  EXPECT_EQ(findAttr(step, "d")->floats, (std::vector<double>{0.25}));
  EXPECT_EQ(findAttr(step, "i")->ints, (std::vector<int64_t>{4, 5}));
  EXPECT_EQ(findAttr(step, "s")->str, "swa");
  EXPECT_TRUE(program.outputs.empty());
}

std::string errorOf(ModuleOp module) {
  try {
    v4c::programFromPlan(module, "cpu");
  } catch (const v4c::Error &error) {
    return error.what();
  }
  return "";
}

TEST_F(ProgramFromPlanTest, NestedDictionaryParamIsAnError) {
  OwningOpRef<ModuleOp> module = parse(R"mlir(
    plan.bucket @prefill_1 attributes {kind = "prefill", tokens = 1 : i64, batch = 1 : i64,
                                       arena_bytes = 64 : i64, naive_bytes = 64 : i64} {
      %a = plan.alloc offset 0 : !plan.buffer<1x8xf32>
      plan.launch "k"() -> (%a : !plan.buffer<1x8xf32>) {params = {nested = {x = 1 : i64}}}
    }
  )mlir");
  std::string message = errorOf(*module);
  EXPECT_NE(message.find("parameter 'nested' of an unsupported kind"), std::string::npos) << message;
  EXPECT_NE(message.find(":5:"), std::string::npos) << "location of the launch: " << message;
}

TEST_F(ProgramFromPlanTest, UnplannedModuleIsAnError) {
  OwningOpRef<ModuleOp> module = parse(R"mlir(
    plan.bucket @prefill_1 attributes {kind = "prefill", tokens = 1 : i64, batch = 1 : i64} {
      %a = plan.alloc : !plan.buffer<1x8xf32>
      plan.launch "k"() -> (%a : !plan.buffer<1x8xf32>) {params = {}}
    }
  )mlir");
  EXPECT_NE(errorOf(*module).find("run v4-plan-memory before building the program"), std::string::npos);

  OwningOpRef<ModuleOp> empty = parse("v4.global @w : tensor<2xf32>");
  EXPECT_NE(errorOf(*empty).find("the module has no plan.bucket"), std::string::npos);
}

TEST_F(ProgramFromPlanTest, UnstorableDtypeIsAnError) {
  OwningOpRef<ModuleOp> module = parse(R"mlir(
    plan.bucket @prefill_1 attributes {kind = "prefill", tokens = 1 : i64, batch = 1 : i64,
                                       arena_bytes = 64 : i64, naive_bytes = 64 : i64} {
      %a = plan.alloc offset 0 : !plan.buffer<1x8xf64>
      plan.launch "k"() -> (%a : !plan.buffer<1x8xf64>) {params = {}}
    }
  )mlir");
  EXPECT_NE(errorOf(*module).find("has element type f64, which the runtime cannot store"), std::string::npos);
}

} // namespace
