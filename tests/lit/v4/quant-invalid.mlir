// Verifier errors of the quantized ops (V4QuantOps.td), one per case.
// RUN: v4-opt --split-input-file --verify-diagnostics %s

func.func @unquantized_weight(%x: tensor<?x256xf32>, %w: tensor<192x256xf32>, %s: tensor<2x2xi8>) -> tensor<?x192xf32> {
  // expected-error @+1 {{w must be a quantized tensor with a #v4.quant<fp8_e4m3, ...> encoding; use v4.linear / v4.moe for unquantized weights}}
  %y = v4.linear_fp8 %x, %w, %s {block = array<i64: 128, 128>} : (tensor<?x256xf32>, tensor<192x256xf32>, tensor<2x2xi8>) -> tensor<?x192xf32>
  return %y : tensor<?x192xf32>
}

// -----

func.func @block_differs(%x: tensor<?x256xf32>, %w: tensor<192x256xf8E4M3FN, #v4.quant<fp8_e4m3, block = [128, 128], scale = ue8m0>>, %s: tensor<2x4xi8>) -> tensor<?x192xf32> {
  // expected-error @+1 {{attribute `block` must repeat the block sizes of w's #v4.quant encoding}}
  %y = v4.linear_fp8 %x, %w, %s {block = array<i64: 128, 64>} : (tensor<?x256xf32>, tensor<192x256xf8E4M3FN, #v4.quant<fp8_e4m3, block = [128, 128], scale = ue8m0>>, tensor<2x4xi8>) -> tensor<?x192xf32>
  return %y : tensor<?x192xf32>
}

// -----

func.func @scale_misses_edge_block(%x: tensor<?x256xf32>, %w: tensor<192x256xf8E4M3FN, #v4.quant<fp8_e4m3, block = [128, 128], scale = ue8m0>>, %s: tensor<1x2xi8>) -> tensor<?x192xf32> {
  // expected-error @+1 {{scale dim 0 is 1 but must be 2 (one ue8m0 scale per block of the weight, partial edge blocks included)}}
  %y = v4.linear_fp8 %x, %w, %s {block = array<i64: 128, 128>} : (tensor<?x256xf32>, tensor<192x256xf8E4M3FN, #v4.quant<fp8_e4m3, block = [128, 128], scale = ue8m0>>, tensor<1x2xi8>) -> tensor<?x192xf32>
  return %y : tensor<?x192xf32>
}

// -----

func.func @f32_scales(%x: tensor<?x256xf32>, %w: tensor<192x256xf8E4M3FN, #v4.quant<fp8_e4m3, block = [128, 128], scale = f32>>, %s: tensor<2x2xi8>) -> tensor<?x192xf32> {
  // expected-error @+1 {{w has f32 scales; the quantized kernels take ue8m0 scales}}
  %y = v4.linear_fp8 %x, %w, %s {block = array<i64: 128, 128>} : (tensor<?x256xf32>, tensor<192x256xf8E4M3FN, #v4.quant<fp8_e4m3, block = [128, 128], scale = f32>>, tensor<2x2xi8>) -> tensor<?x192xf32>
  return %y : tensor<?x192xf32>
}

// -----

func.func @reduction_mismatch(%x: tensor<?x128xf32>, %w: tensor<192x256xf8E4M3FN, #v4.quant<fp8_e4m3, block = [128, 128], scale = ue8m0>>, %s: tensor<2x2xi8>) -> tensor<?x192xf32> {
  // expected-error @+1 {{w columns is 256 but must be 128 (the reduction size K = x width; w is [N, K])}}
  %y = v4.linear_fp8 %x, %w, %s {block = array<i64: 128, 128>} : (tensor<?x128xf32>, tensor<192x256xf8E4M3FN, #v4.quant<fp8_e4m3, block = [128, 128], scale = ue8m0>>, tensor<2x2xi8>) -> tensor<?x192xf32>
  return %y : tensor<?x192xf32>
}

// -----

func.func @moe_fp8_experts(%h: tensor<?x64xf32>, %w: tensor<?x2xf32>, %ex: tensor<?x2xi32>,
                           %gu: tensor<8x96x64xf8E4M3FN, #v4.quant<fp8_e4m3, block = [1, 32], scale = ue8m0>>, %gus: tensor<8x96x2xi8>,
                           %dn: tensor<8x64x48xi8, #v4.quant<fp4_e2m1, block = [1, 32], scale = ue8m0>>, %dns: tensor<8x64x2xi8>) -> tensor<?x64xf32> {
  // expected-error @+1 {{gate_up is quantized as fp8_e4m3 but this op runs fp4_e2m1}}
  %m = v4.moe_fp4 %h, %w, %ex, %gu, %gus, %dn, %dns {block = array<i64: 1, 32>, swiglu_limit = 10.0 : f64}
      : (tensor<?x64xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<8x96x64xf8E4M3FN, #v4.quant<fp8_e4m3, block = [1, 32], scale = ue8m0>>, tensor<8x96x2xi8>,
         tensor<8x64x48xi8, #v4.quant<fp4_e2m1, block = [1, 32], scale = ue8m0>>, tensor<8x64x2xi8>) -> tensor<?x64xf32>
  return %m : tensor<?x64xf32>
}

// -----

func.func @moe_row_blocks(%h: tensor<?x64xf32>, %w: tensor<?x2xf32>, %ex: tensor<?x2xi32>,
                          %gu: tensor<8x96x64xi8, #v4.quant<fp4_e2m1, block = [2, 32], scale = ue8m0>>, %gus: tensor<8x48x2xi8>,
                          %dn: tensor<8x64x48xi8, #v4.quant<fp4_e2m1, block = [2, 32], scale = ue8m0>>, %dns: tensor<8x32x2xi8>) -> tensor<?x64xf32> {
  // expected-error @+1 {{expert weights are quantized in 1 x N blocks (one row each); got block = [2, 32]}}
  %m = v4.moe_fp4 %h, %w, %ex, %gu, %gus, %dn, %dns {block = array<i64: 2, 32>, swiglu_limit = 10.0 : f64}
      : (tensor<?x64xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<8x96x64xi8, #v4.quant<fp4_e2m1, block = [2, 32], scale = ue8m0>>, tensor<8x48x2xi8>,
         tensor<8x64x48xi8, #v4.quant<fp4_e2m1, block = [2, 32], scale = ue8m0>>, tensor<8x32x2xi8>) -> tensor<?x64xf32>
  return %m : tensor<?x64xf32>
}

// -----

func.func @moe_down_scale(%h: tensor<?x64xf32>, %w: tensor<?x2xf32>, %ex: tensor<?x2xi32>,
                          %gu: tensor<8x96x64xi8, #v4.quant<fp4_e2m1, block = [1, 32], scale = ue8m0>>, %gus: tensor<8x96x2xi8>,
                          %dn: tensor<8x64x48xi8, #v4.quant<fp4_e2m1, block = [1, 32], scale = ue8m0>>, %dns: tensor<8x64x1xi8>) -> tensor<?x64xf32> {
  // expected-error @+1 {{down_scale dim 2 is 1 but must be 2}}
  %m = v4.moe_fp4 %h, %w, %ex, %gu, %gus, %dn, %dns {block = array<i64: 1, 32>, swiglu_limit = 10.0 : f64}
      : (tensor<?x64xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<8x96x64xi8, #v4.quant<fp4_e2m1, block = [1, 32], scale = ue8m0>>, tensor<8x96x2xi8>,
         tensor<8x64x48xi8, #v4.quant<fp4_e2m1, block = [1, 32], scale = ue8m0>>, tensor<8x64x1xi8>) -> tensor<?x64xf32>
  return %m : tensor<?x64xf32>
}
