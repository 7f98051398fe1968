// v4-fuse-rope-append: rope of a single-token kv feeding cache_append -> rope_cache_append,
// with attention reading the new window (equal for one token: it never reads slot pos mod W).
// RUN: v4-opt --split-input-file --v4-fuse-rope-append %s | FileCheck %s

// CHECK-LABEL: func.func @fires_decode
// CHECK: %[[K:.*]], %[[W2:.*]] = v4.rope_cache_append %arg2, %arg1, %arg3 {head_dim = 32 : i64, inv_freq = array<f32: 1.000000e+00, 1.000000e-01>, inverse = false, rope_dim = 4 : i64, scaling = 1.000000e+00 : f64} : (!v4.cache<window, rows = 8, width = 32, f32>, tensor<1x32xf32>, tensor<1xi32>) -> (tensor<1x32xf32>, !v4.cache<window, rows = 8, width = 32, f32>)
// CHECK-NEXT: %[[O:.*]] = v4.attention %arg0, %[[K]], %arg4, %arg3, %[[W2]] {
// CHECK-NOT: v4.rope
// CHECK-NOT: v4.cache_append
// CHECK: return %[[O]], %[[W2]]
func.func @fires_decode(%q: tensor<1x64xf32>, %kv: tensor<1x32xf32>, %win: !v4.cache<window, rows = 8, width = 32, f32>,
                        %pos: tensor<1xi32>, %sinks: tensor<2xf32>)
    -> (tensor<1x64xf32>, !v4.cache<window, rows = 8, width = 32, f32>) {
  %k = v4.rope %kv, %pos {head_dim = 32 : i64, inv_freq = array<f32: 1.0, 0.1>, inverse = false, rope_dim = 4 : i64, scaling = 1.0 : f64}
      : (tensor<1x32xf32>, tensor<1xi32>) -> tensor<1x32xf32>
  %o = v4.attention %q, %k, %sinks, %pos, %win {head_dim = 32 : i64, num_heads = 2 : i64, rate = 0 : i64, scale = 0.1767 : f64, window = 8 : i64}
      : (tensor<1x64xf32>, tensor<1x32xf32>, tensor<2xf32>, tensor<1xi32>, !v4.cache<window, rows = 8, width = 32, f32>) -> tensor<1x64xf32>
  %win2 = v4.cache_append %win, %k, %pos
      : (!v4.cache<window, rows = 8, width = 32, f32>, tensor<1x32xf32>, tensor<1xi32>) -> !v4.cache<window, rows = 8, width = 32, f32>
  return %o, %win2 : tensor<1x64xf32>, !v4.cache<window, rows = 8, width = 32, f32>
}

// -----

// A prefill chunk of 4 tokens: storing before attention would overwrite ring
// rows that attention still reads. No fusion.
// CHECK-LABEL: func.func @prefill_chunk
// CHECK: v4.rope
// CHECK: v4.attention
// CHECK: v4.cache_append
// CHECK-NOT: v4.rope_cache_append
func.func @prefill_chunk(%q: tensor<4x64xf32>, %kv: tensor<4x32xf32>, %win: !v4.cache<window, rows = 8, width = 32, f32>,
                         %pos: tensor<4xi32>, %sinks: tensor<2xf32>)
    -> (tensor<4x64xf32>, !v4.cache<window, rows = 8, width = 32, f32>) {
  %k = v4.rope %kv, %pos {head_dim = 32 : i64, inv_freq = array<f32: 1.0, 0.1>, inverse = false, rope_dim = 4 : i64, scaling = 1.0 : f64}
      : (tensor<4x32xf32>, tensor<4xi32>) -> tensor<4x32xf32>
  %o = v4.attention %q, %k, %sinks, %pos, %win {head_dim = 32 : i64, num_heads = 2 : i64, rate = 0 : i64, scale = 0.1767 : f64, window = 8 : i64}
      : (tensor<4x64xf32>, tensor<4x32xf32>, tensor<2xf32>, tensor<4xi32>, !v4.cache<window, rows = 8, width = 32, f32>) -> tensor<4x64xf32>
  %win2 = v4.cache_append %win, %k, %pos
      : (!v4.cache<window, rows = 8, width = 32, f32>, tensor<4x32xf32>, tensor<4xi32>) -> !v4.cache<window, rows = 8, width = 32, f32>
  return %o, %win2 : tensor<4x64xf32>, !v4.cache<window, rows = 8, width = 32, f32>
}

