// The CPU kernels of the ops marked V4_InPlaceElementwise are correct when
// v4-plan-memory writes their result over an input: each runs once with a
// private output and once with the output on the bytes of each eligible
// input (same shape and type as the result), and the two must agree bit for
// bit. Every marked op of the dialect must have a case here.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "mlir/IR/MLIRContext.h"

#include "dialects/v4/V4Dialect.h"
#include "dialects/v4/V4Ops.h"
#include "runtime/cpu/CpuKernels.h"

namespace {

using v4rt::Attr;

enum class Storage { F32, I32, Cache };

struct ArgSpec {
  Storage storage = Storage::F32;
  std::vector<int64_t> shape; // Cache: {rows, width}
};

struct KernelCase {
  std::string kernel;
  int64_t tokens = 0;
  std::vector<ArgSpec> ins;
  std::vector<ArgSpec> outs; // a Cache out is the cache in of the same shape, updated in place
  std::vector<Attr> attrs;
};

ArgSpec f32(std::vector<int64_t> shape) { return {Storage::F32, std::move(shape)}; }
ArgSpec i32(std::vector<int64_t> shape) { return {Storage::I32, std::move(shape)}; }
ArgSpec cache(int64_t rows, int64_t width) { return {Storage::Cache, {rows, width}}; }
Attr intAttr(const char *name, int64_t value) { return {name, {value}, {}, ""}; }
Attr floatAttr(const char *name, std::vector<double> values) { return {name, {}, std::move(values), ""}; }

int64_t elements(const std::vector<int64_t> &shape) {
  int64_t count = 1;
  for (int64_t dim : shape)
    count *= dim;
  return count;
}

std::vector<Attr> ropeAttrs(int64_t headDim, int64_t ropeDim, bool inverse) {
  std::vector<double> invFreq;
  for (int64_t i = 0; i < ropeDim / 2; ++i)
    invFreq.push_back(1.0 / (1 + 3 * i));
  return {intAttr("head_dim", headDim), intAttr("rope_dim", ropeDim), floatAttr("inv_freq", invFreq),
          floatAttr("scaling", {1.25}), intAttr("inverse", inverse ? 1 : 0)};
}

// One case per marked op and variant (optional operands, attribute modes).
std::vector<KernelCase> cases() {
  const int64_t T = 5;
  return {
      {"v4.add", T, {f32({T, 24}), f32({T, 24})}, {f32({T, 24})}, {}},
      // limit 1.5 with values of scale 2: both clamps fire on many elements.
      {"v4.swiglu", T, {f32({T, 24}), f32({T, 24})}, {f32({T, 24})}, {floatAttr("limit", {1.5})}},
      {"v4.rms_norm", T, {f32({T, 32})}, {f32({T, 32})}, {intAttr("group", 16), floatAttr("eps", {1e-6})}},
      {"v4.rms_norm", T, {f32({T, 32}), f32({16})}, {f32({T, 32})}, {intAttr("group", 16), floatAttr("eps", {1e-6})}},
      {"v4.rope", T, {f32({T, 32}), i32({T})}, {f32({T, 32})}, ropeAttrs(16, 8, false)},
      {"v4.rope", T, {f32({T, 32}), i32({T})}, {f32({T, 32})}, ropeAttrs(16, 8, true)},
      {"v4.rope_cache_append", 1, {cache(8, 16), f32({1, 16}), i32({1})}, {f32({1, 16}), cache(8, 16)},
       ropeAttrs(16, 8, false)},
  };
}

// What a run leaves behind: every output's bytes (caches: their rows).
using Results = std::vector<std::vector<float>>;

// Runs the registered CPU kernel of `c` on fixed pseudo-random inputs; with
// `aliasedInput`, outs[0] is written into that input's storage.
Results run(const KernelCase &c, std::optional<size_t> aliasedInput) {
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  v4rt::Step step;
  std::vector<std::vector<float>> floats(c.ins.size());
  std::vector<std::vector<int32_t>> ints(c.ins.size());
  std::vector<v4rt::CacheBuffer> caches(c.ins.size());
  std::vector<void *> ins;
  for (size_t i = 0; i < c.ins.size(); ++i) {
    const ArgSpec &spec = c.ins[i];
    step.ins.push_back(v4rt::ArgRef{v4rt::ArgKind::Arena, 0, 0,
                                    spec.storage == Storage::I32 ? v4rt::DType::I32 : v4rt::DType::F32,
                                    spec.shape});
    if (spec.storage == Storage::F32) {
      floats[i].resize(elements(spec.shape));
      for (float &value : floats[i])
        value = normal(rng);
      ins.push_back(floats[i].data());
    } else if (spec.storage == Storage::I32) {
      for (int64_t t = 0; t < elements(spec.shape); ++t)
        ints[i].push_back(static_cast<int32_t>(7 + 3 * t)); // positions
      ins.push_back(ints[i].data());
    } else {
      step.ins.back().kind = v4rt::ArgKind::Cache;
      caches[i].width = spec.shape[1];
      caches[i].resizeRows(spec.shape[0]);
      for (int64_t r = 0; r < spec.shape[0]; ++r)
        for (int64_t w = 0; w < spec.shape[1]; ++w)
          caches[i].row(r)[w] = normal(rng);
      ins.push_back(&caches[i]);
    }
  }

  std::vector<std::vector<float>> privateOuts(c.outs.size());
  std::vector<void *> outs;
  for (size_t o = 0; o < c.outs.size(); ++o) {
    const ArgSpec &spec = c.outs[o];
    step.outs.push_back(v4rt::ArgRef{v4rt::ArgKind::Arena, 0, 0, v4rt::DType::F32, spec.shape});
    if (spec.storage == Storage::Cache) { // the cache operand of the same shape
      step.outs.back().kind = v4rt::ArgKind::Cache;
      size_t in = 0;
      while (c.ins[in].storage != Storage::Cache || c.ins[in].shape != spec.shape)
        ++in;
      outs.push_back(&caches[in]);
    } else if (o == 0 && aliasedInput) {
      outs.push_back(floats[*aliasedInput].data());
    } else {
      privateOuts[o].assign(elements(spec.shape), -1.0f);
      outs.push_back(privateOuts[o].data());
    }
  }

  step.attrs = c.attrs;
  std::vector<std::vector<float>> floatAttrs;
  for (const Attr &attr : c.attrs)
    floatAttrs.emplace_back(attr.floats.begin(), attr.floats.end());
  v4rt::KernelArgs args(step, floatAttrs);
  args.tokens = c.tokens;
  args.ins = ins;
  args.outs = outs;
  v4rt::CpuKernelFn kernel = v4rt::findCpuKernel(c.kernel);
  EXPECT_NE(kernel, nullptr) << "no CPU kernel " << c.kernel;
  if (!kernel)
    return {};
  kernel(args);

  Results results;
  for (size_t o = 0; o < c.outs.size(); ++o) {
    if (c.outs[o].storage == Storage::Cache) {
      const auto *buffer = static_cast<const v4rt::CacheBuffer *>(outs[o]);
      std::vector<float> rows;
      for (int64_t r = 0; r < buffer->rows; ++r)
        rows.insert(rows.end(), buffer->row(r), buffer->row(r) + buffer->width);
      results.push_back(std::move(rows));
    } else {
      const float *data = static_cast<const float *>(outs[o]);
      results.emplace_back(data, data + elements(c.outs[o].shape));
    }
  }
  return results;
}

bool sameBits(const Results &a, const Results &b) {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].size() != b[i].size() || std::memcmp(a[i].data(), b[i].data(), a[i].size() * sizeof(float)) != 0)
      return false;
  return true;
}

