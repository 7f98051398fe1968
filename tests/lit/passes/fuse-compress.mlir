// v4-fuse-compress: the kv and gate projections of one input join v4.compress.
// RUN: v4-opt --split-input-file --v4-fuse-compress %s | FileCheck %s

// CHECK-LABEL: func.func @fires
// CHECK-NEXT: %[[S:.*]], %[[E:.*]] = v4.linear_compress %arg0, %arg1, %arg2, %arg3, %arg4, %arg5, %arg6, %arg7 {eps = 9.9999999999999995E-7 : f64, head_dim = 32 : i64, inv_freq = array<f32: 1.000000e+00, 1.000000e-01>, overlap = true, rate = 4 : i64, rope_dim = 4 : i64, scaling = 1.000000e+00 : f64}
// CHECK-NEXT: return %[[S]], %[[E]]
func.func @fires(%h: tensor<?x64xf32>, %wkv: tensor<64x64xf32>, %wg: tensor<64x64xf32>, %ape: tensor<4x64xf32>,
                 %norm: tensor<32xf32>, %pos: tensor<?xi32>,
                 %s: !v4.cache<compress_state, rows = 8, width = 128, f32>,
                 %e: !v4.cache<entries, width = 32, rate = 4, f32>)
    -> (!v4.cache<compress_state, rows = 8, width = 128, f32>, !v4.cache<entries, width = 32, rate = 4, f32>) {
  %kv = v4.linear %h, %wkv : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %g = v4.linear %h, %wg : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %s2, %e2 = v4.compress %kv, %g, %ape, %norm, %pos, %s, %e
      {eps = 1.0e-06 : f64, head_dim = 32 : i64, inv_freq = array<f32: 1.0, 0.1>,
       overlap = true, rate = 4 : i64, rope_dim = 4 : i64, scaling = 1.0 : f64}
      : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<4x64xf32>, tensor<32xf32>, tensor<?xi32>,
         !v4.cache<compress_state, rows = 8, width = 128, f32>, !v4.cache<entries, width = 32, rate = 4, f32>)
      -> (!v4.cache<compress_state, rows = 8, width = 128, f32>, !v4.cache<entries, width = 32, rate = 4, f32>)
  return %s2, %e2 : !v4.cache<compress_state, rows = 8, width = 128, f32>, !v4.cache<entries, width = 32, rate = 4, f32>
}

// -----

// The kv projection is also returned (read elsewhere): no fusion.
// CHECK-LABEL: func.func @kv_used_elsewhere
// CHECK: v4.compress
// CHECK-NOT: v4.linear_compress
func.func @kv_used_elsewhere(%h: tensor<?x32xf32>, %wkv: tensor<32x32xf32>, %wg: tensor<32x32xf32>, %ape: tensor<4x32xf32>,
                             %norm: tensor<32xf32>, %pos: tensor<?xi32>,
                             %s: !v4.cache<compress_state, rows = 8, width = 64, f32>,
                             %e: !v4.cache<entries, width = 32, rate = 4, f32>)
    -> (tensor<?x32xf32>, !v4.cache<entries, width = 32, rate = 4, f32>) {
  %kv = v4.linear %h, %wkv : (tensor<?x32xf32>, tensor<32x32xf32>) -> tensor<?x32xf32>
  %g = v4.linear %h, %wg : (tensor<?x32xf32>, tensor<32x32xf32>) -> tensor<?x32xf32>
  %s2, %e2 = v4.compress %kv, %g, %ape, %norm, %pos, %s, %e
      {eps = 1.0e-06 : f64, head_dim = 32 : i64, inv_freq = array<f32: 1.0, 0.1>,
       overlap = false, rate = 4 : i64, rope_dim = 4 : i64, scaling = 1.0 : f64}
      : (tensor<?x32xf32>, tensor<?x32xf32>, tensor<4x32xf32>, tensor<32xf32>, tensor<?xi32>,
         !v4.cache<compress_state, rows = 8, width = 64, f32>, !v4.cache<entries, width = 32, rate = 4, f32>)
      -> (!v4.cache<compress_state, rows = 8, width = 64, f32>, !v4.cache<entries, width = 32, rate = 4, f32>)
  return %kv, %e2 : tensor<?x32xf32>, !v4.cache<entries, width = 32, rate = 4, f32>
}

// -----

// kv and gate project different inputs; the fused op takes one h: no fusion.
// CHECK-LABEL: func.func @different_inputs
// CHECK: v4.compress
// CHECK-NOT: v4.linear_compress
func.func @different_inputs(%h: tensor<?x32xf32>, %h2: tensor<?x32xf32>, %wkv: tensor<32x32xf32>, %wg: tensor<32x32xf32>,
                            %ape: tensor<4x32xf32>, %norm: tensor<32xf32>, %pos: tensor<?xi32>,
                            %s: !v4.cache<compress_state, rows = 8, width = 64, f32>,
                            %e: !v4.cache<entries, width = 32, rate = 4, f32>)
    -> !v4.cache<entries, width = 32, rate = 4, f32> {
  %kv = v4.linear %h, %wkv : (tensor<?x32xf32>, tensor<32x32xf32>) -> tensor<?x32xf32>
  %g = v4.linear %h2, %wg : (tensor<?x32xf32>, tensor<32x32xf32>) -> tensor<?x32xf32>
  %s2, %e2 = v4.compress %kv, %g, %ape, %norm, %pos, %s, %e
      {eps = 1.0e-06 : f64, head_dim = 32 : i64, inv_freq = array<f32: 1.0, 0.1>,
       overlap = false, rate = 4 : i64, rope_dim = 4 : i64, scaling = 1.0 : f64}
      : (tensor<?x32xf32>, tensor<?x32xf32>, tensor<4x32xf32>, tensor<32xf32>, tensor<?xi32>,
         !v4.cache<compress_state, rows = 8, width = 64, f32>, !v4.cache<entries, width = 32, rate = 4, f32>)
      -> (!v4.cache<compress_state, rows = 8, width = 64, f32>, !v4.cache<entries, width = 32, rate = 4, f32>)
  return %e2 : !v4.cache<entries, width = 32, rate = 4, f32>
}
