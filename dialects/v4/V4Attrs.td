//===- V4Attrs.td - attributes of the v4 dialect -----------*- tablegen -*-===//

#ifndef V4_ATTRS_TD
#define V4_ATTRS_TD

include "dialects/v4/V4Dialect.td"
include "dialects/v4/V4Enums.td"
include "mlir/IR/TensorEncoding.td"

def V4_QuantAttr : AttrDef<V4_Dialect, "Quant",
    [DeclareAttrInterfaceMethods<VerifiableTensorEncoding>]> {
  let mnemonic = "quant";
  let summary = "block-quantized weight encoding";
  let description = [{
    Marks a weight tensor as block-quantized. The tensor keeps its logical
    shape; `block` gives the block sizes of its trailing dimensions (one scale
    per block) and `scale` how the scales are stored. The element type says
    how one value is stored in IR: `f8E4M3FN` for `fp8_e4m3`, `i8` (one e2m1
    code per element; MLIR 19 has no 4-bit float type) for `fp4_e2m1`.

    ```mlir
    v4.global @"model.layers.0.attn.wq_a.weight"
        : tensor<1024x4096xf8E4M3FN, #v4.quant<fp8_e4m3, block = [128, 128], scale = ue8m0>>
    ```
  }];
  let parameters = (ins
    EnumParameter<V4_QuantFormat>:$format,
    ArrayRefParameter<"int64_t", "block sizes of the trailing dimensions">:$block,
    EnumParameter<V4_QuantScale>:$scale
  );
  let assemblyFormat = [{
    `<` $format `,` `block` `=` `[` $block `]` `,` `scale` `=` $scale `>`
  }];
  let genVerifyDecl = 1;
}

#endif // V4_ATTRS_TD
