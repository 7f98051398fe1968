// Verifiers of the v4 ops. ODS already checked ranks and element types; these
// check that sizes agree with each other and with the attributes, and say how
// to fix a mismatch. A dynamic `?` dimension matches any size.
#include "dialects/v4/V4Ops.h"
#include "dialects/v4/VerifierSupport.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/TypeUtilities.h"

#include <string>
#include <utility>

using namespace mlir;
using namespace v4c::v4;

bool v4c::v4::isQuantizedTensor(Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  return tensor && isa_and_nonnull<QuantAttr>(tensor.getEncoding());
}

bool v4c::v4::isWeightTensor(Type type, int64_t rank) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  if (!tensor || tensor.getRank() != rank)
    return false;
  Type element = tensor.getElementType();
  return element.isF32() || element.isBF16() || isQuantizedTensor(type);
}

using namespace v4c::v4::verify;

namespace {

// hc copies of D channels: cols = hc*D. Returns D (or ? when cols is).
FailureOr<int64_t> streamWidth(Operation *op, StringRef name, Value stacked, int64_t hc) {
  if (failed(expectPositive(op, "hc", hc)))
    return failure();
  int64_t cols = colsOf(stacked);
  if (ShapedType::isDynamic(cols))
    return ShapedType::kDynamic;
  if (cols % hc != 0)
    return op->emitOpError() << "`" << name << "` has " << cols
                             << " channels, not a multiple of hc = " << hc
                             << "; it must stack hc streams of D channels";
  return cols / hc;
}

} // namespace

//===----------------------------------------------------------------------===//
// Weights
//===----------------------------------------------------------------------===//

LogicalResult GlobalOp::verify() {
  auto type = cast<RankedTensorType>(getType());
  Type element = type.getElementType();
  if (getSymName().empty())
    return emitOpError() << "needs a non-empty checkpoint tensor name";
  // i8: the ue8m0 block scales of a quantized weight (v4-quantize).
  if (element.isF32() || element.isBF16() || element.isSignlessInteger(32) ||
      element.isSignlessInteger(8) || isQuantizedTensor(type))
    return success();
  return emitOpError() << "weight @\"" << getSymName() << "\" has element type " << element
                       << "; use f32, bf16, i32, i8 (block scales), or a #v4.quant encoding";
}

LogicalResult WeightOp::verify() {
  auto type = cast<RankedTensorType>(getType());
  Type element = type.getElementType();
  if (element.isF32() || element.isBF16() || element.isSignlessInteger(32) ||
      element.isSignlessInteger(8) || isQuantizedTensor(type))
    return success();
  return emitOpError() << "result element type " << element
                       << " cannot hold a weight; use f32, bf16, i32, i8 (block scales), or a #v4.quant encoding";
}

LogicalResult WeightOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  auto global = symbolTable.lookupNearestSymbolFrom<GlobalOp>(*this, getNameAttr());
  if (!global)
    return emitOpError() << "refers to @\"" << getName()
                         << "\", which no v4.global declares; add `v4.global @\""
                         << getName() << "\" : " << getType() << "` to the module";
  if (global.getType() != getType())
    return emitOpError() << "result type " << getType() << " differs from the type "
                         << global.getType() << " that v4.global @\"" << getName()
                         << "\" declares; use the global's type";
  return success();
}

//===----------------------------------------------------------------------===//
// Embedding and mHC
//===----------------------------------------------------------------------===//

LogicalResult EmbedOp::verify() {
  if (failed(verifyTokens(*this, {{"ids", getIds()}, {"result", getResult()}})))
    return failure();
  return expectSize(*this, "result width", colsOf(getResult()), colsOf(getTable()),
                    "the table's row width D");
}

LogicalResult HcExpandOp::verify() {
  int64_t hc = intAttr(*this, "hc");
  if (failed(expectPositive(*this, "hc", hc)) ||
      failed(verifyTokens(*this, {{"x", getX()}, {"result", getResult()}})) ||
      failed(verifySameElementType(*this, {{"x", getX()}, {"result", getResult()}})))
    return failure();
  return expectSize(*this, "result width", colsOf(getResult()), times(hc, colsOf(getX())),
                    "hc * x width");
}

