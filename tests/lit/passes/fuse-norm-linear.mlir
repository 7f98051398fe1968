// v4-fuse-norm-linear: an rms_norm read only by linears (as x) becomes one norm_linear.
// RUN: v4-opt --split-input-file --v4-fuse-norm-linear %s | FileCheck %s

v4.global @"wq" : tensor<32x64xf32>
v4.global @"wk" : tensor<16x64xf32>
v4.global @"nw" : tensor<64xf32>

// The weights of both linears are hoisted above the fused op, results in block order.
// CHECK-LABEL: func.func @fires
// CHECK-DAG: %[[NW:.*]] = v4.weight @nw
// CHECK-DAG: %[[WQ:.*]] = v4.weight @wq
// CHECK-DAG: %[[WK:.*]] = v4.weight @wk
// CHECK: %[[R:.*]]:2 = v4.norm_linear %arg0 norm %[[NW]] weights %[[WQ]], %[[WK]] {eps = 9.9999999999999995E-7 : f64, group = 64 : i64} : (tensor<?x64xf32>, tensor<64xf32>, tensor<32x64xf32>, tensor<16x64xf32>) -> (tensor<?x32xf32>, tensor<?x16xf32>)
// CHECK-NOT: v4.rms_norm
// CHECK-NOT: v4.linear
// CHECK: return %[[R]]#0, %[[R]]#1
func.func @fires(%x: tensor<?x64xf32>) -> (tensor<?x32xf32>, tensor<?x16xf32>) {
  %nw = v4.weight @"nw" : tensor<64xf32>
  %n = v4.rms_norm %x, %nw {eps = 1.0e-06 : f64, group = 64 : i64} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  %wq = v4.weight @"wq" : tensor<32x64xf32>
  %q = v4.linear %n, %wq : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %wk = v4.weight @"wk" : tensor<16x64xf32>
  %k = v4.linear %n, %wk : (tensor<?x64xf32>, tensor<16x64xf32>) -> tensor<?x16xf32>
  return %q, %k : tensor<?x32xf32>, tensor<?x16xf32>
}

// -----

// A norm without weight (per-head group) fuses too.
// CHECK-LABEL: func.func @unweighted
// CHECK: v4.norm_linear %arg0 weights %arg1 {eps = 9.9999999999999995E-7 : f64, group = 16 : i64}
func.func @unweighted(%x: tensor<?x64xf32>, %w: tensor<32x64xf32>) -> tensor<?x32xf32> {
  %n = v4.rms_norm %x {eps = 1.0e-06 : f64, group = 16 : i64} : (tensor<?x64xf32>) -> tensor<?x64xf32>
  %y = v4.linear %n, %w : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}

// -----

// The normed tensor also feeds the router, which needs it written out: no fusion.
// CHECK-LABEL: func.func @other_user
// CHECK: v4.rms_norm
// CHECK: v4.linear
// CHECK: v4.router
// CHECK-NOT: v4.norm_linear
func.func @other_user(%x: tensor<?x64xf32>, %w: tensor<32x64xf32>, %gate: tensor<8x64xf32>, %bias: tensor<8xf32>)
    -> (tensor<?x32xf32>, tensor<?x2xf32>) {
  %n = v4.rms_norm %x {eps = 1.0e-06 : f64, group = 64 : i64} : (tensor<?x64xf32>) -> tensor<?x64xf32>
  %y = v4.linear %n, %w : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %rw, %re = v4.router %n, %gate, %bias {routed_scaling = 1.5 : f64, top_k = 2 : i64}
      : (tensor<?x64xf32>, tensor<8x64xf32>, tensor<8xf32>) -> (tensor<?x2xf32>, tensor<?x2xi32>)
  return %y, %rw : tensor<?x32xf32>, tensor<?x2xf32>
}

// -----

// The norm result is the linear's weight, not its input: no fusion.
// CHECK-LABEL: func.func @used_as_weight
// CHECK: v4.rms_norm
// CHECK: v4.linear
// CHECK-NOT: v4.norm_linear
func.func @used_as_weight(%x: tensor<64x64xf32>, %a: tensor<?x64xf32>) -> tensor<?x64xf32> {
  %n = v4.rms_norm %x {eps = 1.0e-06 : f64, group = 64 : i64} : (tensor<64x64xf32>) -> tensor<64x64xf32>
  %y = v4.linear %a, %n : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

// A quantized weight needs the quantized linear kernel: no fusion.
// CHECK-LABEL: func.func @quantized_weight
// CHECK: v4.rms_norm
// CHECK: v4.linear
// CHECK-NOT: v4.norm_linear
func.func @quantized_weight(%x: tensor<?x128xf32>,
                            %w: tensor<128x128xf8E4M3FN, #v4.quant<fp8_e4m3, block = [128, 128], scale = ue8m0>>)
    -> tensor<?x128xf32> {
  %n = v4.rms_norm %x {eps = 1.0e-06 : f64, group = 128 : i64} : (tensor<?x128xf32>) -> tensor<?x128xf32>
  %y = v4.linear %n, %w : (tensor<?x128xf32>, tensor<128x128xf8E4M3FN, #v4.quant<fp8_e4m3, block = [128, 128], scale = ue8m0>>) -> tensor<?x128xf32>
  return %y : tensor<?x128xf32>
}

// -----

// A weight computed after the norm cannot be hoisted above it: no fusion.
// CHECK-LABEL: func.func @late_weight
// CHECK: v4.rms_norm
// CHECK-NOT: v4.norm_linear
func.func @late_weight(%x: tensor<?x64xf32>, %a: tensor<64x64xf32>) -> tensor<?x64xf32> {
  %n = v4.rms_norm %x {eps = 1.0e-06 : f64, group = 64 : i64} : (tensor<?x64xf32>) -> tensor<?x64xf32>
  %w = v4.add %a, %a : (tensor<64x64xf32>, tensor<64x64xf32>) -> tensor<64x64xf32>
  %y = v4.linear %n, %w : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}