// -----

// Before v4-specialize the token count is unknown: no fusion.
// CHECK-LABEL: func.func @dynamic_tokens
// CHECK-NOT: v4.rope_cache_append
func.func @dynamic_tokens(%kv: tensor<?x32xf32>, %win: !v4.cache<window, rows = 8, width = 32, f32>, %pos: tensor<?xi32>)
    -> !v4.cache<window, rows = 8, width = 32, f32> {
  %k = v4.rope %kv, %pos {head_dim = 32 : i64, inv_freq = array<f32: 1.0, 0.1>, inverse = false, rope_dim = 4 : i64, scaling = 1.0 : f64}
      : (tensor<?x32xf32>, tensor<?xi32>) -> tensor<?x32xf32>
  %win2 = v4.cache_append %win, %k, %pos
      : (!v4.cache<window, rows = 8, width = 32, f32>, tensor<?x32xf32>, tensor<?xi32>) -> !v4.cache<window, rows = 8, width = 32, f32>
  return %win2 : !v4.cache<window, rows = 8, width = 32, f32>
}

// -----

// Something other than attention (a second append of other rows) reads the
// old window; it could not read the new one. No fusion.
// CHECK-LABEL: func.func @other_window_reader
// CHECK: v4.rope
// CHECK-NOT: v4.rope_cache_append
func.func @other_window_reader(%kv: tensor<1x32xf32>, %other: tensor<1x32xf32>,
                               %win: !v4.cache<window, rows = 8, width = 32, f32>, %pos: tensor<1xi32>)
    -> (!v4.cache<window, rows = 8, width = 32, f32>, !v4.cache<window, rows = 8, width = 32, f32>) {
  %k = v4.rope %kv, %pos {head_dim = 32 : i64, inv_freq = array<f32: 1.0, 0.1>, inverse = false, rope_dim = 4 : i64, scaling = 1.0 : f64}
      : (tensor<1x32xf32>, tensor<1xi32>) -> tensor<1x32xf32>
  %w1 = v4.cache_append %win, %other, %pos
      : (!v4.cache<window, rows = 8, width = 32, f32>, tensor<1x32xf32>, tensor<1xi32>) -> !v4.cache<window, rows = 8, width = 32, f32>
  %w2 = v4.cache_append %win, %k, %pos
      : (!v4.cache<window, rows = 8, width = 32, f32>, tensor<1x32xf32>, tensor<1xi32>) -> !v4.cache<window, rows = 8, width = 32, f32>
  return %w1, %w2 : !v4.cache<window, rows = 8, width = 32, f32>, !v4.cache<window, rows = 8, width = 32, f32>
}

// -----

// The rope rotates at other positions than the append stores: no fusion.
// CHECK-LABEL: func.func @different_positions
// CHECK-NOT: v4.rope_cache_append
func.func @different_positions(%kv: tensor<1x32xf32>, %win: !v4.cache<window, rows = 8, width = 32, f32>,
                               %pos: tensor<1xi32>, %pos2: tensor<1xi32>) -> !v4.cache<window, rows = 8, width = 32, f32> {
  %k = v4.rope %kv, %pos {head_dim = 32 : i64, inv_freq = array<f32: 1.0, 0.1>, inverse = false, rope_dim = 4 : i64, scaling = 1.0 : f64}
      : (tensor<1x32xf32>, tensor<1xi32>) -> tensor<1x32xf32>
  %win2 = v4.cache_append %win, %k, %pos2
      : (!v4.cache<window, rows = 8, width = 32, f32>, tensor<1x32xf32>, tensor<1xi32>) -> !v4.cache<window, rows = 8, width = 32, f32>
  return %win2 : !v4.cache<window, rows = 8, width = 32, f32>
}
