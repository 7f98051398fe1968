// The default pipeline (specialise, lower, plan memory), pass by pass and as one flag.
// RUN: v4-opt --v4-specialize="buckets=prefill:4,decode:1" --v4-lower-to-plan --v4-plan-memory %s | FileCheck %s
// RUN: v4-opt --v4-default-pipeline="buckets=prefill:4,decode:1 fuse=false" %s | FileCheck %s
// (pipeline-fused.mlir checks the same graph with fusion on.)

// CHECK: v4.global @model.embed.weight
// CHECK: plan.cache_slot @layers.0.window {element_type = f32, kind = "window", layer = 0 : i64, rate = 0 : i64, rows = 4 : i64, width = 8 : i64}
// CHECK-LABEL: plan.bucket @prefill_4
// CHECK-SAME: attributes {arena_bytes = 128 : i64, batch = 1 : i64, kind = "prefill", naive_bytes = 256 : i64, peak_live_bytes = 128 : i64, tokens = 4 : i64, written_in_place = 1 : i64}
// CHECK: plan.alloc offset 0 : !plan.buffer<4x8xf32>
// CHECK: plan.launch "v4.embed"
// CHECK: plan.launch "v4.cache_append"
// The norm writes over x, whose last reader it is.
// CHECK: plan.alloc offset 0 : !plan.buffer<4x8xf32>
// CHECK: plan.launch "v4.rms_norm"
// CHECK: plan.launch "v4.linear"
// CHECK-LABEL: plan.bucket @decode_1
// CHECK-SAME: attributes {arena_bytes = 64 : i64, batch = 1 : i64, kind = "decode", naive_bytes = 128 : i64, peak_live_bytes = 64 : i64, tokens = 1 : i64, written_in_place = 1 : i64}
// CHECK-NOT: func.func
v4.global @"model.embed.weight" : tensor<16x8xf32>
v4.global @"model.norm.weight" : tensor<8xf32>
func.func @forward(%ids: tensor<?xi32>, %pos: tensor<?xi32>,
                   %win: !v4.cache<window, rows = 4, width = 8, f32> {v4.cache_name = "layers.0.window", v4.layer = 0 : i64})
    -> (tensor<?x16xf32>, !v4.cache<window, rows = 4, width = 8, f32>) {
  %table = v4.weight @"model.embed.weight" : tensor<16x8xf32>
  %x = v4.embed %ids, %table : (tensor<?xi32>, tensor<16x8xf32>) -> tensor<?x8xf32>
  %win2 = v4.cache_append %win, %x, %pos
      : (!v4.cache<window, rows = 4, width = 8, f32>, tensor<?x8xf32>, tensor<?xi32>) -> !v4.cache<window, rows = 4, width = 8, f32>
  %nw = v4.weight @"model.norm.weight" : tensor<8xf32>
  %h = v4.rms_norm %x, %nw {eps = 1.0e-06 : f64, group = 8 : i64} : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
  %logits = v4.linear %h, %table : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
  return %logits, %win2 : tensor<?x16xf32>, !v4.cache<window, rows = 4, width = 8, f32>
}
