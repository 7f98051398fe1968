//===- V4QuantOps.td - ops on block-quantized weights ------*- tablegen -*-===//
//
// Made by `v4-quantize` from `v4.linear` / `v4.moe`: the weight operand is a
// `#v4.quant` tensor of codes and each weight has a separate ue8m0 scale
// tensor (one i8 exponent byte per block; value 2^(byte - 127)). The numerics
// live in runtime/cpu/QuantKernels.h (docs/quantization.md). Included from
// V4Ops.td.
//
//===----------------------------------------------------------------------===//

#ifndef V4_QUANT_OPS_TD
#define V4_QUANT_OPS_TD

// ue8m0 block scales: one exponent byte per block.
class V4_ScaleTensor<int rank> : TensorRankOf<[I8], [rank]>;

def V4_LinearFp8Op : V4_PureOp<"linear_fp8"> {
  let summary = "y = x w^T with an fp8 (e4m3) block-quantized weight";
  let description = [{
    `x [T, K]`, `w [N, K]` (f8E4M3FN codes with
    `#v4.quant<fp8_e4m3, block = [bn, bk], scale = ue8m0>`), `scale
    [ceil(N/bn), ceil(K/bk)] i8` -> `[T, N]`. `block` repeats the encoding's
    block sizes for the kernel. At run time each row of x is quantized to e4m3
    per 1 x bk group with a ue8m0 scale (DeepSeek's `act_quant`), products
    are accumulated in f32 and scaled per block (`fp8_gemm`).

    ```mlir
    %y = v4.linear_fp8 %x, %w, %s {block = array<i64: 128, 128>}
        : (tensor<?x256xf32>, tensor<192x256xf8E4M3FN, #v4.quant<fp8_e4m3, block = [128, 128], scale = ue8m0>>,
           tensor<2x2xi8>) -> tensor<?x192xf32>
    ```
  }];
  let arguments = (ins V4_Activation:$x, V4_Weight<2>:$w, V4_ScaleTensor<2>:$scale,
                       DenseI64ArrayAttr:$block);
  let results = (outs V4_Activation:$result);
}

def V4_MoeFp4Op : V4_PureOp<"moe_fp4"> {
  let summary = "v4.moe with fp4 (e2m1) block-quantized experts";
  let description = [{
    `v4.moe` (same operands, numerics and `swiglu_limit`) whose expert weights
    are e2m1 codes, one per i8 element: `gate_up [E, 2I, D]` and `down [E, D,
    I]`, each with `#v4.quant<fp4_e2m1, block = [1, bc], scale = ue8m0>`, and
    their scales `gate_up_scale [E, 2I, ceil(D/bc)] i8`, `down_scale [E, D,
    ceil(I/bc)] i8`. Expert inputs (h and the SwiGLU output) are quantized to
    e4m3 per 1 x 128 group at run time; accumulation is f32.

    ```mlir
    %m = v4.moe_fp4 %h, %w, %ex, %gu, %gus, %dn, %dns {block = array<i64: 1, 32>, swiglu_limit = 10.0 : f64}
        : (tensor<?x64xf32>, tensor<?x2xf32>, tensor<?x2xi32>,
           tensor<8x96x64xi8, #v4.quant<fp4_e2m1, block = [1, 32], scale = ue8m0>>, tensor<8x96x2xi8>,
           tensor<8x64x48xi8, #v4.quant<fp4_e2m1, block = [1, 32], scale = ue8m0>>, tensor<8x64x2xi8>)
        -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins V4_Activation:$h, V4_Activation:$weights, V4_IndexMatrix:$experts,
                       V4_Weight<3>:$gate_up, V4_ScaleTensor<3>:$gate_up_scale,
                       V4_Weight<3>:$down, V4_ScaleTensor<3>:$down_scale,
                       F64Attr:$swiglu_limit, DenseI64ArrayAttr:$block);
  let results = (outs V4_Activation:$result);
}

#endif // V4_QUANT_OPS_TD
