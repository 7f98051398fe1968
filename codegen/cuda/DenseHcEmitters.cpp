// Emitters of the dense family's mHC kernels (include/v4cuda/HyperConnection.cuh):
// hc_expand, hc_post, and hc_pre / hc_head / hc_post_pre in their two launch
// shapes (split across the GPU up to 8 tokens, token tiles above).
#include <cstdint>

#include "codegen/cuda/DenseEmit.h"

namespace v4c::cuda::dense {
namespace {

constexpr uint32_t kHcThreads = 512;
constexpr int64_t kHcTileTokens = 8; // HyperConnection.cuh: tokens per block at prefill

// hc and D of streams [T, hc*D] with `D` from another operand.
int64_t hcStreams(const Emit &e, int64_t width, int64_t D) {
  const int64_t hc = e.view.attrInt("hc");
  e.require(hc >= 1 && hc <= 8, "hc must be in [1, 8], got " + str(hc));
  e.require(width == hc * D, "streams must be [T, hc * D] = [T, " + str(hc * D) + "], got width " + str(width));
  return hc;
}

// fn [rows, hc*D], base [rows], scale [scales] of hc_pre / hc_head.
void checkMixWeights(const Emit &e, int64_t fnOp, int64_t rows, int64_t width, int64_t scales) {
  e.require(e.inShape(fnOp) == std::vector<int64_t>{rows, width},
            "fn must be [" + str(rows) + ", " + str(width) + "], got " + Emit::shapeText(e.inShape(fnOp)));
  e.require(e.inShape(fnOp + 1) == std::vector<int64_t>{rows}, "base must be [" + str(rows) + "]");
  e.require(e.inShape(fnOp + 2) == std::vector<int64_t>{scales}, "scale must be [" + str(scales) + "]");
  e.requireFloatIns({fnOp, fnOp + 1, fnOp + 2});
}

EmittedKernel emitHcExpand(const StepView &view) {
  Emit e(view);
  e.requireFloatIns({0});
  e.requireFloatOuts({0});
  const int64_t D = e.inWidth(0, "x");
  const int64_t hc = hcStreams(e, e.outWidth(0, "result"), D);
  const std::string entry = e.entryBase() + "_hc" + str(hc) + "_D" + str(D);
  const std::string body = "  v4cuda::hcExpand<" + e.inType(0) + ", " + e.outType(0) + ", " + str(e.tokens()) + ", " +
                           str(hc) + ", " + str(D) + ">(" + e.in(0) + ", out0, dyn);\n";
  e.expect("v4cuda::kElementwiseThreads == " + str(kElementwiseThreads), "the block size");
  return e.kernel(entry, body, kElementwiseThreads, elementwiseGrid(e.tokens() * hc * D));
}

EmittedKernel emitHcPost(const StepView &view) {
  Emit e(view);
  e.requireFloatIns({0, 1, 2, 3});
  e.requireFloatOuts({0});
  const int64_t D = e.inWidth(1, "y");
  const int64_t hc = hcStreams(e, e.inWidth(0, "X"), D);
  e.require(e.inWidth(2, "post") == hc && e.inWidth(3, "comb") == hc * hc, "post must be [T, hc], comb [T, hc*hc]");
  e.require(e.outWidth(0, "result") == hc * D, "result must be [T, hc * D]");
  const std::string entry = e.entryBase() + "_hc" + str(hc) + "_D" + str(D);
  const std::string body = "  v4cuda::hcPost<" + e.inType(0) + ", " + e.inType(1) + ", " + e.inType(2) + ", " +
                           e.inType(3) + ", " + e.outType(0) + ", " + str(e.tokens()) + ", " + str(hc) + ", " + str(D) + ">(" +
                           e.in(0) + ", " + e.in(1) + ", " + e.in(2) + ", " + e.in(3) + ", out0, dyn);\n";
  e.expect("v4cuda::kElementwiseThreads == " + str(kElementwiseThreads), "the block size");
  return e.kernel(entry, body, kElementwiseThreads, elementwiseGrid(e.tokens() * D));
}

std::string hcEpsTag(const StepView &view) {
  return "_ne" + numberTag(view.attrFloat("norm_eps")) + "_he" + numberTag(view.attrFloat("hc_eps"));
}

// The split shape of hc_pre / hc_head / hc_post_pre (T <= 8): PARTS blocks
// of one 16-byte fn load per lane across the HC*D columns, and the entry's
// scratch (partial dots, the hand-off counter).
struct HcSplit {
  bool split = false;
  int64_t parts = 0, scratch = 0;
  std::string globals;
};
HcSplit hcSplit(Emit &e, const std::string &entry, int64_t fnOperand, int64_t width, int64_t rows) {
  HcSplit s;
  s.split = e.tokens() <= kGemvMaxTokens;
  if (!s.split)
    return s;
  const v4rt::DType fnType = e.view.in(fnOperand).dtype;
  const int64_t chunk = 32 * (16 / static_cast<int64_t>(v4rt::dtypeSize(fnType)));
  e.require(width % (chunk / 32) == 0, "hc * D must be a multiple of " + str(chunk / 32) + " (16-byte fn loads)");
  s.parts = ceilDiv(width, chunk);
  s.scratch = e.tokens() * rows * s.parts;
  s.globals = "static __device__ float " + entry + "_partials[" + str(s.scratch) + "];\nstatic __device__ unsigned int " +
              entry + "_done;\n";
  e.expect("v4cuda::hcSplitChunk<" + std::string(cTypeName(fnType)) + ">() == " + str(chunk) +
               " && v4cuda::hcSplitScratch<" + str(e.tokens()) + ", " + str(rows) + ", " + str(s.parts) +
               ">() == " + str(s.scratch),
           "the split mHC geometry");
  return s;
}
std::string hcSplitArgs(const std::string &entry) { return entry + "_partials, &" + entry + "_done, "; }
// The prefill shape (T > 8): token tiles of kHcTileTokens per block.
void expectHcTile(Emit &e) {
  e.expect("v4cuda::kHcThreads == " + str(kHcThreads) + " && v4cuda::kHcTileTokens == " + str(kHcTileTokens),
           "the mHC geometry");
}

EmittedKernel emitHcPre(const StepView &view) {
  Emit e(view);
  e.requireFloatIns({0});
  e.requireFloatOuts({0, 1, 2});
  const int64_t D = e.outWidth(0, "collapsed");
  const int64_t hc = hcStreams(e, e.inWidth(0, "X"), D);
  checkMixWeights(e, 1, (2 + hc) * hc, hc * D, 3);
  e.require(e.outWidth(1, "post") == hc && e.outWidth(2, "comb") == hc * hc, "post must be [T, hc], comb [T, hc*hc]");
  const int64_t iters = view.attrInt("sinkhorn_iters");
  const bool split = e.tokens() <= kGemvMaxTokens;
  const std::string entry = e.entryBase(split ? "split" : "tile") + "_hc" + str(hc) + "_D" + str(D) + hcEpsTag(view) +
                            "_it" + str(iters);
  const HcSplit sp = hcSplit(e, entry, 1, hc * D, (2 + hc) * hc);
  const std::string body = "  v4cuda::hcPre" + std::string(split ? "Split" : "Tile") + "<" + e.inType(0) + ", " +
                           e.inType(1) + ", " + e.inType(2) + ", " + e.inType(3) + ", " + e.outType(0) + ", " +
                           e.outType(1) + ", " + e.outType(2) + ", " + str(e.tokens()) + ", " + str(hc) + ", " + str(D) +
                           (split ? ", " + str(sp.parts) : "") + ">(" + e.in(0) + ", " + e.in(1) + ", " + e.in(2) +
                           ", " + e.in(3) + ", out0, out1, out2, " + floatLiteral(view.attrFloat("norm_eps")) + ", " +
                           floatLiteral(view.attrFloat("hc_eps")) + ", " + str(iters) + ", " +
                           (split ? hcSplitArgs(entry) : "") + "dyn);\n";
  expectHcTile(e);
  return e.kernel(entry, body, kHcThreads, gridX(split ? sp.parts : ceilDiv(e.tokens(), kHcTileTokens)), sp.globals);
}

EmittedKernel emitHcHead(const StepView &view) {
  Emit e(view);
  e.requireFloatIns({0});
  e.requireFloatOuts({0});
  const int64_t D = e.outWidth(0, "result");
  const int64_t hc = hcStreams(e, e.inWidth(0, "X"), D);
  checkMixWeights(e, 1, hc, hc * D, 1);
  const bool split = e.tokens() <= kGemvMaxTokens;
  const std::string entry = e.entryBase(split ? "split" : "tile") + "_hc" + str(hc) + "_D" + str(D) + hcEpsTag(view);
  const HcSplit sp = hcSplit(e, entry, 1, hc * D, hc);
  const std::string body = "  v4cuda::hcHead" + std::string(split ? "Split" : "Tile") + "<" + e.inType(0) + ", " +
                           e.inType(1) + ", " + e.inType(2) + ", " + e.inType(3) + ", " + e.outType(0) + ", " +
                           str(e.tokens()) + ", " + str(hc) + ", " + str(D) +
                           (split ? ", " + str(sp.parts) : "") + ">(" + e.in(0) + ", " + e.in(1) + ", " + e.in(2) +
                           ", " + e.in(3) + ", out0, " + floatLiteral(view.attrFloat("norm_eps")) + ", " +
                           floatLiteral(view.attrFloat("hc_eps")) + ", " + (split ? hcSplitArgs(entry) : "") +
                           "dyn);\n";
  expectHcTile(e);
  return e.kernel(entry, body, kHcThreads, gridX(split ? sp.parts : ceilDiv(e.tokens(), kHcTileTokens)), sp.globals);
}

// v4.hc_post_pre X, y, post, comb, fn, base, scale -> new_streams, collapsed, new_post, new_comb.
EmittedKernel emitHcPostPre(const StepView &view) {
  Emit e(view);
  e.requireFloatIns({0, 1, 2, 3});
  e.requireFloatOuts({0, 1, 2, 3});
  const int64_t D = e.inWidth(1, "y");
  const int64_t hc = hcStreams(e, e.inWidth(0, "X"), D);
  e.require(e.inWidth(2, "post") == hc && e.inWidth(3, "comb") == hc * hc, "post must be [T, hc], comb [T, hc*hc]");
  checkMixWeights(e, 4, (2 + hc) * hc, hc * D, 3);
  e.require(e.outWidth(0, "new_streams") == hc * D && e.outWidth(1, "collapsed") == D &&
                e.outWidth(2, "new_post") == hc && e.outWidth(3, "new_comb") == hc * hc,
            "results must be new_streams [T, hc*D], collapsed [T, D], new_post [T, hc], new_comb [T, hc*hc]");
  const int64_t iters = view.attrInt("sinkhorn_iters");
  const bool split = e.tokens() <= kGemvMaxTokens;
  const std::string entry = e.entryBase(split ? "split" : "tile") + "_hc" + str(hc) + "_D" + str(D) + hcEpsTag(view) +
                            "_it" + str(iters);
  const HcSplit sp = hcSplit(e, entry, 4, hc * D, (2 + hc) * hc);
  std::string types;
  for (int64_t i = 0; i < 7; ++i)
    types += e.inType(i) + ", ";
  for (int64_t r = 0; r < 4; ++r)
    types += e.outType(r) + ", ";
  std::string args;
  for (int64_t i = 0; i < 7; ++i)
    args += e.in(i) + ", ";
  const std::string body = "  v4cuda::hcPostPre" + std::string(split ? "Split" : "Tile") + "<" + types +
                           str(e.tokens()) + ", " + str(hc) + ", " + str(D) +
                           (split ? ", " + str(sp.parts) : "") + ">(" + args + "out0, out1, out2, out3, " +
                           floatLiteral(view.attrFloat("norm_eps")) + ", " + floatLiteral(view.attrFloat("hc_eps")) +
                           ", " + str(iters) + ", " + (split ? hcSplitArgs(entry) : "") + "dyn);\n";
  expectHcTile(e);
  return e.kernel(entry, body, kHcThreads, gridX(split ? sp.parts : ceilDiv(e.tokens(), kHcTileTokens)), sp.globals);
}

} // namespace

std::vector<NamedEmitter> hcEmitters() {
  return {
      {"v4.hc_expand", emitHcExpand},
      {"v4.hc_post", emitHcPost},
      {"v4.hc_pre", emitHcPre},
      {"v4.hc_head", emitHcHead},
      {"v4.hc_post_pre", emitHcPostPre},
  };
}

} // namespace v4c::cuda::dense
