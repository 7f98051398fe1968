// Verifiers of the fused v4 ops (V4FusedOps.td). A fused op must be exactly
// the composition it replaces, so each check mirrors a check of one of the
// component ops and says which size is wrong. A dynamic `?` matches anything.
#include "dialects/v4/V4Ops.h"
#include "dialects/v4/VerifierSupport.h"

#include "mlir/IR/TypeUtilities.h"

#include <string>

using namespace mlir;
using namespace v4c::v4;
using namespace v4c::v4::verify;

namespace {

// A projection weight [N, K] applied to an activation of width K.
LogicalResult expectProjection(Operation *op, StringRef name, Value weight, Value input) {
  return expectSize(op, Twine(name) + " columns", colsOf(weight), colsOf(input),
                    "the input width K; a weight is [N, K]");
}

} // namespace

LogicalResult NormLinearOp::verify() {
  int64_t group = getGroupAttr().getInt();
  if (failed(expectPositive(*this, "group", static_cast<double>(group))) ||
      failed(expectPositive(*this, "eps", getEps().convertToDouble())))
    return failure();
  if (getWeights().empty())
    return emitOpError() << "needs at least one weight: it is a norm feeding linears";
  if (getWeights().size() != getResults().size())
    return emitOpError() << "has " << getWeights().size() << " weights but " << getResults().size()
                         << " results; give one result per weight";
  int64_t channels = colsOf(getX());
  if (!ShapedType::isDynamic(channels) && channels % group != 0)
    return emitOpError() << "x has " << channels << " channels, not a multiple of group = " << group;
  if (getNormW() && failed(expectSize(*this, "norm_w size", dimOf(getNormW(), 0), group,
                                      "one weight per channel of a group")))
    return failure();
  SmallVector<std::pair<StringRef, Value>> tokenMajor = {{"x", getX()}};
  Type element = getElementTypeOrSelf(getX().getType());
  for (auto [index, pair] : llvm::enumerate(llvm::zip(getWeights(), getResults()))) {
    auto [weight, result] = pair;
    tokenMajor.push_back({"result", result});
    if (failed(expectProjection(*this, "weight #" + std::to_string(index), weight, getX())) ||
        failed(expectSize(*this, "result #" + std::to_string(index) + " width", colsOf(result),
                          rowsOf(weight), "N = its weight's rows")))
      return failure();
    Type resultElement = getElementTypeOrSelf(result.getType());
    if (resultElement != element && !resultElement.isF32()) // f32: widened logits (v4-cast-precision)
      return emitOpError() << "result #" << index << " has element type " << resultElement << " but x has "
                           << element << "; a projection keeps x's element type or widens to f32";
  }
  return verifyTokens(*this, tokenMajor);
}

LogicalResult LinearSwigluOp::verify() {
  if (failed(expectPositive(*this, "limit", getLimit().convertToDouble())) ||
      failed(verifyTokens(*this, {{"h", getH()}, {"result", getResult()}})) ||
      failed(expectProjection(*this, "gate_w", getGateW(), getH())) ||
      failed(expectProjection(*this, "up_w", getUpW(), getH())) ||
      failed(expectSize(*this, "up_w rows", rowsOf(getUpW()), rowsOf(getGateW()),
                        "I = gate_w rows")) ||
      failed(expectSize(*this, "result width", colsOf(getResult()), rowsOf(getGateW()),
                        "I = gate_w rows")))
    return failure();
  return success();
}

