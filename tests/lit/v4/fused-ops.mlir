// Round trip of the fused ops of V4FusedOps.td: print, re-parse, print again.
// RUN: v4-opt %s | v4-opt | FileCheck %s
// The generic form carries operandSegmentSizes, which the CPU kernel reads.
// RUN: v4-opt --mlir-print-op-generic %s | FileCheck %s --check-prefix=GENERIC

// CHECK-LABEL: func.func @norm_linear
// CHECK: {{.*}} = v4.norm_linear %arg0 norm %arg1 weights %arg2, %arg3 {eps = 9.9999999999999995E-7 : f64, group = 64 : i64} : (tensor<?x64xf32>, tensor<64xf32>, tensor<32x64xf32>, tensor<16x64xf32>) -> (tensor<?x32xf32>, tensor<?x16xf32>)
// CHECK: v4.norm_linear %arg0 weights %arg2 {eps = 9.9999999999999995E-7 : f64, group = 16 : i64} : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
// GENERIC: "v4.norm_linear"({{.*}}) {eps = {{.*}}, group = 64 : i64, operandSegmentSizes = array<i32: 1, 1, 2>}
// GENERIC: "v4.norm_linear"({{.*}}) {eps = {{.*}}, group = 16 : i64, operandSegmentSizes = array<i32: 1, 0, 1>}
func.func @norm_linear(%x: tensor<?x64xf32>, %nw: tensor<64xf32>, %wq: tensor<32x64xf32>, %wk: tensor<16x64xf32>)
    -> (tensor<?x32xf32>, tensor<?x16xf32>, tensor<?x32xf32>) {
  %q, %k = v4.norm_linear %x norm %nw weights %wq, %wk {eps = 1.0e-06 : f64, group = 64 : i64}
      : (tensor<?x64xf32>, tensor<64xf32>, tensor<32x64xf32>, tensor<16x64xf32>) -> (tensor<?x32xf32>, tensor<?x16xf32>)
  %p = v4.norm_linear %x weights %wq {eps = 1.0e-06 : f64, group = 16 : i64}
      : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  return %q, %k, %p : tensor<?x32xf32>, tensor<?x16xf32>, tensor<?x32xf32>
}

// CHECK-LABEL: func.func @linear_swiglu
// CHECK: v4.linear_swiglu %arg0, %arg1, %arg2 {limit = 1.000000e+01 : f64} : (tensor<?x64xf32>, tensor<48x64xf32>, tensor<48x64xf32>) -> tensor<?x48xf32>
func.func @linear_swiglu(%h: tensor<?x64xf32>, %wg: tensor<48x64xf32>, %wu: tensor<48x64xf32>) -> tensor<?x48xf32> {
  %a = v4.linear_swiglu %h, %wg, %wu {limit = 10.0 : f64}
      : (tensor<?x64xf32>, tensor<48x64xf32>, tensor<48x64xf32>) -> tensor<?x48xf32>
  return %a : tensor<?x48xf32>
}

// CHECK-LABEL: func.func @hc_post_pre
// CHECK: {{.*}} = v4.hc_post_pre %arg0, %arg1, %arg2, %arg3, %arg4, %arg5, %arg6 {hc = 4 : i64, hc_eps = 9.9999999999999995E-7 : f64, norm_eps = 9.9999999999999995E-7 : f64, sinkhorn_iters = 20 : i64} : (tensor<?x256xf32>, tensor<?x64xf32>, tensor<?x4xf32>, tensor<?x16xf32>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>) -> (tensor<?x256xf32>, tensor<?x64xf32>, tensor<?x4xf32>, tensor<?x16xf32>)
func.func @hc_post_pre(%X: tensor<?x256xf32>, %y: tensor<?x64xf32>, %post: tensor<?x4xf32>, %comb: tensor<?x16xf32>,
                       %fn: tensor<24x256xf32>, %base: tensor<24xf32>, %scale: tensor<3xf32>) -> tensor<?x256xf32> {
  %X2, %c, %p2, %m2 = v4.hc_post_pre %X, %y, %post, %comb, %fn, %base, %scale
      {hc = 4 : i64, hc_eps = 1.0e-06 : f64, norm_eps = 1.0e-06 : f64, sinkhorn_iters = 20 : i64}
      : (tensor<?x256xf32>, tensor<?x64xf32>, tensor<?x4xf32>, tensor<?x16xf32>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<?x256xf32>, tensor<?x64xf32>, tensor<?x4xf32>, tensor<?x16xf32>)
  return %X2 : tensor<?x256xf32>
}

