// The dense-family emitters on hand-built steps (tiny and V4-Flash shapes,
// T = 1, 8, 9, 37, 4096, f32 and bf16 with the precision pass's f32
// exceptions): launch geometry, entry names, error messages, and nvcc
// compiling every emitted entry for sm_90a and sm_80 (skipped, saying why,
// where nvcc is absent).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <unistd.h>

#include <gtest/gtest.h>

#include "codegen/cuda/CudaCodegen.h"
#include "codegen/cuda/KernelEmitter.h"
#include "common/Error.h"

namespace v4c::cuda {
namespace {

using v4rt::DType;

v4rt::ArgRef arg(DType dtype, std::vector<int64_t> shape, v4rt::ArgKind kind = v4rt::ArgKind::Arena) {
  v4rt::ArgRef ref;
  ref.kind = kind;
  ref.dtype = dtype;
  ref.shape = std::move(shape);
  return ref;
}
v4rt::ArgRef weight(DType dtype, std::vector<int64_t> shape) { return arg(dtype, std::move(shape), v4rt::ArgKind::Weight); }

v4rt::Attr intAttr(const std::string &name, std::vector<int64_t> values) {
  v4rt::Attr a;
  a.name = name;
  a.ints = std::move(values);
  return a;
}
v4rt::Attr floatAttr(const std::string &name, std::vector<double> values) {
  v4rt::Attr a;
  a.name = name;
  a.floats = std::move(values);
  return a;
}

// A program of one bucket per token count; steps are labelled for messages.
class ProgramBuilder {
public:
  ProgramBuilder() { program.target = "sm_90a"; }

  void add(const std::string &label, int64_t tokens, const std::string &op, std::vector<v4rt::ArgRef> ins,
           std::vector<v4rt::ArgRef> outs, std::vector<v4rt::Attr> attrs = {}) {
    v4rt::Step step;
    step.kernel = kernelIndex(op);
    step.ins = std::move(ins);
    step.outs = std::move(outs);
    step.attrs = std::move(attrs);
    v4rt::Bucket &b = bucket(tokens);
    b.steps.push_back(std::move(step));
    labels[{bucketIndex(tokens), b.steps.size() - 1}] = label;
  }

