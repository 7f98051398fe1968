// A batched decode bucket (decode:4): four sessions' next tokens, one row
// each, through specialise, rope-append fusion, lower-to-plan and
// plan-memory. Rows are separate sessions, so the fusion fires as it does for
// decode_1, while a 4-token prefill chunk keeps rope and append apart.
// RUN: v4-opt --v4-specialize="buckets=prefill:4,decode:1,decode:4" --v4-fuse-rope-append --v4-lower-to-plan --v4-plan-memory %s | FileCheck %s

v4.global @"model.embed.weight" : tensor<16x8xf32>
v4.global @"model.sinks" : tensor<1xf32>

// CHECK: plan.cache_slot @layers.0.window {element_type = f32, kind = "window", layer = 0 : i64, rate = 0 : i64, rows = 4 : i64, width = 8 : i64}
// CHECK-NOT: plan.cache_slot

// CHECK-LABEL: plan.bucket @prefill_4
// CHECK: plan.launch "v4.rope"
// CHECK: plan.launch "v4.attention"
// CHECK: plan.launch "v4.cache_append"
// CHECK-NOT: v4.rope_cache_append

// CHECK-LABEL: plan.bucket @decode_1
// CHECK-SAME: arena_bytes = 192 : i64, batch = 1 : i64,
// CHECK-SAME: kind = "decode", naive_bytes = 192 : i64,
// CHECK-SAME: tokens = 1 : i64
// CHECK: plan.launch "v4.rope_cache_append"
// CHECK-NOT: plan.launch "v4.cache_append"

// Every token-major buffer has 4 rows; the arena holds 4 rows of x, k and
// the attention output at once (3 x 128 bytes; decode_1: 3 x 32 rounded to 64).
// CHECK-LABEL: plan.bucket @decode_4
// CHECK-SAME: arena_bytes = 384 : i64, batch = 4 : i64,
// CHECK-SAME: kind = "decode", naive_bytes = 384 : i64,
// CHECK-SAME: tokens = 4 : i64
// CHECK: %[[IDS:.*]] = plan.input "ids" : !plan.buffer<4xi32>
// CHECK: %[[POS:.*]] = plan.input "positions" : !plan.buffer<4xi32>
// CHECK: %[[WIN:.*]] = plan.cache @layers.0.window : !plan.cache
// CHECK: %[[LOGITS:.*]] = plan.output "logits" : !plan.buffer<4x16xf32>
// CHECK: %[[X:.*]] = plan.alloc offset 0 : !plan.buffer<4x8xf32>
// CHECK: plan.launch "v4.embed"(%[[IDS]], %{{.*}} : !plan.buffer<4xi32>, !plan.buffer<16x8xf32>) -> (%[[X]] : !plan.buffer<4x8xf32>)
// CHECK: %[[K:.*]] = plan.alloc offset 128 : !plan.buffer<4x8xf32>
// CHECK: plan.launch "v4.rope_cache_append"(%[[WIN]], %[[X]], %[[POS]] : !plan.cache, !plan.buffer<4x8xf32>, !plan.buffer<4xi32>) -> (%[[K]], %[[WIN]] : !plan.buffer<4x8xf32>, !plan.cache)
// CHECK: %[[ATT:.*]] = plan.alloc offset 256 : !plan.buffer<4x8xf32>
// CHECK: plan.launch "v4.attention"(%[[X]], %[[K]], %{{.*}}, %[[POS]], %[[WIN]] : {{.*}}) -> (%[[ATT]] : !plan.buffer<4x8xf32>)
// CHECK: plan.launch "v4.linear"(%[[ATT]], %{{.*}} : !plan.buffer<4x8xf32>, !plan.buffer<16x8xf32>) -> (%[[LOGITS]] : !plan.buffer<4x16xf32>)
// CHECK-NOT: plan.launch "v4.cache_append"
func.func @forward(%ids: tensor<?xi32>, %pos: tensor<?xi32>,
                   %win: !v4.cache<window, rows = 4, width = 8, f32> {v4.cache_name = "layers.0.window", v4.layer = 0 : i64})
    -> (tensor<?x16xf32>, !v4.cache<window, rows = 4, width = 8, f32>) {
  %table = v4.weight @"model.embed.weight" : tensor<16x8xf32>
  %sinks = v4.weight @"model.sinks" : tensor<1xf32>
  %x = v4.embed %ids, %table : (tensor<?xi32>, tensor<16x8xf32>) -> tensor<?x8xf32>
  %k = v4.rope %x, %pos {head_dim = 8 : i64, inv_freq = array<f32: 1.0, 0.1>, inverse = false, rope_dim = 4 : i64, scaling = 1.0 : f64}
      : (tensor<?x8xf32>, tensor<?xi32>) -> tensor<?x8xf32>
  %att = v4.attention %x, %k, %sinks, %pos, %win
      {head_dim = 8 : i64, num_heads = 1 : i64, rate = 0 : i64, scale = 0.35 : f64, window = 4 : i64}
      : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<1xf32>, tensor<?xi32>, !v4.cache<window, rows = 4, width = 8, f32>)
      -> tensor<?x8xf32>
  %win2 = v4.cache_append %win, %k, %pos
      : (!v4.cache<window, rows = 4, width = 8, f32>, tensor<?x8xf32>, tensor<?xi32>) -> !v4.cache<window, rows = 4, width = 8, f32>
  %logits = v4.linear %att, %table : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
  return %logits, %win2 : tensor<?x16xf32>, !v4.cache<window, rows = 4, width = 8, f32>
}