LogicalResult HcPreOp::verify() {
  int64_t hc = intAttr(*this, "hc");
  FailureOr<int64_t> width = streamWidth(*this, "X", getX(), hc);
  if (failed(width) ||
      failed(verifyTokens(*this, {{"X", getX()},
                                  {"collapsed", getCollapsed()},
                                  {"post", getPost()},
                                  {"comb", getComb()}})) ||
      failed(expectPositive(*this, "norm_eps", floatAttr(*this, "norm_eps"))) ||
      failed(expectNonNegative(*this, "hc_eps", floatAttr(*this, "hc_eps"))) ||
      failed(expectPositive(*this, "sinkhorn_iters", intAttr(*this, "sinkhorn_iters"))))
    return failure();
  int64_t mixes = (2 + hc) * hc;
  if (failed(expectSize(*this, "fn rows", rowsOf(getFn()), mixes, "(2+hc)*hc mixing weights")) ||
      failed(expectSize(*this, "fn columns", colsOf(getFn()), colsOf(getX()), "X width hc*D")) ||
      failed(expectSize(*this, "base size", dimOf(getBase(), 0), mixes, "(2+hc)*hc")) ||
      failed(expectSize(*this, "scale size", dimOf(getScale(), 0), 3, "pre, post, comb")) ||
      failed(expectSize(*this, "collapsed width", colsOf(getCollapsed()), *width, "D = X width / hc")) ||
      failed(expectSize(*this, "post width", colsOf(getPost()), hc, "hc")) ||
      failed(expectSize(*this, "comb width", colsOf(getComb()), hc * hc, "hc*hc")))
    return failure();
  return verifySameElementType(*this, {{"X", getX()}, {"collapsed", getCollapsed()}});
}

LogicalResult HcPostOp::verify() {
  int64_t hc = intAttr(*this, "hc");
  FailureOr<int64_t> width = streamWidth(*this, "X", getX(), hc);
  if (failed(width) ||
      failed(verifyTokens(*this, {{"X", getX()},
                                  {"y", getY()},
                                  {"post", getPost()},
                                  {"comb", getComb()},
                                  {"result", getResult()}})))
    return failure();
  if (failed(expectSize(*this, "y width", colsOf(getY()), *width, "D = X width / hc")) ||
      failed(expectSize(*this, "post width", colsOf(getPost()), hc, "hc")) ||
      failed(expectSize(*this, "comb width", colsOf(getComb()), hc * hc, "hc*hc")) ||
      failed(expectSize(*this, "result width", colsOf(getResult()), colsOf(getX()), "X width")))
    return failure();
  return verifySameElementType(*this, {{"X", getX()}, {"y", getY()}, {"result", getResult()}});
}

LogicalResult HcHeadOp::verify() {
  int64_t hc = intAttr(*this, "hc");
  FailureOr<int64_t> width = streamWidth(*this, "X", getX(), hc);
  if (failed(width) ||
      failed(verifyTokens(*this, {{"X", getX()}, {"result", getResult()}})) ||
      failed(expectPositive(*this, "norm_eps", floatAttr(*this, "norm_eps"))) ||
      failed(expectNonNegative(*this, "hc_eps", floatAttr(*this, "hc_eps"))))
    return failure();
  if (failed(expectSize(*this, "fn rows", rowsOf(getFn()), hc, "hc")) ||
      failed(expectSize(*this, "fn columns", colsOf(getFn()), colsOf(getX()), "X width hc*D")) ||
      failed(expectSize(*this, "base size", dimOf(getBase(), 0), hc, "hc")) ||
      failed(expectSize(*this, "scale size", dimOf(getScale(), 0), 1, "one scale")) ||
      failed(expectSize(*this, "result width", colsOf(getResult()), *width, "D = X width / hc")))
    return failure();
  return verifySameElementType(*this, {{"X", getX()}, {"result", getResult()}});
}

//===----------------------------------------------------------------------===//
// Norm and projections
//===----------------------------------------------------------------------===//

LogicalResult RmsNormOp::verify() {
  int64_t group = intAttr(*this, "group");
  if (failed(expectPositive(*this, "group", group)) ||
      failed(expectPositive(*this, "eps", floatAttr(*this, "eps"))) ||
      failed(verifyTokens(*this, {{"x", getX()}, {"result", getResult()}})) ||
      failed(verifySameElementType(*this, {{"x", getX()}, {"result", getResult()}})))
    return failure();
  int64_t channels = colsOf(getX());
  if (!ShapedType::isDynamic(channels) && channels % group != 0)
    return emitOpError() << "x has " << channels << " channels, not a multiple of group = "
                         << group << "; set group to a divisor (the whole width or head_dim)";
  if (getW() && failed(expectSize(*this, "w size", dimOf(getW(), 0), group,
                                  "one weight per channel of a group")))
    return failure();
  return expectSize(*this, "result width", colsOf(getResult()), channels, "x width");
}