  v4rt::Program program;
  std::map<std::pair<size_t, size_t>, std::string> labels;

private:
  uint32_t kernelIndex(const std::string &op) {
    for (size_t i = 0; i < program.kernels.size(); ++i)
      if (program.kernels[i].name == op)
        return static_cast<uint32_t>(i);
    program.kernels.push_back({op, {}});
    return static_cast<uint32_t>(program.kernels.size() - 1);
  }
  size_t bucketIndex(int64_t tokens) {
    for (size_t i = 0; i < program.buckets.size(); ++i)
      if (program.buckets[i].tokens == tokens)
        return i;
    v4rt::Bucket b;
    b.name = "prefill_" + std::to_string(tokens);
    b.tokens = tokens;
    program.buckets.push_back(b);
    return program.buckets.size() - 1;
  }
  v4rt::Bucket &bucket(int64_t tokens) { return program.buckets[bucketIndex(tokens)]; }
};

// Model dimensions of one test configuration.
struct Dims {
  const char *name;
  int64_t D, hc, vocab, qLora, heads, headDim, ropeDim, oGroups, oLora, experts, topK, inter;
};
constexpr Dims kTiny{"tiny", 64, 4, 512, 32, 4, 32, 4, 2, 16, 8, 2, 48};
constexpr Dims kFlash{"flash", 4096, 4, 129280, 1024, 64, 512, 64, 8, 1024, 256, 6, 2048};

// Activation / weight dtype of a precision; `keep` args stay f32 under bf16
// (logits, router weights, mHC post/comb, as the precision pass keeps them).
struct Precision {
  const char *name;
  DType act;
};
constexpr Precision kF32{"f32", DType::F32};
constexpr Precision kBf16{"bf16", DType::BF16};

void addModelSteps(ProgramBuilder &b, const Dims &m, const Precision &p, int64_t T) {
  const DType a = p.act, f32 = DType::F32, i32 = DType::I32;
  const std::string tag = std::string(m.name) + "/" + p.name + "/T" + std::to_string(T) + "/";
  const int64_t hcD = m.hc * m.D, mixRows = (2 + m.hc) * m.hc, q = m.heads * m.headDim;
  std::vector<double> invFreq;
  for (int64_t i = 0; i < m.ropeDim / 2; ++i)
    invFreq.push_back(1.0 / std::pow(10000.0, 2.0 * i / m.ropeDim));
  const std::vector<v4rt::Attr> hcAttrs = {intAttr("hc", {m.hc}), floatAttr("norm_eps", {1e-6}),
                                           floatAttr("hc_eps", {1e-6}), intAttr("sinkhorn_iters", {20})};

  b.add(tag + "embed", T, "v4.embed", {arg(i32, {T}, v4rt::ArgKind::Input), weight(a, {m.vocab, m.D})}, {arg(a, {T, m.D})});
  b.add(tag + "hc_expand", T, "v4.hc_expand", {arg(a, {T, m.D})}, {arg(a, {T, hcD})}, {intAttr("hc", {m.hc})});
  b.add(tag + "hc_pre", T, "v4.hc_pre",
        {arg(a, {T, hcD}), weight(f32, {mixRows, hcD}), weight(f32, {mixRows}), weight(f32, {3})},
        {arg(a, {T, m.D}), arg(f32, {T, m.hc}), arg(f32, {T, m.hc * m.hc})}, hcAttrs);
  b.add(tag + "hc_post", T, "v4.hc_post",
        {arg(a, {T, hcD}), arg(a, {T, m.D}), arg(f32, {T, m.hc}), arg(f32, {T, m.hc * m.hc})}, {arg(a, {T, hcD})},
        {intAttr("hc", {m.hc})});
  b.add(tag + "hc_post_pre", T, "v4.hc_post_pre",
        {arg(a, {T, hcD}), arg(a, {T, m.D}), arg(f32, {T, m.hc}), arg(f32, {T, m.hc * m.hc}),
         weight(a, {mixRows, hcD}), weight(f32, {mixRows}), weight(f32, {3})},
        {arg(a, {T, hcD}), arg(a, {T, m.D}), arg(f32, {T, m.hc}), arg(f32, {T, m.hc * m.hc})}, hcAttrs);
  b.add(tag + "hc_head", T, "v4.hc_head",
        {arg(a, {T, hcD}), weight(f32, {m.hc, hcD}), weight(f32, {m.hc}), weight(f32, {1})}, {arg(a, {T, m.D})},
        {intAttr("hc", {m.hc}), floatAttr("norm_eps", {1e-6}), floatAttr("hc_eps", {1e-6})});
  b.add(tag + "rms_norm_w", T, "v4.rms_norm", {arg(a, {T, m.D}), weight(a, {m.D})}, {arg(a, {T, m.D})},
        {intAttr("group", {m.D}), floatAttr("eps", {1e-6})});
  b.add(tag + "rms_norm_heads", T, "v4.rms_norm", {arg(a, {T, q})}, {arg(a, {T, q})},
        {intAttr("group", {m.headDim}), floatAttr("eps", {1e-6})});
  b.add(tag + "linear_wq_a", T, "v4.linear", {arg(a, {T, m.D}), weight(a, {m.qLora, m.D})}, {arg(a, {T, m.qLora})});
  b.add(tag + "linear_wq_b", T, "v4.linear", {arg(a, {T, m.qLora}), weight(a, {q, m.qLora})}, {arg(a, {T, q})});
  b.add(tag + "linear_head", T, "v4.linear", {arg(a, {T, m.D}), weight(a, {m.vocab, m.D})},
        {arg(f32, {T, m.vocab}, v4rt::ArgKind::Output)});
  b.add(tag + "grouped_linear", T, "v4.grouped_linear", {arg(a, {T, q}), weight(a, {m.oGroups * m.oLora, q / m.oGroups})},
        {arg(a, {T, m.oGroups * m.oLora})}, {intAttr("groups", {m.oGroups})});
  b.add(tag + "rope", T, "v4.rope", {arg(a, {T, q}), arg(i32, {T}, v4rt::ArgKind::Input)}, {arg(a, {T, q})},
        {intAttr("head_dim", {m.headDim}), intAttr("rope_dim", {m.ropeDim}), floatAttr("inv_freq", invFreq),
         floatAttr("scaling", {1.0}), intAttr("inverse", {0})});
  b.add(tag + "rope_inverse", T, "v4.rope", {arg(a, {T, q}), arg(i32, {T}, v4rt::ArgKind::Input)}, {arg(a, {T, q})},
        {intAttr("head_dim", {m.headDim}), intAttr("rope_dim", {m.ropeDim}), floatAttr("inv_freq", invFreq),
         floatAttr("scaling", {0.5}), intAttr("inverse", {1})});
  b.add(tag + "swiglu", T, "v4.swiglu", {arg(a, {T, m.inter}), arg(a, {T, m.inter})}, {arg(a, {T, m.inter})},
        {floatAttr("limit", {10.0})});
  b.add(tag + "add", T, "v4.add", {arg(a, {T, m.D}), arg(a, {T, m.D})}, {arg(a, {T, m.D})});
  b.add(tag + "router", T, "v4.router", {arg(a, {T, m.D}), weight(a, {m.experts, m.D}), weight(f32, {m.experts})},
        {arg(f32, {T, m.topK}), arg(i32, {T, m.topK})}, {intAttr("top_k", {m.topK}), floatAttr("routed_scaling", {2.5})});
  b.add(tag + "hash_router", T, "v4.hash_router",
        {arg(a, {T, m.D}), weight(a, {m.experts, m.D}), weight(i32, {m.vocab, m.topK}), arg(i32, {T}, v4rt::ArgKind::Input)},
        {arg(f32, {T, m.topK}), arg(i32, {T, m.topK})}, {floatAttr("routed_scaling", {1.5})});
  b.add(tag + "norm_linear", T, "v4.norm_linear",
        {arg(a, {T, m.D}), weight(a, {m.D}), weight(a, {m.qLora, m.D}), weight(a, {m.headDim, m.D})},
        {arg(a, {T, m.qLora}), arg(a, {T, m.headDim})},
        {intAttr("operandSegmentSizes", {1, 1, 2}), intAttr("group", {m.D}), floatAttr("eps", {1e-6})});
  b.add(tag + "norm_linear_head", T, "v4.norm_linear",
        {arg(a, {T, m.D}), weight(a, {m.D}), weight(a, {m.vocab, m.D})}, {arg(f32, {T, m.vocab}, v4rt::ArgKind::Output)},
        {intAttr("operandSegmentSizes", {1, 1, 1}), intAttr("group", {m.D}), floatAttr("eps", {1e-6})});
  b.add(tag + "norm_linear_groups_now", T, "v4.norm_linear", {arg(a, {T, q}), weight(a, {m.D, q})}, {arg(a, {T, m.D})},
        {intAttr("operandSegmentSizes", {1, 0, 1}), intAttr("group", {m.headDim}), floatAttr("eps", {1e-6})});
  b.add(tag + "linear_swiglu", T, "v4.linear_swiglu",
        {arg(a, {T, m.D}), weight(a, {m.inter, m.D}), weight(a, {m.inter, m.D})}, {arg(a, {T, m.inter})},
        {floatAttr("limit", {10.0})});
  const int64_t scaleRows = (m.qLora + 127) / 128, scaleCols = (m.D + 127) / 128;
  b.add(tag + "linear_fp8", T, "v4.linear_fp8",
        {arg(a, {T, m.D}), weight(DType::F8E4M3, {m.qLora, m.D}), weight(DType::U8, {scaleRows, scaleCols})},
        {arg(a, {T, m.qLora})}, {intAttr("block", {128, 128})});
}

// Odd sizes: K and N not multiples of any tile or vector width.
void addOddSteps(ProgramBuilder &b, int64_t T) {
  const std::string tag = "odd/T" + std::to_string(T) + "/";
  b.add(tag + "linear_K16_N7", T, "v4.linear", {arg(DType::F32, {T, 16}), weight(DType::F32, {7, 16})},
        {arg(DType::F32, {T, 7})});
  b.add(tag + "linear_K37_N45_bf16", T, "v4.linear", {arg(DType::BF16, {T, 37}), weight(DType::BF16, {45, 37})},
        {arg(DType::BF16, {T, 45})});
  b.add(tag + "linear_swiglu_K40_I5", T, "v4.linear_swiglu",
        {arg(DType::F32, {T, 40}), weight(DType::F32, {5, 40}), weight(DType::F32, {5, 40})}, {arg(DType::F32, {T, 5})},
        {floatAttr("limit", {7.0})});
  b.add(tag + "linear_fp8_K200_N130", T, "v4.linear_fp8",
        {arg(DType::F32, {T, 200}), weight(DType::F8E4M3, {130, 200}), weight(DType::U8, {2, 2})},
        {arg(DType::F32, {T, 130})}, {intAttr("block", {128, 128})});
  b.add(tag + "rms_norm_C6_G3", T, "v4.rms_norm", {arg(DType::F32, {T, 6}), weight(DType::F32, {3})},
        {arg(DType::F32, {T, 6})}, {intAttr("group", {3}), floatAttr("eps", {0.25})});
}

struct Emitted {
  std::string label;
  EmittedKernel kernel;
};

KernelEmitterFn denseEmitter(const std::string &op) {
  for (const NamedEmitter &e : denseEmitters())
    if (op == e.op)
      return e.fn;
  return nullptr;
}

std::vector<Emitted> emitAll(const ProgramBuilder &b, CudaTargetOptions options = {}) {
  std::vector<Emitted> all;
  for (size_t bi = 0; bi < b.program.buckets.size(); ++bi) {
    const v4rt::Bucket &bucket = b.program.buckets[bi];
    for (size_t si = 0; si < bucket.steps.size(); ++si) {
      const std::string &label = b.labels.at({bi, si});
      StepView view(b.program, bucket, bucket.steps[si], options);
      KernelEmitterFn fn = denseEmitter(view.opName());
      EXPECT_NE(fn, nullptr) << label;
      if (!fn)
        continue;
      try {
        all.push_back({label, fn(view)});
      } catch (const Error &error) {
        ADD_FAILURE() << label << ": " << error.what();
      }
    }
  }
  return all;
}

ProgramBuilder fullProgram() {
  ProgramBuilder b;
  for (const Precision &p : {kF32, kBf16}) {
    for (int64_t T : {1, 8, 9, 37})
      addModelSteps(b, kTiny, p, T);
    for (int64_t T : {1, 37, 4096})
      addModelSteps(b, kFlash, p, T);
  }
  for (int64_t T : {1, 3, 37, 300})
    addOddSteps(b, T);
  return b;
}

const EmittedKernel &find(const std::vector<Emitted> &all, const std::string &label) {
  for (const Emitted &e : all)
    if (e.label == label)
      return e.kernel;
  throw Error("no step labelled " + label);
}

std::string errorOf(const ProgramBuilder &b, CudaTargetOptions options = {}) {
  const v4rt::Bucket &bucket = b.program.buckets.at(0);
  StepView view(b.program, bucket, bucket.steps.at(0), options);
  try {
    denseEmitter(view.opName())(view);
  } catch (const Error &error) {
    return error.what();
  }
  return "";
}

TEST(DenseEmitters, EveryOpHasAnEmitter) {
  std::set<std::string> ops;
  for (const NamedEmitter &e : denseEmitters())
    ops.insert(e.op);
  for (const char *op : {"v4.embed", "v4.add", "v4.rms_norm", "v4.linear", "v4.grouped_linear", "v4.swiglu", "v4.rope",
                         "v4.hc_expand", "v4.hc_pre", "v4.hc_post", "v4.hc_head", "v4.router", "v4.hash_router",
                         "v4.norm_linear", "v4.linear_swiglu", "v4.hc_post_pre", "v4.linear_fp8"})
    EXPECT_EQ(ops.count(op), 1u) << op;
  EXPECT_EQ(ops.size(), 17u);
}

TEST(DenseEmitters, SaneEntriesAndGeometry) {
  const std::vector<Emitted> all = emitAll(fullProgram());
  ASSERT_GT(all.size(), 300u);
  std::map<std::string, std::string> sourceOf;
  for (const Emitted &e : all) {
    const EmittedKernel &k = e.kernel;
    SCOPED_TRACE(e.label);
    EXPECT_EQ(k.entry.rfind("v4_", 0), 0u);
    EXPECT_EQ(identifierFragment(k.entry), k.entry);
    EXPECT_NE(k.source.find("extern \"C\" __global__ void __launch_bounds__(" + std::to_string(k.dims.block[0]) + ") " +
                            k.entry + "("),
              std::string::npos);
    EXPECT_NE(k.source.find("const int32_t* __restrict__ dyn)"), std::string::npos);
    EXPECT_TRUE(k.dims.block[0] == 256 || k.dims.block[0] == 512 || k.dims.block[0] == 1024) << k.dims.block[0];
    EXPECT_EQ(k.dims.block[1] * k.dims.block[2], 1u);
    for (uint32_t g : k.dims.grid)
      EXPECT_GE(g, 1u);
    EXPECT_LE(k.dims.grid[1], 65535u);
    EXPECT_LE(k.dims.grid[2], 65535u);
    EXPECT_LE(k.dims.sharedBytes, 48u * 1024u);
    // One source per entry name: names carry everything baked in.
    auto [it, inserted] = sourceOf.emplace(k.entry, k.source);
    if (!inserted) {
      EXPECT_EQ(it->second, k.source) << k.entry;
    }
  }
}

TEST(DenseEmitters, MatmulGeometry) {
  const std::vector<Emitted> all = emitAll(fullProgram());
  // GEMV (T <= 8): 16 weight rows per block, or 16 / KS when KS warps share
  // a row pair over K (the fewest, up to 8, that give >= 264 blocks).
  const EmittedKernel &headDecode = find(all, "flash/bf16/T1/linear_head");
  EXPECT_NE(headDecode.entry.find("gemv"), std::string::npos);
  EXPECT_EQ(headDecode.dims.grid[0], (129280u + 15) / 16);
  EXPECT_EQ(headDecode.dims.grid[1], 1u);
  EXPECT_NE(headDecode.source.find("linearGemv<__nv_bfloat16, __nv_bfloat16, float, 1, 4096, 129280, 1>"),
            std::string::npos);
  EXPECT_EQ(find(all, "tiny/f32/T8/linear_wq_a").dims.grid[0], 2u); // N = 32
  // GEMM: BM = 64 up to 64 tokens, else 128; BN = 64 up to 64 columns, else 128.
  const EmittedKernel &wqa37 = find(all, "flash/f32/T37/linear_wq_a");
  EXPECT_NE(wqa37.entry.find("gemm64x128"), std::string::npos);
  EXPECT_EQ(wqa37.dims.grid[0], 1024u / 128);
  EXPECT_EQ(wqa37.dims.grid[1], 1u);
  EXPECT_EQ(wqa37.dims.sharedBytes, 16u * (68 + 132) * 4);
  const EmittedKernel &head4096 = find(all, "flash/bf16/T4096/linear_head");
  EXPECT_EQ(head4096.dims.grid[0], (129280u + 127) / 128);
  EXPECT_EQ(head4096.dims.grid[1], 4096u / 128);
  EXPECT_EQ(find(all, "tiny/f32/T9/linear_wq_a").dims.grid[0], 1u); // N = 32 -> BN 64
  // Grouped: groups on grid.y (GEMV) / grid.z (GEMM).
  const EmittedKernel &groupedDecode = find(all, "flash/f32/T1/grouped_linear");
  EXPECT_EQ(groupedDecode.dims.grid[0], 1024u / 16);
  EXPECT_EQ(groupedDecode.dims.grid[1], 8u);
  const EmittedKernel &grouped = find(all, "flash/f32/T4096/grouped_linear");
  EXPECT_EQ(grouped.dims.grid[0], 1024u / 128);
  EXPECT_EQ(grouped.dims.grid[1], 32u);
  EXPECT_EQ(grouped.dims.grid[2], 8u);
  // norm_linear: one launch over both weights' column blocks, rms table per row.
  // At decode 1536 rows: KS = 4 (96 -> 192 -> 384 blocks of 4 rows); the
  // rms table (4 bytes, rounded to 16) then 16 partial sums.
  const EmittedKernel &normDecode = find(all, "flash/bf16/T1/norm_linear");
  EXPECT_EQ(normDecode.dims.grid[0], 1024u / 4 + 512u / 4);
  EXPECT_EQ(normDecode.dims.sharedBytes, 16u + 16 * 4);
  EXPECT_NE(normDecode.source.find("if (tile < 256)"), std::string::npos);
  EXPECT_NE(normDecode.source.find("tile - 256"), std::string::npos);
  EXPECT_NE(normDecode.entry.find("gemv_ks4"), std::string::npos) << normDecode.entry;
  const EmittedKernel &norm = find(all, "flash/f32/T4096/norm_linear");
  EXPECT_EQ(norm.dims.grid[0], 1024u / 128 + 512u / 128);
  EXPECT_EQ(norm.dims.sharedBytes, 16u * (132 + 132) * 4 + 128 * 4);
  EXPECT_EQ(find(all, "flash/f32/T37/norm_linear_groups_now").dims.sharedBytes, 16u * (68 + 132) * 4 + 64 * 64 * 4);
  // linear_swiglu: 2I virtual rows.
  EXPECT_EQ(find(all, "flash/bf16/T1/linear_swiglu").dims.grid[0], 2u * 2048 / 8); // KS = 2: 256 -> 512 blocks
  EXPECT_EQ(find(all, "flash/bf16/T37/linear_swiglu").dims.grid[0], 2u * 2048 / 128);
  // fp8: one scale byte per (token, 128-group).
  // KS = 8 (1024 rows: 64 -> 512 blocks; 512 codes per split), partial sums after the table.
  const EmittedKernel &fp8Decode = find(all, "flash/f32/T1/linear_fp8");
  EXPECT_EQ(fp8Decode.dims.grid[0], 1024u / 2);
  EXPECT_EQ(fp8Decode.dims.sharedBytes, 32u + 16 * 4);
  EXPECT_NE(fp8Decode.source.find("linearFp8Gemv<float, float, 1, 4096, 1024, 128, 128, 8>"), std::string::npos);
  // fp8 GEMMs run on tensor cores (bf16 tiles of [rows][32 + 8]) whatever x's dtype.
  const EmittedKernel &fp8Odd = find(all, "odd/T300/linear_fp8_K200_N130");
  EXPECT_NE(fp8Odd.entry.find("mma128x128"), std::string::npos);
  EXPECT_EQ(fp8Odd.dims.sharedBytes, (128u + 128) * 40 * 2 + 128 * 2);
  EXPECT_NE(fp8Odd.source.find("linearFp8Gemm<float, float, 200, 130, 128, 128, 128, 128, true>"), std::string::npos);
  // bf16 x bf16 GEMMs too; f32 ones never (bf16 rounding would break 1e-4).
  const EmittedKernel &wqa37bf16 = find(all, "flash/bf16/T37/linear_wq_a");
  EXPECT_NE(wqa37bf16.entry.find("mma64x128"), std::string::npos);
  EXPECT_EQ(wqa37bf16.dims.sharedBytes, (64u + 128) * 40 * 2);
  EXPECT_NE(wqa37bf16.source.find(", 64, 128, true>"), std::string::npos);
  EXPECT_NE(wqa37.source.find(", 64, 128, false>"), std::string::npos);
  EXPECT_EQ(find(all, "flash/bf16/T4096/norm_linear").dims.sharedBytes, (128u + 128) * 40 * 2 + 128 * 4);
  EXPECT_EQ(find(all, "tiny/bf16/T9/linear_wq_a").dims.sharedBytes, (64u + 64) * 40 * 2); // >= 8 warps' staging
  EXPECT_NE(find(all, "flash/bf16/T4096/linear_swiglu").entry.find("mma128x128"), std::string::npos);
  EXPECT_NE(find(all, "odd/T37/linear_K37_N45_bf16").entry.find("mma64x64"), std::string::npos);
}

TEST(DenseEmitters, RowOpGeometry) {
  const std::vector<Emitted> all = emitAll(fullProgram());
  EXPECT_EQ(find(all, "flash/f32/T37/embed").dims.grid[0], 37u);
  EXPECT_EQ(find(all, "flash/f32/T4096/hc_pre").dims.grid[0], 4096u / 8); // token tiles of 8
  EXPECT_EQ(find(all, "flash/f32/T4096/hc_pre").dims.block[0], 512u);
  EXPECT_EQ(find(all, "flash/f32/T37/router").dims.grid[0], (37u + 7) / 8); // 8 tokens per block (E = 256)
  EXPECT_EQ(find(all, "flash/f32/T37/router").dims.block[0], 1024u);
  // Decode (T <= 8): split shapes over the weights with a last-block hand-off.
  // router: 256 experts x 16 parts of 256 columns, 8 warps per block.
  EXPECT_EQ(find(all, "flash/f32/T1/router").dims.grid[0], 256u * 16 / 8);
  EXPECT_EQ(find(all, "flash/f32/T1/router").dims.block[0], 256u);
  EXPECT_NE(find(all, "flash/f32/T1/router").source.find("routerSplit<"), std::string::npos);
  // hc_pre: f32 fn, 128 columns per block over hc * D = 16384.
  EXPECT_EQ(find(all, "flash/f32/T1/hc_pre").dims.grid[0], 16384u / 128);
  EXPECT_EQ(find(all, "flash/f32/T1/hc_pre").dims.block[0], 512u);
  EXPECT_NE(find(all, "tiny/f32/T8/hc_pre").entry.find("hc_pre_split"), std::string::npos); // up to 8 tokens
  EXPECT_EQ(find(all, "tiny/f32/T9/hc_pre").dims.grid[0], 2u);                                 // then tiles of 8
  // rms_norm: a warp per group of <= 1024 (8 per block), else a block per group.
  EXPECT_EQ(find(all, "flash/f32/T37/rms_norm_heads").dims.grid[0], 37u * 8);
  EXPECT_EQ(find(all, "flash/f32/T37/rms_norm_w").dims.grid[0], 37u);
  EXPECT_EQ(find(all, "tiny/f32/T37/rms_norm_heads").dims.grid[0], 37u);
  // Grid-stride kernels: enough blocks for every element, capped at 65535.
  EXPECT_EQ(find(all, "flash/f32/T1/add").dims.grid[0], 4096u / 256);
  EXPECT_EQ(find(all, "flash/f32/T4096/hc_expand").dims.grid[0], 65535u);
  EXPECT_EQ(find(all, "tiny/f32/T1/rope").dims.grid[0], 1u);
  // The rope's inv_freq table is baked into the source, exactly.
  const EmittedKernel &rope = find(all, "tiny/f32/T1/rope");
  EXPECT_NE(rope.source.find("static __device__ const float " + rope.entry + "_inv_freq[2] = {1.0f, 0.01f};"),
            std::string::npos)
      << rope.source;
  EXPECT_NE(find(all, "tiny/f32/T1/rope_inverse").entry, rope.entry);
  // Attribute values are baked as exact literals.
  EXPECT_NE(find(all, "flash/f32/T37/router").source.find(", 2.5, dyn)"), std::string::npos);
  const EmittedKernel &router = find(all, "flash/f32/T1/router");
  EXPECT_NE(router.source.find(", 2.5, " + router.entry + "_partials, &" + router.entry + "_done, dyn)"),
            std::string::npos)
      << router.source;
  EXPECT_NE(router.source.find("static __device__ float " + router.entry + "_partials[4096];"), std::string::npos);
  const EmittedKernel &hcPre = find(all, "flash/f32/T1/hc_pre");
  EXPECT_NE(hcPre.source.find("9.9999999999999995e-07, 9.9999999999999995e-07, 20, " + hcPre.entry + "_partials"),
            std::string::npos)
      << hcPre.source;
  EXPECT_NE(hcPre.source.find("static __device__ float " + hcPre.entry + "_partials[" + std::to_string(24 * 128) + "];"),
            std::string::npos);
  EXPECT_NE(find(all, "flash/f32/T37/hc_pre").source.find("9.9999999999999995e-07, 9.9999999999999995e-07, 20, dyn"),
            std::string::npos);
}

// --tensor-cores wgmma: exactly the GEMM-path matmuls that get wmma today
// (bf16 x bf16, fp8 weights) switch to the wgmma tile (MMA = 2, shared bytes
// gemmWgmmaTileBytes = 4 stages x (BM + BN) x 64 x 2 + 1024, plus the A
// table); GEMVs, FFMA GEMMs and every other op keep their entries byte for byte.
TEST(DenseEmitters, WgmmaReplacesExactlyTheWmmaTiles) {
  const ProgramBuilder program = fullProgram();
  const std::vector<Emitted> wmma = emitAll(program);
  const std::vector<Emitted> wgmma = emitAll(program, CudaTargetOptions{TensorCores::Wgmma});
  ASSERT_EQ(wmma.size(), wgmma.size());
  int switched = 0;
  for (size_t i = 0; i < wmma.size(); ++i) {
    SCOPED_TRACE(wmma[i].label);
    const EmittedKernel &before = wmma[i].kernel, &after = wgmma[i].kernel;
    EXPECT_EQ(before.source.find("gemmWgmmaTileBytes"), std::string::npos);
    EXPECT_EQ(before.entry.find("wgmma"), std::string::npos);
    const size_t tag = before.entry.find("_mma");
    if (tag == std::string::npos) {
      EXPECT_EQ(after.entry, before.entry);
      EXPECT_EQ(after.source, before.source);
      EXPECT_EQ(after.dims.sharedBytes, before.dims.sharedBytes);
      continue;
    }
    ++switched;
    const std::regex tile("_(wg)?mma[0-9]+x[0-9]+_");
    EXPECT_EQ(std::regex_replace(after.entry, tile, "_TILE_"), std::regex_replace(before.entry, tile, "_TILE_"));
    EXPECT_EQ(after.entry.substr(0, tag), before.entry.substr(0, tag));
    EXPECT_EQ(after.entry.compare(tag, 6, "_wgmma"), 0) << after.entry;
    // linear_fp8 (128 x 128 blocks) takes the native e4m3 tile, same bytes.
    const bool e4m3 = after.source.find("linearFp8Gemm<") != std::string::npos;
    EXPECT_NE(after.source.find(e4m3 ? "v4cuda::gemmWgmmaFp8TileBytes<" : "v4cuda::gemmWgmmaTileBytes<"),
              std::string::npos);
    EXPECT_EQ(after.source.find("gemmMmaTileBytes"), std::string::npos);
    EXPECT_EQ(after.source.find(", true>("), std::string::npos);
    EXPECT_NE(after.source.find(", 2>("), std::string::npos);
    // The same column blocks and threads; 128-row tiles also where wmma's
    // A table forced 64 rows to stay under 48 KB (wgmma opts in to 227 KB).
    EXPECT_EQ(after.dims.grid[0], before.dims.grid[0]);
    EXPECT_EQ(after.dims.grid[2], before.dims.grid[2]);
    if (wmma[i].label == "flash/bf16/T4096/norm_linear_groups_now") { // 64 groups: 256 bytes of rms per row
      EXPECT_NE(before.entry.find("_mma64x128_"), std::string::npos);
      EXPECT_NE(after.entry.find("_wgmma128x128_"), std::string::npos);
      EXPECT_EQ(after.dims.grid[1], before.dims.grid[1] / 2);
      EXPECT_EQ(after.dims.sharedBytes, 132096u + 128 * 64 * 4);
    } else {
      EXPECT_EQ(after.dims.grid[1], before.dims.grid[1]);
    }
    for (int d = 0; d < 3; ++d)
      EXPECT_EQ(after.dims.block[d], before.dims.block[d]);
  }
  // Per precision x model x T > 8: linear x3, grouped, norm_linear x3, swiglu,
  // fp8 (bf16 only for all but fp8) + the odd bf16 / fp8 ones.
  EXPECT_GE(switched, 40);
}

TEST(DenseEmitters, WgmmaGeometry) {
  const std::vector<Emitted> all = emitAll(fullProgram(), CudaTargetOptions{TensorCores::Wgmma});
  const EmittedKernel &head = find(all, "flash/bf16/T4096/linear_head");
  EXPECT_NE(head.entry.find("_wgmma128x128_"), std::string::npos) << head.entry;
  EXPECT_EQ(head.dims.sharedBytes, 4u * (128 + 128) * 64 * 2 + 1024); // 132096: opts in above 48 KB
  EXPECT_NE(head.source.find("v4cuda::linearGemm<__nv_bfloat16, __nv_bfloat16, float, 4096, 129280, 128, 128, 2>"),
            std::string::npos)
      << head.source;
  EXPECT_NE(head.source.find("v4cuda::gemmWgmmaTileBytes<128, 128>() == 132096"), std::string::npos);
  EXPECT_EQ(head.dims.grid[0], (129280u + 127) / 128);
  EXPECT_EQ(head.dims.grid[1], 4096u / 128);
  // BM = 64 up to 64 tokens: 4 x (64 + 128) x 128 + 1024.
  const EmittedKernel &wqa37 = find(all, "flash/bf16/T37/linear_wq_a");
  EXPECT_NE(wqa37.entry.find("_wgmma64x128_"), std::string::npos);
  EXPECT_EQ(wqa37.dims.sharedBytes, 99328u);
  EXPECT_NE(wqa37.source.find(", 64, 128, 2>("), std::string::npos);
  // The A policy's table rides after the tile: rms per row (4 bytes), fp8 scales (1 per 128 channels).
  EXPECT_EQ(find(all, "flash/bf16/T4096/norm_linear").dims.sharedBytes, 132096u + 128 * 4);
  const EmittedKernel &fp8 = find(all, "odd/T300/linear_fp8_K200_N130");
  EXPECT_NE(fp8.entry.find("_wgmma128x128_"), std::string::npos);
  EXPECT_EQ(fp8.dims.sharedBytes, 132096u + 128 * 2);
  EXPECT_NE(fp8.source.find("linearFp8Gemm<float, float, 200, 130, 128, 128, 128, 128, 2>"), std::string::npos);
  // ... on the native e4m3 tile (DenseWgmmaFp8.cuh): 4 x (128 + 128) x 128 codes + 1024, the bf16 tile's bytes.
  EXPECT_NE(fp8.source.find("v4cuda::gemmWgmmaFp8TileBytes<128, 128>() == 132096"), std::string::npos) << fp8.source;
  EXPECT_NE(fp8.source.find("static_assert(v4cuda::kWgmmaFp8Native<v4cuda::QuantRows<float, 200, 128>, "
                            "v4cuda::Fp8Weights<200, 128, 128>>"),
            std::string::npos)
      << fp8.source;
  // 37 tokens: the 64-row native tile, 4 x (64 + 128) x 128 + 1024 and a scale byte per row and group.
  const EmittedKernel &fp8Rows64 = find(all, "flash/bf16/T37/linear_fp8");
  EXPECT_NE(fp8Rows64.entry.find("_wgmma64x128_"), std::string::npos) << fp8Rows64.entry;
  EXPECT_EQ(fp8Rows64.dims.sharedBytes, 99328u + 64 * ((kFlash.D + 127) / 128));
  EXPECT_NE(fp8Rows64.source.find("v4cuda::gemmWgmmaFp8TileBytes<64, 128>() == 99328"), std::string::npos);
  EXPECT_NE(find(all, "odd/T37/linear_K37_N45_bf16").entry.find("_wgmma64x64_"), std::string::npos);
  EXPECT_EQ(find(all, "odd/T37/linear_K37_N45_bf16").dims.sharedBytes, 4u * (64 + 64) * 64 * 2 + 1024);
  // f32 GEMMs stay on the FFMA tile, decode on the GEMV.
  EXPECT_NE(find(all, "flash/f32/T4096/linear_head").entry.find("_gemm128x128_"), std::string::npos);
  EXPECT_NE(find(all, "flash/bf16/T1/linear_head").entry.find("_gemv"), std::string::npos);
}

// linear_fp8 blocks the native e4m3 tile does not take (a weight scale per
// 16 rows; 64-wide groups) keep the dequantizing bf16 wgmma tile, and the
// entry asserts that the headers agree.
TEST(DenseEmitters, WgmmaFp8OtherBlocksKeepTheBf16Tile) {
  ProgramBuilder b;
  b.add("rows16", 200, "v4.linear_fp8",
        {arg(DType::BF16, {200, 256}), weight(DType::F8E4M3, {130, 256}), weight(DType::U8, {9, 2})},
        {arg(DType::BF16, {200, 130})}, {intAttr("block", {16, 128})});
  b.add("cols64", 200, "v4.linear_fp8",
        {arg(DType::BF16, {200, 256}), weight(DType::F8E4M3, {130, 256}), weight(DType::U8, {2, 4})},
        {arg(DType::BF16, {200, 130})}, {intAttr("block", {128, 64})});
  const std::vector<Emitted> all = emitAll(b, CudaTargetOptions{TensorCores::Wgmma});
  ASSERT_EQ(all.size(), 2u);
  for (const Emitted &e : all) {
    SCOPED_TRACE(e.label);
    EXPECT_NE(e.kernel.entry.find("_wgmma128x128_"), std::string::npos) << e.kernel.entry;
    EXPECT_NE(e.kernel.source.find("v4cuda::gemmWgmmaTileBytes<128, 128>()"), std::string::npos);
    EXPECT_NE(e.kernel.source.find("static_assert(!v4cuda::kWgmmaFp8Native<"), std::string::npos) << e.kernel.source;
    EXPECT_EQ(e.kernel.source.find("gemmWgmmaFp8TileBytes"), std::string::npos);
  }
}

// The wgmma path may use sm_90a's opt-in shared memory (227 KB): a per-row
// table that does not fit 48 KB under wmma fits with wgmma (BM = 128 even).
TEST(DenseEmitters, WgmmaOptsInToTheTargetsSharedMemory) {
  ProgramBuilder b; // 256 norm groups of 16 channels: 1024 table bytes per token
  b.add("table", 200, "v4.norm_linear", {arg(DType::BF16, {200, 4096}), weight(DType::BF16, {8, 4096})},
        {arg(DType::BF16, {200, 8})},
        {intAttr("operandSegmentSizes", {1, 0, 1}), intAttr("group", {16}), floatAttr("eps", {1e-6})});
  EXPECT_NE(errorOf(b).find("v4.norm_linear: the per-row table (1024 bytes per token) needs 75776 bytes of shared "
                            "memory, over 48 KB"),
            std::string::npos)
      << errorOf(b);
  const std::vector<Emitted> all = emitAll(b, CudaTargetOptions{TensorCores::Wgmma});
  ASSERT_EQ(all.size(), 1u);
  EXPECT_NE(all[0].kernel.entry.find("_wgmma128x64_"), std::string::npos) << all[0].kernel.entry;
  EXPECT_EQ(all[0].kernel.dims.sharedBytes, 4u * (128 + 64) * 64 * 2 + 1024 + 128 * 1024); // 230400 <= 227 KB
  // Over 227 KB even with 64-row tiles: a one-line error naming the limit.
  ProgramBuilder huge; // 2048 groups of 2: 8192 bytes per token
  huge.add("table", 200, "v4.norm_linear", {arg(DType::BF16, {200, 4096}), weight(DType::BF16, {8, 4096})},
           {arg(DType::BF16, {200, 8})},
           {intAttr("operandSegmentSizes", {1, 0, 1}), intAttr("group", {2}), floatAttr("eps", {1e-6})});
  EXPECT_NE(errorOf(huge, CudaTargetOptions{TensorCores::Wgmma})
                .find("the per-row table (8192 bytes per token) needs 590848 bytes of shared memory, over 227 KB"),
            std::string::npos)
      << errorOf(huge, CudaTargetOptions{TensorCores::Wgmma});
}

TEST(DenseEmitters, EntryNamesSeparateConfigurations) {
  const std::vector<Emitted> all = emitAll(fullProgram());
  EXPECT_NE(find(all, "flash/f32/T1/linear_wq_a").entry, find(all, "flash/bf16/T1/linear_wq_a").entry);
  EXPECT_NE(find(all, "flash/f32/T1/linear_wq_a").entry, find(all, "flash/f32/T37/linear_wq_a").entry);
  EXPECT_NE(find(all, "flash/f32/T1/rms_norm_w").entry, find(all, "flash/f32/T1/rms_norm_heads").entry);
  // hc_pre under bf16 keeps post/comb f32: the dtypes of every argument are in the name.
  EXPECT_NE(find(all, "flash/bf16/T1/hc_pre").entry.find("_bf16_f32_f32_f32_to_bf16_f32_f32_T1"), std::string::npos)
      << find(all, "flash/bf16/T1/hc_pre").entry;
}

TEST(DenseEmitters, BadStepsGiveOneLineErrors) {
  {
    ProgramBuilder b;
    b.add("k mismatch", 4, "v4.linear", {arg(DType::F32, {4, 64}), weight(DType::F32, {32, 48})}, {arg(DType::F32, {4, 32})});
    EXPECT_EQ(errorOf(b), "v4.linear: w must be [N, 64], got [32, 48]");
  }
  {
    ProgramBuilder b;
    b.add("rows", 4, "v4.add", {arg(DType::F32, {3, 8}), arg(DType::F32, {4, 8})}, {arg(DType::F32, {4, 8})});
    EXPECT_EQ(errorOf(b), "v4.add: a must be [4, C] (the bucket's tokens), got [3, 8]");
  }
  {
    ProgramBuilder b;
    b.add("group", 4, "v4.rms_norm", {arg(DType::F32, {4, 10})}, {arg(DType::F32, {4, 10})},
          {intAttr("group", {4}), floatAttr("eps", {1e-6})});
    EXPECT_EQ(errorOf(b), "v4.rms_norm: group 4 must divide the width 10");
  }
  {
    ProgramBuilder b;
    b.add("int activations", 1, "v4.linear", {arg(DType::I32, {1, 8}), weight(DType::F32, {8, 8})},
          {arg(DType::F32, {1, 8})});
    EXPECT_EQ(errorOf(b), "v4.linear: operand 0 must be f32, bf16 or f16, got i32");
  }
  {
    ProgramBuilder b;
    b.add("fp8 scales", 1, "v4.linear_fp8",
          {arg(DType::F32, {1, 256}), weight(DType::F8E4M3, {128, 256}), weight(DType::U8, {1, 1})},
          {arg(DType::F32, {1, 128})}, {intAttr("block", {128, 128})});
    EXPECT_EQ(errorOf(b), "v4.linear_fp8: scale must hold ceil(N/128) x ceil(K/128) = 2 bytes, got 1");
  }
  {
    ProgramBuilder b;
    b.add("missing attr", 1, "v4.router", {arg(DType::F32, {1, 8}), weight(DType::F32, {4, 8}), weight(DType::F32, {4})},
          {arg(DType::F32, {1, 2}), arg(DType::I32, {1, 2})}, {floatAttr("routed_scaling", {1.0})});
    EXPECT_EQ(errorOf(b), "v4.router: step is missing attribute 'top_k'");
  }
  {
    ProgramBuilder b; // a norm table over 48 KB: 2048 groups of 2 channels, 128-row tiles
    b.add("table", 200, "v4.norm_linear", {arg(DType::F32, {200, 4096}), weight(DType::F32, {8, 4096})},
          {arg(DType::F32, {200, 8})},
          {intAttr("operandSegmentSizes", {1, 0, 1}), intAttr("group", {2}), floatAttr("eps", {1e-6})});
    EXPECT_NE(errorOf(b).find("v4.norm_linear: the per-row table (8192 bytes per token)"), std::string::npos);
  }
}

// Every emitted entry in one translation unit, through the generator's own
// nvcc path (compileCubin), for each target the brief requires.
void compileEverything(const std::string &target, CudaTargetOptions targetOptions = {}) {
  std::string nvcc;
  try {
    nvcc = findNvcc();
  } catch (const Error &error) {
    GTEST_SKIP() << "nvcc is not available, the dense kernels were not compiled: " << error.what();
  }
  ProgramBuilder program = fullProgram();
  program.program.target = target;
  const std::vector<Emitted> all = emitAll(program, targetOptions);
  std::string unit = "#include <v4cuda/All.cuh>\n#include <v4cuda/Dense.cuh>\n#include <v4cuda/HyperConnection.cuh>\n"
                     "#include <v4cuda/Quant.cuh>\n#include <v4cuda/Router.cuh>\n\n";
  std::set<std::string> entries;
  for (const Emitted &e : all)
    if (entries.insert(e.kernel.entry).second)
      unit += e.kernel.source + "\n";
  CudaCompileOptions options;
  options.nvcc = nvcc;
  std::vector<uint8_t> cubin;
  try {
    cubin = compileCubin(unit, target, options);
  } catch (const Error &error) {
    FAIL() << error.what();
  }
  EXPECT_GT(cubin.size(), 1000u);
  std::printf("[ dense    ] %zu distinct entries compiled for %s (tensor cores: %s), cubin %zu bytes\n",
              entries.size(), target.c_str(), tensorCoresName(targetOptions.tensorCores), cubin.size());
  // Every entry is in the cubin's symbol table.
  const std::string bytes(cubin.begin(), cubin.end());
  for (const std::string &entry : entries)
    EXPECT_NE(bytes.find(entry + '\0'), std::string::npos) << entry;
}

TEST(DenseEmitters, NvccCompilesEveryEntryForSm90a) { compileEverything("sm_90a"); }
TEST(DenseEmitters, NvccCompilesEveryEntryForSm80) { compileEverything("sm_80"); }
// The wgmma tiles (h2's gemmTileWgmma behind DenseLinear.cuh's MMA = 2) for
// every GEMM-path shape above, the static_asserts on their shared bytes included.
TEST(DenseEmitters, NvccCompilesEveryEntryForSm90aWgmma) {
  compileEverything("sm_90a", CudaTargetOptions{TensorCores::Wgmma});
}

// Quant.cuh's scalar fp8 functions (the same code the kernels run), built for
// the host by nvcc, against runtime/cpu/Quantization: e4m3 rounding, ue8m0
// scale choice and whole 1 x 128 activation groups, bit for bit, over every
// e4m3 value, the midpoints between them, edge cases and random values.
constexpr const char *kQuantProbe = R"cu(
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <vector>
#include <v4cuda/Quant.cuh>
#include "runtime/cpu/Quantization.h"

namespace q = v4rt::quant;
static uint32_t bitsOf(float v) { uint32_t b; std::memcpy(&b, &v, 4); return b; }
static bool same(float a, float b) { return (std::isnan(a) && std::isnan(b)) || bitsOf(a) == bitsOf(b); }

int main() {
  std::vector<float> values = {0.0f, -0.0f, 448.0f, -448.0f, 456.0f, 464.0f, 465.0f, 480.0f, 1e30f, -1e30f,
                               std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                               std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::denorm_min(),
                               std::numeric_limits<float>::min(), std::numeric_limits<float>::max(), 1e-38f, 1e-42f};
  for (int code = 0; code < 127; ++code) {
    const float v = q::decodeE4M3(static_cast<uint8_t>(code)), next = q::decodeE4M3(static_cast<uint8_t>(code + 1));
    const float mid = 0.5f * (v + next);
    for (float x : {v, mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e9f)})
      values.insert(values.end(), {x, -x});
  }
  std::mt19937 rng(20261123);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> exponent(-40.0f, 40.0f);
  for (int i = 0; i < 300000; ++i)
    values.push_back(normal(rng) * std::pow(2.0f, exponent(rng)));
  while (values.size() % 128 != 0)
    values.push_back(normal(rng));

