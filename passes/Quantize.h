// What v4-quantize writes on the globals it quantizes, for the driver that
// fills them, and the release policy of which weights get quantized.
#pragma once

#include "llvm/ADT/StringRef.h"

namespace v4c {

// On every quantized v4.global: the checkpoint tensor it comes from ...
inline constexpr llvm::StringLiteral kQuantSourceAttr = "v4.quant_source";
// ... and which part of it the global holds: "data" (codes) or "scale"
// (ue8m0 bytes, one per block).
inline constexpr llvm::StringLiteral kQuantPartAttr = "v4.quant_part";

// Dense linears DeepSeek releases in FP8 (V4-MODEL.md "Released weights"):
// everything except the head and the compressor/indexer gate and kv
// projections (and the indexer's weights_proj), which stay in high precision.
bool isReleasedInFp8(llvm::StringRef weightName);

} // namespace v4c
