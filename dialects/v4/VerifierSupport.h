// Helpers shared by the verifiers of every v4 op family (core, fused,
// quantized): sizes that must agree, attributes that must be positive, token
// counts, rope attributes. A dynamic `?` dimension matches any size.
#pragma once

#include "mlir/IR/Operation.h"
#include "mlir/IR/Value.h"

#include "dialects/v4/V4Types.h"

#include <string>
#include <utility>

namespace v4c::v4::verify {

// A named operand or result, so messages can say which one is wrong.
using Named = std::pair<mlir::StringRef, mlir::Value>;

int64_t dimOf(mlir::Value value, unsigned index);
inline int64_t rowsOf(mlir::Value value) { return dimOf(value, 0); }
inline int64_t colsOf(mlir::Value value) { return dimOf(value, 1); }
bool agree(int64_t a, int64_t b);
std::string sizeText(int64_t size);
// Product that stays dynamic when a factor is.
int64_t times(int64_t a, int64_t b);

// `what` (a size) must equal `expected`; `rule` says where that comes from.
mlir::LogicalResult expectSize(mlir::Operation *op, const mlir::Twine &what, int64_t actual,
                               int64_t expected, const mlir::Twine &rule);
mlir::LogicalResult expectPositive(mlir::Operation *op, mlir::StringRef attrName, int64_t value);
mlir::LogicalResult expectPositive(mlir::Operation *op, mlir::StringRef attrName, double value);
mlir::LogicalResult expectNonNegative(mlir::Operation *op, mlir::StringRef attrName, double value);
int64_t intAttr(mlir::Operation *op, mlir::StringRef name);
double floatAttr(mlir::Operation *op, mlir::StringRef name);

// Token-major operands and results all have the same number of tokens T.
mlir::LogicalResult verifyTokens(mlir::Operation *op, llvm::ArrayRef<Named> tokenMajor);
// Activations an op combines share one element type.
mlir::LogicalResult verifySameElementType(mlir::Operation *op, llvm::ArrayRef<Named> values);
// A projection's result has x's element type, or f32 (a bf16 x widened, e.g.
// the logits that v4-cast-precision keeps f32).
mlir::LogicalResult verifyProjectionResultType(mlir::Operation *op, Named x, Named result);
// The rotary part of a head of `headDim` channels (rope, compress and their fusions).
mlir::LogicalResult verifyRopeAttrs(mlir::Operation *op, int64_t headDim, int64_t ropeDim,
                                    llvm::ArrayRef<float> invFreq);

// The compressor's weights, attributes and caches, shared by v4.compress and
// its fused form. `inWidth` is the per-token input width Cin (2*head_dim with
// overlap, head_dim without); `inRule` says why, for the caller's messages.
struct CompressorShape {
  int64_t inWidth;
  const char *inRule;
};
inline CompressorShape compressorShape(int64_t headDim, bool overlap) {
  return {(overlap ? 2 : 1) * headDim, overlap ? "Cin = 2*head_dim with overlap (CSA)"
                                               : "Cin = head_dim without overlap (HCA)"};
}
mlir::LogicalResult
verifyCompressor(mlir::Operation *op, int64_t rate, int64_t headDim, bool overlap, int64_t ropeDim,
                 llvm::ArrayRef<float> invFreq, double eps, mlir::Value positionBias,
                 mlir::Value normW, CacheType state, CacheType entries, CacheType newState,
                 CacheType newEntries);

} // namespace v4c::v4::verify
