//===- V4Enums.td - enums of the v4 dialect ----------------*- tablegen -*-===//

#ifndef V4_ENUMS_TD
#define V4_ENUMS_TD

include "mlir/IR/EnumAttr.td"

// What a !v4.cache value holds (see docs/ops.md, "Cache types").
def V4_CacheKind : I32EnumAttr<"CacheKind", "kind of decode state a cache holds", [
    I32EnumAttrCase<"window", 0>,          // ring of the last W kv rows
    I32EnumAttrCase<"compress_state", 1>,  // previous + pending compressor window
    I32EnumAttrCase<"entries", 2>          // compressed entries, one per `rate` tokens
  ]> {
  let cppNamespace = "::v4c::v4";
  let genSpecializedAttr = 0;
}

// Element format of a quantized weight.
def V4_QuantFormat : I32EnumAttr<"QuantFormat", "quantized weight format", [
    I32EnumAttrCase<"fp8_e4m3", 0>,
    I32EnumAttrCase<"fp4_e2m1", 1>
  ]> {
  let cppNamespace = "::v4c::v4";
  let genSpecializedAttr = 0;
}

// Storage of the per-block scales of a quantized weight.
def V4_QuantScale : I32EnumAttr<"QuantScale", "block scale format", [
    I32EnumAttrCase<"ue8m0", 0>,  // power-of-two exponent byte
    I32EnumAttrCase<"f32", 1>
  ]> {
  let cppNamespace = "::v4c::v4";
  let genSpecializedAttr = 0;
}

#endif // V4_ENUMS_TD
