// RUN: v4-opt --split-input-file --v4-specialize="buckets=prefill:4,decode:2" %s | FileCheck %s

v4.global @"model.embed.weight" : tensor<16x8xf32>

// CHECK-NOT: func.func @forward
// CHECK-LABEL: func.func @prefill_4
// CHECK-SAME: (%[[IDS:.*]]: tensor<4xi32>, %[[POS:.*]]: tensor<4xi32>, %[[WIN:.*]]: !v4.cache<window, rows = 4, width = 8, f32> {v4.cache_name = "layers.0.window", v4.layer = 0 : i64})
// CHECK-SAME: -> (tensor<4x16xf32>, !v4.cache<window, rows = 4, width = 8, f32>)
// CHECK-SAME: attributes {v4.bucket = {batch = 1 : i64, kind = "prefill", tokens = 4 : i64}}
// CHECK: %[[TABLE:.*]] = v4.weight @model.embed.weight : tensor<16x8xf32>
// CHECK: %[[X:.*]] = v4.embed %[[IDS]], %[[TABLE]] : (tensor<4xi32>, tensor<16x8xf32>) -> tensor<4x8xf32>
// CHECK: %[[WIN2:.*]] = v4.cache_append %[[WIN]], %[[X]], %[[POS]] : (!v4.cache<window, rows = 4, width = 8, f32>, tensor<4x8xf32>, tensor<4xi32>) -> !v4.cache<window, rows = 4, width = 8, f32>
// CHECK: %[[LOGITS:.*]] = v4.linear %[[X]], %[[TABLE]] : (tensor<4x8xf32>, tensor<16x8xf32>) -> tensor<4x16xf32>
// CHECK: return %[[LOGITS]], %[[WIN2]] : tensor<4x16xf32>, !v4.cache<window, rows = 4, width = 8, f32>

// A decode bucket of 2 sessions runs 2 tokens, one per session.
// CHECK-LABEL: func.func @decode_2
// CHECK-SAME: tensor<2xi32>
// CHECK-SAME: -> (tensor<2x16xf32>, !v4.cache<window, rows = 4, width = 8, f32>)
// CHECK-SAME: attributes {v4.bucket = {batch = 2 : i64, kind = "decode", tokens = 2 : i64}}
// CHECK: v4.embed {{.*}} -> tensor<2x8xf32>
// CHECK: v4.linear {{.*}} -> tensor<2x16xf32>
func.func @forward(%ids: tensor<?xi32>, %pos: tensor<?xi32>,
                   %win: !v4.cache<window, rows = 4, width = 8, f32> {v4.cache_name = "layers.0.window", v4.layer = 0 : i64})
    -> (tensor<?x16xf32>, !v4.cache<window, rows = 4, width = 8, f32>) {
  %table = v4.weight @"model.embed.weight" : tensor<16x8xf32>
  %x = v4.embed %ids, %table : (tensor<?xi32>, tensor<16x8xf32>) -> tensor<?x8xf32>
  %win2 = v4.cache_append %win, %x, %pos
      : (!v4.cache<window, rows = 4, width = 8, f32>, tensor<?x8xf32>, tensor<?xi32>) -> !v4.cache<window, rows = 4, width = 8, f32>
  %logits = v4.linear %x, %table : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
  return %logits, %win2 : tensor<?x16xf32>, !v4.cache<window, rows = 4, width = 8, f32>
}

// -----

// Other functions and static dims are left alone; entries caches keep `?` rows.
// CHECK-LABEL: func.func @helper
// CHECK-SAME: tensor<?x8xf32>
func.func @helper(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  return %x : tensor<?x8xf32>
}
// CHECK-LABEL: func.func @prefill_4
// CHECK-SAME: !v4.cache<entries, width = 8, rate = 4, f32>
// CHECK-SAME: -> tensor<4x8xf32>
func.func @forward(%x: tensor<?x8xf32>, %e: !v4.cache<entries, width = 8, rate = 4, f32>) -> tensor<?x8xf32> {
  return %x : tensor<?x8xf32>
}