LogicalResult LinearOp::verify() {
  if (failed(verifyTokens(*this, {{"x", getX()}, {"result", getResult()}})) ||
      failed(verifyProjectionResultType(*this, {"x", getX()}, {"result", getResult()})) ||
      failed(expectSize(*this, "w columns", colsOf(getW()), colsOf(getX()),
                        "the reduction size K = x width; w is [N, K]")))
    return failure();
  return expectSize(*this, "result width", colsOf(getResult()), rowsOf(getW()),
                    "N = w rows");
}

LogicalResult GroupedLinearOp::verify() {
  int64_t groups = intAttr(*this, "groups");
  if (failed(expectPositive(*this, "groups", groups)) ||
      failed(verifyTokens(*this, {{"x", getX()}, {"result", getResult()}})) ||
      failed(verifySameElementType(*this, {{"x", getX()}, {"result", getResult()}})))
    return failure();
  int64_t inWidth = colsOf(getX()), outRows = rowsOf(getW());
  if (!ShapedType::isDynamic(inWidth) && inWidth % groups != 0)
    return emitOpError() << "x width " << inWidth << " is not a multiple of groups = "
                         << groups;
  if (!ShapedType::isDynamic(outRows) && outRows % groups != 0)
    return emitOpError() << "w rows " << outRows << " is not a multiple of groups = "
                         << groups << "; w must be [G*R, Kg]";
  int64_t groupWidth = ShapedType::isDynamic(inWidth) ? inWidth : inWidth / groups;
  if (failed(expectSize(*this, "w columns", colsOf(getW()), groupWidth,
                        "Kg = x width / groups")))
    return failure();
  return expectSize(*this, "result width", colsOf(getResult()), outRows, "G*R = w rows");
}

LogicalResult RopeOp::verify() {
  int64_t headDim = intAttr(*this, "head_dim");
  if (failed(verifyRopeAttrs(*this, headDim, intAttr(*this, "rope_dim"), getInvFreq())) ||
      failed(verifyTokens(*this, {{"x", getX()},
                                  {"positions", getPositions()},
                                  {"result", getResult()}})))
    return failure();
  int64_t channels = colsOf(getX());
  if (!ShapedType::isDynamic(channels) && channels % headDim != 0)
    return emitOpError() << "x has " << channels << " channels, not a multiple of head_dim = "
                         << headDim << "; heads are packed as [T, H*head_dim]";
  if (getResult().getType() != getX().getType())
    return emitOpError() << "result type " << getResult().getType()
                         << " must equal the type of x " << getX().getType();
  return success();
}

//===----------------------------------------------------------------------===//
// Attention: compressor, indexer, attention, window cache
//===----------------------------------------------------------------------===//

LogicalResult CompressOp::verify() {
  int64_t rate = intAttr(*this, "rate"), headDim = intAttr(*this, "head_dim");
  bool overlap = cast<BoolAttr>((*this)->getAttr("overlap")).getValue();
  const CompressorShape shape = compressorShape(headDim, overlap);
  if (failed(verifyTokens(*this, {{"kv", getKv()},
                                  {"gate", getGate()},
                                  {"positions", getPositions()}})) ||
      failed(expectSize(*this, "kv width", colsOf(getKv()), shape.inWidth, shape.inRule)) ||
      failed(expectSize(*this, "gate width", colsOf(getGate()), shape.inWidth, shape.inRule)) ||
      failed(verifyCompressor(*this, rate, headDim, overlap, intAttr(*this, "rope_dim"),
                              getInvFreq(), floatAttr(*this, "eps"), getPositionBias(),
                              getNormW(), getState().getType(), getEntries().getType(),
                              getNewState().getType(), getNewEntries().getType())))
    return failure();
  return verifySameElementType(*this, {{"kv", getKv()}, {"gate", getGate()}});
}