  long mismatches = 0, checked = 0;
  for (float v : values) {
    ++checked;
    if (!same(v4cuda::e4m3RoundTrip(v), q::decodeE4M3(q::encodeE4M3(v))) && mismatches++ < 10)
      std::printf("e4m3 %a: %a vs %a\n", v, v4cuda::e4m3RoundTrip(v), q::decodeE4M3(q::encodeE4M3(v)));
    const float amax = std::fabs(v);
    if (std::isfinite(amax) && v4cuda::chooseUe8m0(amax) != q::chooseUe8m0(amax, 448.0f) && mismatches++ < 10)
      std::printf("ue8m0 %a: %u vs %u\n", amax, v4cuda::chooseUe8m0(amax), q::chooseUe8m0(amax, 448.0f));
    if (!same(v4cuda::ue8m0Value(v4cuda::chooseUe8m0(amax)), q::decodeUe8m0(v4cuda::chooseUe8m0(amax))) &&
        mismatches++ < 10)
      std::printf("ue8m0 value of %a differs\n", amax);
  }
  // Groups of 128 channels: the kernels' amax (fmaxf over |x|) + quantizeActivation
  // against quant::quantizeActivations + decode, as ref::fakeQuantizeActivations.
  for (size_t g0 = 0; g0 < values.size(); g0 += 128) {
    const float *x = values.data() + g0;
    uint8_t codes[128], scale;
    q::quantizeActivations(x, 1, 128, 128, codes, &scale);
    float amax = 0.0f;
    for (int i = 0; i < 128; ++i)
      amax = fmaxf(amax, std::fabs(x[i]));
    const uint32_t b = v4cuda::chooseUe8m0(amax);
    for (int i = 0; i < 128; ++i) {
      ++checked;
      const float cpu = q::decodeE4M3(codes[i]) * q::decodeUe8m0(scale);
      if (!same(v4cuda::quantizeActivation(x[i], b), cpu) && mismatches++ < 10)
        std::printf("group at %zu: %a -> %a vs %a\n", g0, x[i], v4cuda::quantizeActivation(x[i], b), cpu);
      // The code itself, which the native e4m3 wgmma tile multiplies (NaN: either sign).
      const unsigned gpuCode = v4cuda::activationCode(x[i], b).__x;
      if (gpuCode != codes[i] && !((gpuCode & 0x7F) == 0x7F && (codes[i] & 0x7F) == 0x7F) && mismatches++ < 10)
        std::printf("group at %zu: %a -> code %u vs %u\n", g0, x[i], gpuCode, unsigned(codes[i]));
    }
  }
  std::printf("checked %ld values, %ld mismatches\n", checked, mismatches);
  return mismatches == 0 ? 0 : 1;
}
)cu";