// CHECK-LABEL: func.func @rope_cache_append
// CHECK: {{.*}} = v4.rope_cache_append %arg0, %arg1, %arg2 {head_dim = 32 : i64, inv_freq = array<f32: 1.000000e+00, 1.000000e-01>, inverse = false, rope_dim = 4 : i64, scaling = 1.000000e+00 : f64} : (!v4.cache<window, rows = 8, width = 32, f32>, tensor<1x32xf32>, tensor<1xi32>) -> (tensor<1x32xf32>, !v4.cache<window, rows = 8, width = 32, f32>)
func.func @rope_cache_append(%win: !v4.cache<window, rows = 8, width = 32, f32>, %kv: tensor<1x32xf32>, %pos: tensor<1xi32>)
    -> (tensor<1x32xf32>, !v4.cache<window, rows = 8, width = 32, f32>) {
  %k, %win2 = v4.rope_cache_append %win, %kv, %pos
      {head_dim = 32 : i64, inv_freq = array<f32: 1.0, 0.1>, inverse = false, rope_dim = 4 : i64, scaling = 1.0 : f64}
      : (!v4.cache<window, rows = 8, width = 32, f32>, tensor<1x32xf32>, tensor<1xi32>)
      -> (tensor<1x32xf32>, !v4.cache<window, rows = 8, width = 32, f32>)
  return %k, %win2 : tensor<1x32xf32>, !v4.cache<window, rows = 8, width = 32, f32>
}

// CHECK-LABEL: func.func @linear_compress
// CHECK: {{.*}} = v4.linear_compress %arg0, %arg1, %arg2, %arg3, %arg4, %arg5, %arg6, %arg7 {eps = 9.9999999999999995E-7 : f64, head_dim = 32 : i64, inv_freq = array<f32: 1.000000e+00, 1.000000e-01>, overlap = true, rate = 4 : i64, rope_dim = 4 : i64, scaling = 1.000000e+00 : f64} : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<4x64xf32>, tensor<32xf32>, tensor<?xi32>, !v4.cache<compress_state, rows = 8, width = 128, f32>, !v4.cache<entries, width = 32, rate = 4, f32>) -> (!v4.cache<compress_state, rows = 8, width = 128, f32>, !v4.cache<entries, width = 32, rate = 4, f32>)
func.func @linear_compress(%h: tensor<?x64xf32>, %wkv: tensor<64x64xf32>, %wg: tensor<64x64xf32>, %ape: tensor<4x64xf32>,
                           %norm: tensor<32xf32>, %pos: tensor<?xi32>,
                           %s: !v4.cache<compress_state, rows = 8, width = 128, f32>,
                           %e: !v4.cache<entries, width = 32, rate = 4, f32>)
    -> (!v4.cache<compress_state, rows = 8, width = 128, f32>, !v4.cache<entries, width = 32, rate = 4, f32>) {
  %s2, %e2 = v4.linear_compress %h, %wkv, %wg, %ape, %norm, %pos, %s, %e
      {eps = 1.0e-06 : f64, head_dim = 32 : i64, inv_freq = array<f32: 1.0, 0.1>,
       overlap = true, rate = 4 : i64, rope_dim = 4 : i64, scaling = 1.0 : f64}
      : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<4x64xf32>, tensor<32xf32>, tensor<?xi32>,
         !v4.cache<compress_state, rows = 8, width = 128, f32>, !v4.cache<entries, width = 32, rate = 4, f32>)
      -> (!v4.cache<compress_state, rows = 8, width = 128, f32>, !v4.cache<entries, width = 32, rate = 4, f32>)
  return %s2, %e2 : !v4.cache<compress_state, rows = 8, width = 128, f32>, !v4.cache<entries, width = 32, rate = 4, f32>
}
