// Round trip of the quantized ops of V4QuantOps.td: print, re-parse, print again.
// RUN: v4-opt %s | v4-opt | FileCheck %s

!fp8w = tensor<192x256xf8E4M3FN, #v4.quant<fp8_e4m3, block = [128, 128], scale = ue8m0>>
!gu = tensor<8x96x64xi8, #v4.quant<fp4_e2m1, block = [1, 32], scale = ue8m0>>
!dn = tensor<8x64x48xi8, #v4.quant<fp4_e2m1, block = [1, 32], scale = ue8m0>>

// CHECK-LABEL: func.func @linear_fp8
// CHECK: v4.linear_fp8 %arg0, %arg1, %arg2 {block = array<i64: 128, 128>} : (tensor<?x256xf32>, tensor<192x256xf8E4M3FN, #v4.quant<fp8_e4m3, block = [128, 128], scale = ue8m0>>, tensor<2x2xi8>) -> tensor<?x192xf32>
func.func @linear_fp8(%x: tensor<?x256xf32>, %w: !fp8w, %s: tensor<2x2xi8>) -> tensor<?x192xf32> {
  %y = v4.linear_fp8 %x, %w, %s {block = array<i64: 128, 128>} : (tensor<?x256xf32>, !fp8w, tensor<2x2xi8>) -> tensor<?x192xf32>
  return %y : tensor<?x192xf32>
}

// CHECK-LABEL: func.func @moe_fp4
// CHECK: v4.moe_fp4 %arg0, %arg1, %arg2, %arg3, %arg4, %arg5, %arg6 {block = array<i64: 1, 32>, swiglu_limit = 1.000000e+01 : f64} : (tensor<?x64xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<8x96x64xi8, #v4.quant<fp4_e2m1, block = [1, 32], scale = ue8m0>>, tensor<8x96x2xi8>, tensor<8x64x48xi8, #v4.quant<fp4_e2m1, block = [1, 32], scale = ue8m0>>, tensor<8x64x2xi8>) -> tensor<?x64xf32>
func.func @moe_fp4(%h: tensor<?x64xf32>, %w: tensor<?x2xf32>, %ex: tensor<?x2xi32>, %gu: !gu, %gus: tensor<8x96x2xi8>,
                   %dn: !dn, %dns: tensor<8x64x2xi8>) -> tensor<?x64xf32> {
  %m = v4.moe_fp4 %h, %w, %ex, %gu, %gus, %dn, %dns {block = array<i64: 1, 32>, swiglu_limit = 10.0 : f64}
      : (tensor<?x64xf32>, tensor<?x2xf32>, tensor<?x2xi32>, !gu, tensor<8x96x2xi8>, !dn, tensor<8x64x2xi8>) -> tensor<?x64xf32>
  return %m : tensor<?x64xf32>
}

// Scale globals hold one i8 (ue8m0) per block.
// CHECK: v4.global @w.scale : tensor<2x2xi8>
v4.global @"w.scale" : tensor<2x2xi8>
