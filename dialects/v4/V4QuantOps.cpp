// Verifiers of the quantized v4 ops (V4QuantOps.td): the weight must carry the
// #v4.quant encoding the kernel implements, `block` must repeat its block
// sizes, and each scale tensor must have one entry per (partial) block.
#include "dialects/v4/V4Ops.h"
#include "dialects/v4/VerifierSupport.h"

#include <string>

using namespace mlir;
using namespace v4c::v4;
using namespace v4c::v4::verify;

namespace {

int64_t ceilDiv(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) ? ShapedType::kDynamic : (a + b - 1) / b;
}

// The weight's #v4.quant encoding, checked against the format the op runs
// and the op's `block` attribute (two sizes: rows, cols of one block).
FailureOr<QuantAttr> expectQuantized(Operation *op, StringRef name, Value weight,
                                     QuantFormat format, ArrayRef<int64_t> block) {
  auto encoding =
      dyn_cast_or_null<QuantAttr>(cast<RankedTensorType>(weight.getType()).getEncoding());
  const char *formatName = format == QuantFormat::fp8_e4m3 ? "fp8_e4m3" : "fp4_e2m1";
  if (!encoding)
    return op->emitOpError() << name << " must be a quantized tensor with a #v4.quant<" << formatName
                             << ", ...> encoding; use v4.linear / v4.moe for unquantized weights";
  if (encoding.getFormat() != format)
    return op->emitOpError() << name << " is quantized as " << stringifyQuantFormat(encoding.getFormat())
                             << " but this op runs " << formatName;
  if (encoding.getScale() != QuantScale::ue8m0)
    return op->emitOpError() << name << " has " << stringifyQuantScale(encoding.getScale())
                             << " scales; the quantized kernels take ue8m0 scales";
  if (block.size() != 2 || block[0] <= 0 || block[1] <= 0)
    return op->emitOpError() << "attribute `block` must be two positive sizes [rows, cols], e.g. "
                                "array<i64: 128, 128>";
  ArrayRef<int64_t> encoded = encoding.getBlock();
  if (encoded.size() != 2 || encoded[0] != block[0] || encoded[1] != block[1])
    return op->emitOpError() << "attribute `block` must repeat the block sizes of " << name
                             << "'s #v4.quant encoding";
  return encoding;
}

// scale must be [leading..., ceil(rows / block rows), ceil(cols / block cols)]
// for a weight whose trailing two dimensions are [rows, cols].
LogicalResult expectScaleShape(Operation *op, StringRef name, Value weight, Value scale,
                               ArrayRef<int64_t> block) {
  auto weightType = cast<ShapedType>(weight.getType());
  auto scaleType = cast<ShapedType>(scale.getType());
  const int64_t rank = weightType.getRank();
  for (int64_t d = 0; d < rank; ++d) {
    int64_t expected = weightType.getDimSize(d);
    if (d == rank - 2)
      expected = ceilDiv(expected, block[0]);
    else if (d == rank - 1)
      expected = ceilDiv(expected, block[1]);
    if (failed(expectSize(op, name + " dim " + std::to_string(d), scaleType.getDimSize(d), expected,
                          "one ue8m0 scale per block of the weight, partial edge blocks included")))
      return failure();
  }
  return success();
}
} // namespace

LogicalResult LinearFp8Op::verify() {
  Operation *op = getOperation();
  if (failed(expectQuantized(op, "w", getW(), QuantFormat::fp8_e4m3, getBlock())) ||
      failed(expectScaleShape(op, "scale", getW(), getScale(), getBlock())) ||
      failed(verifyTokens(op, {{"x", getX()}, {"result", getResult()}})) ||
      failed(expectSize(op, "w columns", dimOf(getW(), 1), dimOf(getX(), 1),
                        "the reduction size K = x width; w is [N, K]")))
    return failure();
  return expectSize(op, "result width", dimOf(getResult(), 1), dimOf(getW(), 0), "N = w rows");
}

LogicalResult MoeFp4Op::verify() {
  Operation *op = getOperation();
  if (!(getSwigluLimit().convertToDouble() > 0))
    return emitOpError() << "attribute `swiglu_limit` must be positive";
  if (failed(expectQuantized(op, "gate_up", getGateUp(), QuantFormat::fp4_e2m1, getBlock())) ||
      failed(expectQuantized(op, "down", getDown(), QuantFormat::fp4_e2m1, getBlock())))
    return failure();
  if (getBlock()[0] != 1)
    return emitOpError() << "expert weights are quantized in 1 x N blocks (one row each); got block = ["
                         << getBlock()[0] << ", " << getBlock()[1] << "]";
  if (failed(expectScaleShape(op, "gate_up_scale", getGateUp(), getGateUpScale(), getBlock())) ||
      failed(expectScaleShape(op, "down_scale", getDown(), getDownScale(), getBlock())) ||
      failed(verifyTokens(op, {{"h", getH()},
                                   {"weights", getWeights()},
                                   {"experts", getExperts()},
                                   {"result", getResult()}})))
    return failure();
  auto gateUp = cast<ShapedType>(getGateUp().getType());
  auto down = cast<ShapedType>(getDown().getType());
  const int64_t hidden = dimOf(getH(), 1), fused = gateUp.getDimSize(1);
  if (!ShapedType::isDynamic(fused) && fused % 2 != 0)
    return emitOpError() << "gate_up has " << fused
                         << " rows per expert; it must be even: [gate; up] of I rows each";
  const int64_t inner = ShapedType::isDynamic(fused) ? fused : fused / 2;
  if (failed(expectSize(op, "experts width", dimOf(getExperts(), 1), dimOf(getWeights(), 1),
                        "weights width k")) ||
      failed(expectSize(op, "gate_up dim 2", gateUp.getDimSize(2), hidden, "D = h width")) ||
      failed(expectSize(op, "down dim 0", down.getDimSize(0), gateUp.getDimSize(0), "E = gate_up dim 0")) ||
      failed(expectSize(op, "down dim 1", down.getDimSize(1), hidden, "D = h width")) ||
      failed(expectSize(op, "down dim 2", down.getDimSize(2), inner, "I = gate_up dim 1 / 2")))
    return failure();
  return expectSize(op, "result width", dimOf(getResult(), 1), hidden, "D = h width");
}
