// Emitters of the dense family's routers (include/v4cuda/Router.cuh): the score
// router in its two launch shapes (split over the GPU up to 8 tokens, token
// blocks above) and the hash router.
#include <algorithm>

#include "codegen/cuda/DenseEmit.h"

namespace v4c::cuda::dense {
namespace {

constexpr uint32_t kRouterThreads = 1024;
constexpr int64_t kRouterSplitWarps = 8;  // Router.cuh kRouterSplitThreads / 32

// Checks gate [E, D] and the [T, k] results; returns E.
int64_t checkRouter(const Emit &e, int64_t D, int64_t k) {
  const auto &gate = e.inShape(1);
  e.require(gate.size() == 2 && gate[1] == D && gate[0] > 0 && gate[0] <= 4096,
            "gate must be [E, " + str(D) + "] with E <= 4096, got " + Emit::shapeText(gate));
  e.require(k >= 1 && k <= gate[0] && k <= 32, "top-k must be in [1, min(E, 32)], got " + str(k));
  e.require(e.outWidth(0, "weights") == k && e.outWidth(1, "experts") == k, "results must be [T, " + str(k) + "]");
  e.requireFloat(e.view.out(0).dtype, "weights");
  e.requireDtype(e.view.out(1), v4rt::DType::I32, "experts");
  return gate[0];
}

// Parts of D per expert in the split router: the fewest (a power of two) that
// give >= kSpreadBlocks blocks of 8 warps, each part at least one 16-byte
// load per lane.
int64_t routerParts(int64_t E, int64_t D, int64_t gateElemBytes) {
  const int64_t perLoad = std::max<int64_t>(1, 16 / gateElemBytes);
  int64_t parts = 1;
  while (ceilDiv(E * parts, kRouterSplitWarps) < kSpreadBlocks && D / (parts * 2) >= 32 * perLoad)
    parts *= 2;
  return parts;
}

EmittedKernel emitRouter(const StepView &view) {
  Emit e(view);
  e.requireFloatIns({0, 1, 2});
  const int64_t D = e.inWidth(0, "h"), k = view.attrInt("top_k");
  const int64_t E = checkRouter(e, D, k);
  e.require(e.inShape(2) == std::vector<int64_t>{E}, "bias must be [" + str(E) + "]");
  const double scaling = view.attrFloat("routed_scaling");
  const std::string types = e.inType(0) + ", " + e.inType(1) + ", " + e.inType(2) + ", " + e.outType(0) + ", ";
  const std::string args = "(" + e.in(0) + ", " + e.in(1) + ", " + e.in(2) + ", out0, out1, " + floatLiteral(scaling);
  const std::string tail = "_D" + str(D) + "_E" + str(E) + "_k" + str(k) + "_s" + numberTag(scaling);
  if (e.tokens() <= kGemvMaxTokens) {
    // Decode: the gate spread over the GPU, a warp per (expert, part of D).
    const int64_t parts = routerParts(E, D, static_cast<int64_t>(v4rt::dtypeSize(view.in(1).dtype)));
    const std::string entry = e.entryBase("split") + tail + "_P" + str(parts);
    const int64_t scratch = e.tokens() * E * parts;
    const std::string globals = "static __device__ float " + entry + "_partials[" + str(scratch) +
                                "];\nstatic __device__ unsigned int " + entry + "_done;\n";
    const std::string body = "  v4cuda::routerSplit<" + types + str(e.tokens()) + ", " + str(D) + ", " + str(E) +
                             ", " + str(k) + ", " + str(parts) + ">" + args + ", " + entry + "_partials, &" + entry +
                             "_done, dyn);\n";
    e.expect("v4cuda::kRouterSplitThreads == " + str(kRouterSplitWarps * 32) + " && v4cuda::routerSplitScratch<" +
                 str(e.tokens()) + ", " + str(E) + ", " + str(parts) + ">() == " + str(scratch),
             "the split router");
    return e.kernel(entry, body, static_cast<uint32_t>(kRouterSplitWarps * 32), gridX(ceilDiv(E * parts, kRouterSplitWarps)), globals);
  }
  // Prefill: blocks of 8 tokens (4 past 512 experts, 1 past 1024: shared
  // [tokens][E] score arrays), each gate row loaded once per block.
  const int64_t tokensPerBlock = E <= 512 ? 8 : (E <= 1024 ? 4 : 1);
  const std::string entry = e.entryBase() + tail;
  const std::string body = "  v4cuda::router<" + types + str(D) + ", " + str(E) + ", " + str(k) + ">" + args +
                           ", dyn);\n";
  e.expect("v4cuda::kRouterThreads == " + str(kRouterThreads) + " && v4cuda::routerTokensPerBlock<" + str(E) +
               ">() == " + str(tokensPerBlock),
           "the router geometry");
  return e.kernel(entry, body, kRouterThreads, gridX(ceilDiv(e.tokens(), tokensPerBlock)));
}

EmittedKernel emitHashRouter(const StepView &view) {
  Emit e(view);
  e.requireFloatIns({0, 1});
  e.requireDtype(view.in(2), v4rt::DType::I32, "tid2eid");
  e.requireDtype(view.in(3), v4rt::DType::I32, "ids");
  const auto &table = e.inShape(2);
  e.require(table.size() == 2 && table[0] > 0, "tid2eid must be [V, k], got " + Emit::shapeText(table));
  const int64_t D = e.inWidth(0, "h"), vocab = table[0], k = table[1];
  const int64_t E = checkRouter(e, D, k);
  const double scaling = view.attrFloat("routed_scaling");
  const std::string entry = e.entryBase() + "_D" + str(D) + "_E" + str(E) + "_k" + str(k) + "_V" + str(vocab) + "_s" +
                            numberTag(scaling);
  const std::string body = "  v4cuda::hashRouter<" + e.inType(0) + ", " + e.inType(1) + ", " + e.outType(0) + ", " +
                           str(D) + ", " + str(E) + ", " + str(k) + ", " + str(vocab) + ">(" + e.in(0) + ", " +
                           e.in(1) + ", " + e.in(2) + ", " + e.in(3) + ", out0, out1, " + floatLiteral(scaling) +
                           ", dyn);\n";
  e.expect("v4cuda::kRouterThreads == " + str(kRouterThreads), "the block size");
  return e.kernel(entry, body, kRouterThreads, gridX(e.tokens()));
}

} // namespace

std::vector<NamedEmitter> routerEmitters() {
  return {
      {"v4.router", emitRouter},
      {"v4.hash_router", emitHashRouter},
  };
}

} // namespace v4c::cuda::dense
