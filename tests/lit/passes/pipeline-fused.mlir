// The default pipeline with fusion: norm + linear fuse in every bucket; rope +
// window append fuse only in the single-token decode bucket.
// RUN: v4-opt --v4-default-pipeline="buckets=prefill:4,decode:1" %s | FileCheck %s
// RUN: v4-opt --v4-default-pipeline="buckets=prefill:4,decode:1 fuse=false" %s | FileCheck %s --check-prefix=UNFUSED

// CHECK-LABEL: plan.bucket @prefill_4
// CHECK: plan.launch "v4.embed"
// CHECK: plan.launch "v4.rope"
// CHECK: plan.launch "v4.attention"
// CHECK: plan.launch "v4.cache_append"
// CHECK: plan.launch "v4.norm_linear"
// CHECK-NOT: plan.launch
// CHECK-LABEL: plan.bucket @decode_1
// CHECK: plan.launch "v4.embed"
// CHECK: plan.launch "v4.rope_cache_append"
// CHECK: plan.launch "v4.attention"
// CHECK: plan.launch "v4.norm_linear"
// CHECK-NOT: plan.launch

// UNFUSED-LABEL: plan.bucket @decode_1
// UNFUSED: plan.launch "v4.embed"
// UNFUSED: plan.launch "v4.rope"
// UNFUSED: plan.launch "v4.attention"
// UNFUSED: plan.launch "v4.cache_append"
// UNFUSED: plan.launch "v4.rms_norm"
// UNFUSED: plan.launch "v4.linear"
v4.global @"model.embed.weight" : tensor<16x8xf32>
v4.global @"model.norm.weight" : tensor<8xf32>
v4.global @"model.sinks" : tensor<1xf32>
func.func @forward(%ids: tensor<?xi32>, %pos: tensor<?xi32>,
                   %win: !v4.cache<window, rows = 4, width = 8, f32> {v4.cache_name = "layers.0.window", v4.layer = 0 : i64})
    -> (tensor<?x16xf32>, !v4.cache<window, rows = 4, width = 8, f32>) {
  %table = v4.weight @"model.embed.weight" : tensor<16x8xf32>
  %x = v4.embed %ids, %table : (tensor<?xi32>, tensor<16x8xf32>) -> tensor<?x8xf32>
  %k = v4.rope %x, %pos {head_dim = 8 : i64, inv_freq = array<f32: 1.0, 0.1>, inverse = false, rope_dim = 4 : i64, scaling = 1.0 : f64}
      : (tensor<?x8xf32>, tensor<?xi32>) -> tensor<?x8xf32>
  %sinks = v4.weight @"model.sinks" : tensor<1xf32>
  %o = v4.attention %x, %k, %sinks, %pos, %win {head_dim = 8 : i64, num_heads = 1 : i64, rate = 0 : i64, scale = 0.35 : f64, window = 4 : i64}
      : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<1xf32>, tensor<?xi32>, !v4.cache<window, rows = 4, width = 8, f32>) -> tensor<?x8xf32>
  %win2 = v4.cache_append %win, %k, %pos
      : (!v4.cache<window, rows = 4, width = 8, f32>, tensor<?x8xf32>, tensor<?xi32>) -> !v4.cache<window, rows = 4, width = 8, f32>
  %nw = v4.weight @"model.norm.weight" : tensor<8xf32>
  %h = v4.rms_norm %o, %nw {eps = 1.0e-06 : f64, group = 8 : i64} : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
  %logits = v4.linear %h, %table : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
  return %logits, %win2 : tensor<?x16xf32>, !v4.cache<window, rows = 4, width = 8, f32>
}