LogicalResult IndexerTopkOp::verify() {
  int64_t heads = intAttr(*this, "heads"), headDim = intAttr(*this, "head_dim");
  int64_t topK = intAttr(*this, "top_k"), rate = intAttr(*this, "rate");
  if (failed(expectPositive(*this, "heads", heads)) ||
      failed(expectPositive(*this, "head_dim", headDim)) ||
      failed(expectPositive(*this, "top_k", topK)) ||
      failed(expectPositive(*this, "rate", rate)) ||
      failed(verifyTokens(*this, {{"q", getQ()},
                                  {"weights", getWeights()},
                                  {"positions", getPositions()},
                                  {"result", getResult()}})))
    return failure();
  CacheType keys = getKeys().getType();
  if (failed(expectSize(*this, "q width", colsOf(getQ()), heads * headDim, "heads*head_dim")) ||
      failed(expectSize(*this, "weights width", colsOf(getWeights()), heads,
                        "one weight per indexer head")) ||
      failed(expectSize(*this, "keys width", keys.getWidth(), headDim, "head_dim")) ||
      failed(expectSize(*this, "keys rate", keys.getRate(), rate, "attribute rate")))
    return failure();
  return expectSize(*this, "result width", colsOf(getResult()), topK, "top_k");
}

LogicalResult AttentionOp::verify() {
  int64_t heads = intAttr(*this, "num_heads"), headDim = intAttr(*this, "head_dim");
  int64_t window = intAttr(*this, "window"), rate = intAttr(*this, "rate");
  if (failed(expectPositive(*this, "num_heads", heads)) ||
      failed(expectPositive(*this, "head_dim", headDim)) ||
      failed(expectPositive(*this, "window", window)) ||
      failed(expectPositive(*this, "scale", floatAttr(*this, "scale"))))
    return failure();
  if (rate < 0)
    return emitOpError() << "attribute `rate` must be >= 0 (0: sliding only), got " << rate;
  SmallVector<Named> tokenMajor = {
      {"q", getQ()}, {"kv", getKv()}, {"positions", getPositions()}, {"result", getResult()}};
  if (getTopk())
    tokenMajor.push_back({"topk", getTopk()});
  if (failed(verifyTokens(*this, tokenMajor)))
    return failure();
  CacheType windowCache = getWindowCache().getType();
  if (failed(expectSize(*this, "q width", colsOf(getQ()), heads * headDim,
                        "num_heads*head_dim")) ||
      failed(expectSize(*this, "kv width", colsOf(getKv()), headDim,
                        "head_dim: one shared key/value head")) ||
      failed(expectSize(*this, "sinks size", dimOf(getSinks(), 0), heads,
                        "one sink logit per head")) ||
      failed(expectSize(*this, "window cache rows", windowCache.getRows(), window,
                        "attribute window")) ||
      failed(expectSize(*this, "window cache width", windowCache.getWidth(), headDim,
                        "head_dim")) ||
      failed(expectSize(*this, "result width", colsOf(getResult()), heads * headDim,
                        "num_heads*head_dim")))
    return failure();
  if (rate > 0 && !getEntries())
    return emitOpError() << "rate = " << rate
                         << " attends to compressed entries; pass them with `entries %e`";
  if (rate == 0 && getEntries())
    return emitOpError() << "has an entries cache but rate = 0 (sliding only); set rate "
                            "to the compression rate or drop the entries";
  if (getTopk() && !getEntries())
    return emitOpError() << "topk selects compressed entries; it needs `entries %e` too";
  if (getEntries()) {
    CacheType entries = getEntries().getType();
    if (failed(expectSize(*this, "entries width", entries.getWidth(), headDim, "head_dim")) ||
        failed(expectSize(*this, "entries rate", entries.getRate(), rate, "attribute rate")))
      return failure();
  }
  return verifySameElementType(*this, {{"q", getQ()}, {"kv", getKv()}, {"result", getResult()}});
}

LogicalResult CacheAppendOp::verify() {
  CacheType window = getWindow().getType();
  if (failed(verifyTokens(*this, {{"kv", getKv()}, {"positions", getPositions()}})) ||
      failed(expectSize(*this, "kv width", colsOf(getKv()), window.getWidth(),
                        "the window cache width (head_dim)")))
    return failure();
  if (getNewWindow().getType() != window)
    return emitOpError() << "new_window type " << getNewWindow().getType()
                         << " must equal the window operand type " << window;
  Type element = getElementTypeOrSelf(getKv().getType());
  if (!window.storesRowsOf(element))
    return emitOpError() << "kv element type " << element << " cannot be stored in a "
                         << window.getElementType()
                         << " cache; give kv the cache's element type (or f32, which a bf16 "
                            "or f8E4M3FN cache rounds on store)";
  return success();
}

//===----------------------------------------------------------------------===//
// Mixture of experts
//===----------------------------------------------------------------------===//