LogicalResult HcPostPreOp::verify() {
  int64_t hc = getHcAttr().getInt();
  if (failed(expectPositive(*this, "hc", static_cast<double>(hc))) ||
      failed(expectPositive(*this, "norm_eps", getNormEps().convertToDouble())) ||
      failed(expectPositive(*this, "sinkhorn_iters", static_cast<double>(getSinkhornItersAttr().getInt()))))
    return failure();
  if (getHcEps().convertToDouble() < 0)
    return emitOpError() << "attribute `hc_eps` must be >= 0";
  int64_t width = colsOf(getX());
  if (!ShapedType::isDynamic(width) && width % hc != 0)
    return emitOpError() << "`X` has " << width << " channels, not a multiple of hc = " << hc;
  int64_t D = ShapedType::isDynamic(width) ? width : width / hc, mixes = (2 + hc) * hc;
  if (failed(verifyTokens(*this, {{"X", getX()}, {"y", getY()}, {"post", getPost()},
                                      {"comb", getComb()}, {"new_streams", getNewStreams()},
                                      {"collapsed", getCollapsed()}, {"new_post", getNewPost()},
                                      {"new_comb", getNewComb()}})) ||
      failed(expectSize(*this, "y width", colsOf(getY()), D, "D = X width / hc")) ||
      failed(expectSize(*this, "post width", colsOf(getPost()), hc, "hc")) ||
      failed(expectSize(*this, "comb width", colsOf(getComb()), hc * hc, "hc*hc")) ||
      failed(expectSize(*this, "fn rows", rowsOf(getFn()), mixes, "(2+hc)*hc mixing weights")) ||
      failed(expectSize(*this, "fn columns", colsOf(getFn()), width, "X width hc*D")) ||
      failed(expectSize(*this, "base size", dimOf(getBase(), 0), mixes, "(2+hc)*hc")) ||
      failed(expectSize(*this, "scale size", dimOf(getScale(), 0), 3, "pre, post, comb")) ||
      failed(expectSize(*this, "new_streams width", colsOf(getNewStreams()), width, "X width")) ||
      failed(expectSize(*this, "collapsed width", colsOf(getCollapsed()), D, "D")) ||
      failed(expectSize(*this, "new_post width", colsOf(getNewPost()), hc, "hc")) ||
      failed(expectSize(*this, "new_comb width", colsOf(getNewComb()), hc * hc, "hc*hc")))
    return failure();
  return success();
}

LogicalResult RopeCacheAppendOp::verify() {
  CacheType window = getWindow().getType();
  int64_t headDim = getHeadDimAttr().getInt();
  if (failed(verifyRopeAttrs(*this, headDim, getRopeDimAttr().getInt(), getInvFreq())) ||
      failed(verifyTokens(*this, {{"kv", getKv()}, {"roped", getRoped()}})) ||
      failed(expectSize(*this, "kv width", colsOf(getKv()), headDim,
                        "head_dim: the window stores one kv head")) ||
      failed(expectSize(*this, "window width", window.getWidth(), headDim, "head_dim")))
    return failure();
  if (getRoped().getType() != getKv().getType())
    return emitOpError() << "roped type " << getRoped().getType() << " must equal the kv type "
                         << getKv().getType();
  if (getNewWindow().getType() != window)
    return emitOpError() << "new_window type " << getNewWindow().getType()
                         << " must equal the window operand type " << window;
  if (!window.storesRowsOf(getElementTypeOrSelf(getKv().getType())))
    return emitOpError() << "kv element type cannot be stored in a " << window.getElementType()
                         << " cache; give kv the cache's element type (or f32, which a bf16 "
                            "or f8E4M3FN cache rounds on store)";
  return success();
}

LogicalResult LinearCompressOp::verify() {
  int64_t rate = getRateAttr().getInt(), headDim = getHeadDimAttr().getInt();
  const CompressorShape shape = compressorShape(headDim, getOverlap());
  return success(
      succeeded(verifyTokens(*this, {{"h", getH()}, {"positions", getPositions()}})) &&
      succeeded(expectProjection(*this, "kv_w", getKvW(), getH())) &&
      succeeded(expectProjection(*this, "gate_w", getGateW(), getH())) &&
      succeeded(expectSize(*this, "kv_w rows", rowsOf(getKvW()), shape.inWidth, shape.inRule)) &&
      succeeded(expectSize(*this, "gate_w rows", rowsOf(getGateW()), shape.inWidth, shape.inRule)) &&
      succeeded(verifyCompressor(*this, rate, headDim, getOverlap(), getRopeDimAttr().getInt(),
                                 getInvFreq(), getEps().convertToDouble(), getPositionBias(),
                                 getNormW(), getState().getType(), getEntries().getType(),
                                 getNewState().getType(), getNewEntries().getType())));
}
