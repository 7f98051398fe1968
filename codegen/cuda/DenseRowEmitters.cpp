// Emitters of the dense family's elementwise and row kernels (include/v4cuda/Dense.cuh):
// embed, add, swiglu, rms_norm, rope. Each checks the step's shapes, names its
// entry after everything baked into it, and instantiates the template.
#include <cstdio>

#include "codegen/cuda/DenseEmit.h"

namespace v4c::cuda::dense {
namespace {

constexpr uint32_t kRmsNormThreads = 256;

// FNV-1a of a float table's literals: a short, stable tag for entry names.
std::string tableTag(const std::vector<double> &values) {
  uint64_t hash = 1469598103934665603ull;
  for (double v : values)
    for (char c : floatLiteral(v)) {
      hash ^= static_cast<unsigned char>(c);
      hash *= 1099511628211ull;
    }
  char text[24];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(hash));
  return text;
}

EmittedKernel emitEmbed(const StepView &view) {
  Emit e(view);
  e.requireDtype(view.in(0), v4rt::DType::I32, "ids");
  const auto &table = e.inShape(1);
  e.require(table.size() == 2, "table must be [V, D], got " + Emit::shapeText(table));
  e.requireFloat(view.in(1).dtype, "table");
  e.requireFloatOuts({0});
  const int64_t vocab = table[0], D = table[1];
  e.require(e.outWidth(0, "result") == D, "result width must equal the table's D = " + str(D));
  const std::string entry = e.entryBase() + "_V" + str(vocab) + "_D" + str(D);
  const std::string body = "  v4cuda::embed<" + e.inType(1) + ", " + e.outType(0) + ", " + str(vocab) + ", " + str(D) +
                           ">(" + e.in(0) + ", " + e.in(1) + ", out0, dyn);\n";
  e.expect("v4cuda::kElementwiseThreads == " + str(kElementwiseThreads), "the block size");
  return e.kernel(entry, body, kElementwiseThreads, gridX(e.tokens()));
}

EmittedKernel emitAdd(const StepView &view) {
  Emit e(view);
  e.requireFloatIns({0, 1});
  e.requireFloatOuts({0});
  const int64_t C = e.inWidth(0, "a");
  e.require(e.inWidth(1, "b") == C && e.outWidth(0, "result") == C, "a, b and the result must have equal widths");
  const std::string entry = e.entryBase() + "_C" + str(C);
  const std::string body = "  v4cuda::add<" + e.inType(0) + ", " + e.inType(1) + ", " + e.outType(0) + ", " +
                           str(e.tokens()) + ", " + str(C) + ">(" + e.in(0) + ", " + e.in(1) + ", out0, dyn);\n";
  e.expect("v4cuda::kElementwiseThreads == " + str(kElementwiseThreads), "the block size");
  return e.kernel(entry, body, kElementwiseThreads, elementwiseGrid(e.tokens() * C));
}

EmittedKernel emitSwiglu(const StepView &view) {
  Emit e(view);
  e.requireFloatIns({0, 1});
  e.requireFloatOuts({0});
  const int64_t I = e.inWidth(0, "gate");
  e.require(e.inWidth(1, "up") == I && e.outWidth(0, "result") == I, "gate, up and the result must have equal widths");
  const double limit = view.attrFloat("limit");
  const std::string entry = e.entryBase() + "_I" + str(I) + "_L" + numberTag(limit);
  const std::string body = "  v4cuda::swiglu<" + e.inType(0) + ", " + e.inType(1) + ", " + e.outType(0) + ", " +
                           str(e.tokens()) + ", " + str(I) + ">(" + e.in(0) + ", " + e.in(1) + ", out0, " +
                           floatLiteral(limit) + ", dyn);\n";
  e.expect("v4cuda::kElementwiseThreads == " + str(kElementwiseThreads), "the block size");
  return e.kernel(entry, body, kElementwiseThreads, elementwiseGrid(e.tokens() * I));
}

EmittedKernel emitRmsNorm(const StepView &view) {
  Emit e(view);
  e.requireFloatIns({0});
  e.requireFloatOuts({0});
  const int64_t C = e.inWidth(0, "x"), G = view.attrInt("group");
  e.require(G > 0 && C % G == 0, "group " + str(G) + " must divide the width " + str(C));
  e.require(e.outWidth(0, "result") == C, "result width must equal x's");
  const bool hasW = view.hasIn(1);
  if (hasW) {
    e.require(e.inShape(1) == std::vector<int64_t>{G}, "w must be [group] = [" + str(G) + "]");
    e.requireFloatIns({1});
  }
  const double eps = view.attrFloat("eps");
  const int64_t groups = C / G;
  const int64_t blocksPerRow = G <= 1024 ? ceilDiv(groups, kRmsNormThreads / 32) : groups;
  const std::string wType = hasW ? e.inType(1) : "float";
  const std::string entry = e.entryBase() + "_C" + str(C) + "_G" + str(G) + (hasW ? "_w" : "_now") + "_eps" +
                            numberTag(eps);
  const std::string body = "  v4cuda::rmsNorm<" + e.inType(0) + ", " + wType + ", " + e.outType(0) + ", " + str(C) +
                           ", " + str(G) + ", " + (hasW ? "true" : "false") + ">(" + e.in(0) + ", " +
                           (hasW ? e.in(1) : "static_cast<const float*>(nullptr)") + ", out0, " + floatLiteral(eps) +
                           ", dyn);\n";
  e.expect("v4cuda::kRmsNormThreads == " + str(kRmsNormThreads) + " && v4cuda::rmsNormBlocksPerRow<" + str(C) + ", " +
               str(G) + ">() == " + str(blocksPerRow),
           "the rms_norm geometry");
  return e.kernel(entry, body, kRmsNormThreads, gridX(e.tokens() * blocksPerRow));
}

EmittedKernel emitRope(const StepView &view) {
  Emit e(view);
  e.requireFloatIns({0});
  e.requireFloatOuts({0});
  e.requireDtype(view.in(1), v4rt::DType::I32, "positions");
  const int64_t C = e.inWidth(0, "x");
  const int64_t HD = view.attrInt("head_dim"), RD = view.attrInt("rope_dim");
  const std::vector<double> invFreq = view.attrFloats("inv_freq");
  const double scaling = view.attrFloat("scaling");
  const bool inverse = view.attrBool("inverse");
  e.require(HD > 0 && C % HD == 0, "head_dim " + str(HD) + " must divide the width " + str(C));
  e.require(HD % 2 == 0 && RD % 2 == 0 && RD >= 0 && RD <= HD, "head_dim and rope_dim must be even, rope_dim <= head_dim");
  e.require(static_cast<int64_t>(invFreq.size()) == RD / 2, "inv_freq must have rope_dim / 2 = " + str(RD / 2) + " entries");
  e.require(e.outWidth(0, "result") == C, "result width must equal x's");
  const std::string entry = e.entryBase() + "_C" + str(C) + "_HD" + str(HD) + "_RD" + str(RD) + "_f" +
                            tableTag(invFreq) + "_s" + numberTag(scaling) + (inverse ? "_inv" : "_fwd");
  const std::string table = entry + "_inv_freq";
  const std::string body = "  v4cuda::rope<" + e.inType(0) + ", " + e.outType(0) + ", " + str(e.tokens()) + ", " +
                           str(C) + ", " + str(HD) + ", " +
                           str(RD) + ">(" + e.in(0) + ", " + e.in(1) + ", out0, " + table + ", " +
                           floatLiteral(scaling) + ", " + (inverse ? "true" : "false") + ", dyn);\n";
  e.expect("v4cuda::kElementwiseThreads == " + str(kElementwiseThreads), "the block size");
  return e.kernel(entry, body, kElementwiseThreads, elementwiseGrid(e.tokens() * C / 2),
                  deviceFloatTable(table, invFreq));
}

} // namespace

std::vector<NamedEmitter> rowEmitters() {
  return {
      {"v4.embed", emitEmbed},
      {"v4.add", emitAdd},
      {"v4.swiglu", emitSwiglu},
      {"v4.rms_norm", emitRmsNorm},
      {"v4.rope", emitRope},
  };
}

} // namespace v4c::cuda::dense
