// The CPU kernel adapters' own guards: a step shape the program checks did
// not vouch for is a v4c::Error (never std::out_of_range), and the runtime
// data that indexes tables (token ids, expert ids) is range-checked per call.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/Error.h"
#include "runtime/cpu/CpuKernels.h"

namespace v4rt {
namespace {

ArgRef tensor(DType dtype, std::vector<int64_t> shape) { return ArgRef{ArgKind::Arena, 0, 0, dtype, std::move(shape)}; }

// Runs CPU kernel `name` on one step and returns its error message ("ran" when none).
std::string runKernel(const std::string &name, const Step &step, int64_t tokens, std::vector<void *> ins,
                      std::vector<void *> outs) {
  std::vector<std::vector<float>> floatAttrs;
  for (const Attr &attr : step.attrs)
    floatAttrs.emplace_back(attr.floats.begin(), attr.floats.end());
  KernelArgs args(step, floatAttrs);
  args.tokens = tokens;
  args.ins = std::move(ins);
  args.outs = std::move(outs);
  CpuKernelFn kernel = findCpuKernel(name);
  if (!kernel)
    return "no kernel " + name;
  try {
    kernel(args);
  } catch (const v4c::Error &error) {
    return error.what();
  }
  return "ran";
}

TEST(KernelArgs, MissingDimensionIsAnError) {
  Step step;
  step.ins = {tensor(DType::F32, {4})};
  std::vector<std::vector<float>> none;
  KernelArgs args(step, none);
  EXPECT_EQ(args.inDim(0, 0), 4);
  try {
    args.inDim(0, 1);
    ADD_FAILURE() << "inDim past the rank returned";
  } catch (const v4c::Error &error) {
    EXPECT_STREQ(error.what(), "kernel step operand 0 has rank 1, no dimension 1");
  }
  try {
    args.outDim(0, 0);
    ADD_FAILURE() << "outDim of a missing result returned";
  } catch (const v4c::Error &error) {
    EXPECT_STREQ(error.what(), "kernel step has no result 0 (it has 0)");
  }
}

TEST(KernelArgs, EmbedRefusesAnIdPastTheTable) {
  Step step;
  step.ins = {tensor(DType::I32, {2}), tensor(DType::F32, {3, 2})};
  step.outs = {tensor(DType::F32, {2, 2})};
  std::vector<int32_t> ids = {1, 2};
  std::vector<float> table = {0, 1, 2, 3, 4, 5}, out(4);
  EXPECT_EQ(runKernel("v4.embed", step, 2, {ids.data(), table.data()}, {out.data()}), "ran");
  EXPECT_EQ(out, (std::vector<float>{2, 3, 4, 5}));
  ids[1] = 3;
  EXPECT_EQ(runKernel("v4.embed", step, 2, {ids.data(), table.data()}, {out.data()}),
            "token id 3 is out of range for the embedding table (3 rows)");
  ids[1] = -1;
  EXPECT_EQ(runKernel("v4.embed", step, 2, {ids.data(), table.data()}, {out.data()}),
            "token id -1 is out of range for the embedding table (3 rows)");
}

TEST(KernelArgs, MoeRefusesAnExpertIdPastTheExperts) {
  // h [1, 2], weights [1, 1], experts [1, 1], gate_up [2 experts, 2 I = 2, 2], down [2, 2, 1].
  Step step;
  step.ins = {tensor(DType::F32, {1, 2}), tensor(DType::F32, {1, 1}), tensor(DType::I32, {1, 1}),
              tensor(DType::F32, {2, 2, 2}), tensor(DType::F32, {2, 2, 1})};
  step.outs = {tensor(DType::F32, {1, 2})};
  step.attrs = {{"swiglu_limit", {}, {10.0}, ""}};
  std::vector<float> h = {1, 1}, weights = {1}, gateUp(8, 0.5f), down(4, 1.0f), out(2);
  std::vector<int32_t> experts = {1};
  EXPECT_EQ(runKernel("v4.moe", step, 1, {h.data(), weights.data(), experts.data(), gateUp.data(), down.data()},
                      {out.data()}),
            "ran");
  experts[0] = 2;
  EXPECT_EQ(runKernel("v4.moe", step, 1, {h.data(), weights.data(), experts.data(), gateUp.data(), down.data()},
                      {out.data()}),
            "expert id 2 is out of range (the MoE has 2 experts)");
}

} // namespace
} // namespace v4rt