// The inputs outs[0] may be written over: the same rule as
// v4::inPlaceOperands (same type as the result), on the runtime's view.
std::vector<size_t> eligibleInputs(const KernelCase &c) {
  std::vector<size_t> eligible;
  for (size_t i = 0; i < c.ins.size(); ++i)
    if (c.ins[i].storage == c.outs[0].storage && c.ins[i].shape == c.outs[0].shape)
      eligible.push_back(i);
  return eligible;
}

TEST(InPlaceKernels, AliasedOutputIsBitIdentical) {
  for (const KernelCase &c : cases()) {
    const Results expected = run(c, std::nullopt);
    ASSERT_FALSE(expected.empty()) << c.kernel;
    const std::vector<size_t> eligible = eligibleInputs(c);
    EXPECT_FALSE(eligible.empty()) << c.kernel << " has no input the result may overwrite";
    for (size_t input : eligible)
      EXPECT_TRUE(sameBits(run(c, input), expected)) << c.kernel << " with its result written over input #" << input;
  }
}

// The harness must see a kernel that is not row-local: v4.hc_post mixes the
// hc streams of a token, so writing stream 0 first corrupts what stream 1 reads.
TEST(InPlaceKernels, DetectsAKernelThatIsNotRowLocal) {
  const int64_t T = 3, hc = 4, D = 8;
  KernelCase hcPost{"v4.hc_post", T, {f32({T, hc * D}), f32({T, D}), f32({T, hc}), f32({T, hc * hc})},
                    {f32({T, hc * D})}, {intAttr("hc", hc)}};
  EXPECT_FALSE(sameBits(run(hcPost, 0), run(hcPost, std::nullopt)));
}

// The cases cover exactly the ops that carry the trait.
TEST(InPlaceKernels, EveryMarkedOpHasACase) {
  mlir::MLIRContext context;
  context.loadDialect<v4c::v4::V4Dialect>();
  std::set<std::string> marked, tested;
  for (mlir::RegisteredOperationName op : context.getRegisteredOperations())
    if (op.getDialectNamespace() == "v4" && op.hasTrait<v4c::v4::OpTrait::InPlaceElementwise>())
      marked.insert(op.getStringRef().str());
  for (const KernelCase &c : cases())
    tested.insert(c.kernel);
  EXPECT_EQ(marked, tested);
  EXPECT_EQ(marked.count("v4.add"), 1u);
  EXPECT_EQ(marked.count("v4.hc_post"), 0u);
}

} // namespace