TEST(DenseEmitters, Fp8ScalarsMatchTheCpuQuantization) {
  std::string nvcc;
  try {
    nvcc = findNvcc();
  } catch (const Error &error) {
    GTEST_SKIP() << "nvcc is not available, the fp8 scalars were not checked: " << error.what();
  }
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("v4c-dense-quant-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "probe.cu") << kQuantProbe;
  const std::string source = V4_SOURCE_DIR;
  const std::string compile = nvcc + " -std=c++17 -O2 -I" + source + " -I" + source + "/codegen/cuda/include " +
                              (dir / "probe.cu").string() + " " + source + "/runtime/cpu/Quantization.cpp -o " +
                              (dir / "probe").string() + " > " + (dir / "build.log").string() + " 2>&1";
  ASSERT_EQ(std::system(compile.c_str()), 0) << "building the probe failed; see " << (dir / "build.log").string();
  const std::string run = (dir / "probe").string() + " > " + (dir / "run.log").string() + " 2>&1";
  const int status = std::system(run.c_str());
  std::ifstream log(dir / "run.log");
  std::stringstream output;
  output << log.rdbuf();
  EXPECT_EQ(status, 0) << output.str();
  EXPECT_NE(output.str().find(" 0 mismatches"), std::string::npos) << output.str();
  EXPECT_EQ(output.str().find("checked 0 values"), std::string::npos);
  if (status == 0)
    fs::remove_all(dir);
}

} // namespace
} // namespace v4c::cuda
