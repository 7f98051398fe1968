#include "dialects/v4/VerifierSupport.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/TypeUtilities.h"

using namespace mlir;

namespace v4c::v4::verify {


int64_t dimOf(Value value, unsigned index) {
  return cast<ShapedType>(value.getType()).getDimSize(index);
}

bool agree(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b;
}

std::string sizeText(int64_t size) {
  return ShapedType::isDynamic(size) ? "?" : std::to_string(size);
}

// Product that stays dynamic when a factor is.
int64_t times(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) ? ShapedType::kDynamic
                                                              : a * b;
}

// `what` (a size) must equal `expected`; `rule` says where that comes from.
LogicalResult expectSize(Operation *op, const Twine &what, int64_t actual,
                         int64_t expected, const Twine &rule) {
  if (agree(actual, expected))
    return success();
  return op->emitOpError() << what << " is " << sizeText(actual) << " but must be "
                           << sizeText(expected) << " (" << rule << ")";
}

LogicalResult expectPositive(Operation *op, StringRef attrName, int64_t value) {
  if (value > 0)
    return success();
  return op->emitOpError() << "attribute `" << attrName << "` must be positive, got "
                           << value;
}

LogicalResult expectPositive(Operation *op, StringRef attrName, double value) {
  if (value > 0)
    return success();
  return op->emitOpError() << "attribute `" << attrName << "` must be positive, got "
                           << value;
}

LogicalResult expectNonNegative(Operation *op, StringRef attrName, double value) {
  if (value >= 0)
    return success();
  return op->emitOpError() << "attribute `" << attrName << "` must be >= 0, got "
                           << value;
}

int64_t intAttr(Operation *op, StringRef name) {
  return cast<IntegerAttr>(op->getAttr(name)).getInt();
}
double floatAttr(Operation *op, StringRef name) {
  return cast<FloatAttr>(op->getAttr(name)).getValueAsDouble();
}

// Token-major operands and results all have the same number of tokens T.
LogicalResult verifyTokens(Operation *op, ArrayRef<Named> tokenMajor) {
  const Named *reference = nullptr;
  for (const Named &named : tokenMajor) {
    int64_t tokens = rowsOf(named.second);
    if (ShapedType::isDynamic(tokens))
      continue;
    if (!reference) {
      reference = &named;
      continue;
    }
    int64_t expected = rowsOf(reference->second);
    if (tokens != expected)
      return op->emitOpError()
             << "`" << named.first << "` has " << tokens << " tokens but `"
             << reference->first << "` has " << expected
             << "; all token-major operands and results need the same token count";
  }
  return success();
}

// Activations an op combines share one element type.
LogicalResult verifySameElementType(Operation *op, ArrayRef<Named> values) {
  Type first = getElementTypeOrSelf(values.front().second.getType());
  for (const Named &named : values.drop_front()) {
    Type element = getElementTypeOrSelf(named.second.getType());
    if (element != first)
      return op->emitOpError() << "`" << named.first << "` has element type " << element
                               << " but `" << values.front().first << "` has " << first
                               << "; use one activation element type per op";
  }
  return success();
}

LogicalResult verifyProjectionResultType(Operation *op, Named x, Named result) {
  Type input = getElementTypeOrSelf(x.second.getType());
  Type output = getElementTypeOrSelf(result.second.getType());
  if (output == input || output.isF32())
    return success();
  return op->emitOpError() << "`" << result.first << "` has element type " << output << " but `" << x.first
                           << "` has " << input << "; a projection keeps x's element type or widens to f32";
}

// Shared by rope and compress: the rotary part of a head of `headDim` channels.
LogicalResult verifyRopeAttrs(Operation *op, int64_t headDim, int64_t ropeDim,
                              ArrayRef<float> invFreq) {
  if (failed(expectPositive(op, "head_dim", headDim)) ||
      failed(expectPositive(op, "rope_dim", ropeDim)))
    return failure();
  if (ropeDim % 2 != 0)
    return op->emitOpError() << "rope_dim (" << ropeDim
                             << ") must be even: channels rotate in pairs";
  if (ropeDim > headDim)
    return op->emitOpError() << "rope_dim (" << ropeDim << ") must not exceed head_dim ("
                             << headDim << ")";
  if (static_cast<int64_t>(invFreq.size()) != ropeDim / 2)
    return op->emitOpError() << "inv_freq has " << invFreq.size()
                             << " frequencies but needs rope_dim/2 = " << ropeDim / 2
                             << " (one per rotated pair)";
  return success();
}

LogicalResult
verifyCompressor(Operation *op, int64_t rate, int64_t headDim, bool overlap, int64_t ropeDim,
                 ArrayRef<float> invFreq, double eps, Value positionBias, Value normW,
                 CacheType state, CacheType entries, CacheType newState, CacheType newEntries) {
  if (failed(expectPositive(op, "rate", rate)) || failed(expectPositive(op, "eps", eps)) ||
      failed(verifyRopeAttrs(op, headDim, ropeDim, invFreq)))
    return failure();
  const CompressorShape shape = compressorShape(headDim, overlap);
  if (failed(expectSize(op, "position_bias rows", rowsOf(positionBias), rate,
                        "one bias row per position of a window of rate tokens")) ||
      failed(expectSize(op, "position_bias columns", colsOf(positionBias), shape.inWidth,
                        shape.inRule)) ||
      failed(expectSize(op, "norm_w size", dimOf(normW, 0), headDim, "head_dim")) ||
      failed(expectSize(op, "state rows", state.getRows(), 2 * rate,
                        "2*rate: the previous and the pending window")) ||
      failed(expectSize(op, "state width", state.getWidth(), 2 * shape.inWidth,
                        "2*Cin: [kv | gate + position_bias]")) ||
      failed(expectSize(op, "entries width", entries.getWidth(), headDim, "head_dim")) ||
      failed(expectSize(op, "entries rate", entries.getRate(), rate, "attribute rate")))
    return failure();
  if (newState != state)
    return op->emitOpError() << "new_state type " << newState
                             << " must equal the state operand type " << state;
  if (newEntries.getWidth() != entries.getWidth() || newEntries.getRate() != entries.getRate() ||
      newEntries.getElementType() != entries.getElementType())
    return op->emitOpError() << "new_entries type " << newEntries
                             << " must match the entries operand type " << entries
                             << " in width, rate and element type";
  return success();
}

} // namespace v4c::v4::verify