// Routers: h [T, D], gate [E, D]; weights and experts [T, k].
static LogicalResult verifyRouting(Operation *op, Value h, Value gate, Value weights,
                                   Value experts, int64_t topK) {
  if (failed(verifyTokens(op, {{"h", h}, {"weights", weights}, {"experts", experts}})) ||
      failed(expectSize(op, "gate columns", colsOf(gate), colsOf(h),
                        "D = h width; gate is [E, D]")) ||
      failed(expectSize(op, "weights width", colsOf(weights), topK, "k experts per token")) ||
      failed(expectSize(op, "experts width", colsOf(experts), topK, "k experts per token")))
    return failure();
  if (failed(expectPositive(op, "routed_scaling", floatAttr(op, "routed_scaling"))))
    return failure();
  return success();
}

LogicalResult RouterOp::verify() {
  int64_t topK = intAttr(*this, "top_k"), experts = rowsOf(getGate());
  if (failed(expectPositive(*this, "top_k", topK)))
    return failure();
  if (!ShapedType::isDynamic(experts) && topK > experts)
    return emitOpError() << "top_k = " << topK << " exceeds the " << experts
                         << " experts of gate";
  if (failed(expectSize(*this, "bias size", dimOf(getBias(), 0), experts,
                        "one bias per expert (gate rows)")))
    return failure();
  return verifyRouting(*this, getH(), getGate(), getWeights(), getExperts(), topK);
}

LogicalResult HashRouterOp::verify() {
  int64_t topK = colsOf(getTid2eid());
  if (failed(verifyTokens(*this, {{"h", getH()}, {"ids", getIds()}})))
    return failure();
  return verifyRouting(*this, getH(), getGate(), getWeights(), getExperts(), topK);
}

LogicalResult MoeOp::verify() {
  if (failed(expectPositive(*this, "swiglu_limit", floatAttr(*this, "swiglu_limit"))) ||
      failed(verifyTokens(*this, {{"h", getH()},
                                  {"weights", getWeights()},
                                  {"experts", getExperts()},
                                  {"result", getResult()}})) ||
      failed(verifySameElementType(*this, {{"h", getH()}, {"result", getResult()}})))
    return failure();
  auto gateUp = cast<ShapedType>(getGateUp().getType());
  auto down = cast<ShapedType>(getDown().getType());
  int64_t hidden = colsOf(getH()), fused = gateUp.getDimSize(1);
  if (!ShapedType::isDynamic(fused) && fused % 2 != 0)
    return emitOpError() << "gate_up has " << fused
                         << " rows per expert; it must be even: [gate; up] of I rows each";
  int64_t inner = ShapedType::isDynamic(fused) ? fused : fused / 2;
  if (failed(expectSize(*this, "experts width", colsOf(getExperts()), colsOf(getWeights()),
                        "weights width k")) ||
      failed(expectSize(*this, "gate_up dim 2", gateUp.getDimSize(2), hidden, "D = h width")) ||
      failed(expectSize(*this, "down dim 0", down.getDimSize(0), gateUp.getDimSize(0),
                        "E = gate_up dim 0")) ||
      failed(expectSize(*this, "down dim 1", down.getDimSize(1), hidden, "D = h width")) ||
      failed(expectSize(*this, "down dim 2", down.getDimSize(2), inner,
                        "I = gate_up dim 1 / 2")))
    return failure();
  return expectSize(*this, "result width", colsOf(getResult()), hidden, "D = h width");
}

LogicalResult SwigluOp::verify() {
  if (failed(expectPositive(*this, "limit", floatAttr(*this, "limit"))) ||
      failed(verifyTokens(*this, {{"gate", getGate()}, {"up", getUp()}, {"result", getResult()}})) ||
      failed(verifySameElementType(*this, {{"gate", getGate()}, {"up", getUp()},
                                           {"result", getResult()}})) ||
      failed(expectSize(*this, "up width", colsOf(getUp()), colsOf(getGate()), "gate width")))
    return failure();
  return expectSize(*this, "result width", colsOf(getResult()), colsOf(getGate()),
                    "gate width");
}

LogicalResult AddOp::verify() {
  if (failed(verifyTokens(*this, {{"a", getA()}, {"b", getB()}, {"result", getResult()}})) ||
      failed(verifySameElementType(*this, {{"a", getA()}, {"b", getB()}, {"result", getResult()}})) ||
      failed(expectSize(*this, "b width", colsOf(getB()), colsOf(getA()), "a width")))
    return failure();
  return expectSize(*this, "result width", colsOf(getResult()), colsOf(getA()), "a width");
}

#define GET_OP_CLASSES
#include "dialects/v4/V4Ops.cpp.inc"
