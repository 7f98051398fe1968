// Round trip of every plan op and type: the printed form parses back to itself.
// RUN: v4-opt %s | v4-opt | FileCheck %s

v4.global @"model.embed_tokens.weight" : tensor<16x8xf32>
v4.global @"model.head.weight" : tensor<16x8xf32>

// CHECK: plan.cache_slot @layers.0.window {element_type = f32, kind = "window", layer = 0 : i64, rate = 0 : i64, rows = 4 : i64, width = 8 : i64}
plan.cache_slot @"layers.0.window" {kind = "window", layer = 0 : i64, rows = 4 : i64, width = 8 : i64,
                                    rate = 0 : i64, element_type = f32}
// CHECK: plan.cache_slot @layers.0.entries {element_type = bf16, kind = "entries", layer = 0 : i64, rate = 4 : i64, rows = 0 : i64, width = 8 : i64}
plan.cache_slot @"layers.0.entries" {kind = "entries", layer = 0 : i64, rows = 0 : i64, width = 8 : i64,
                                     rate = 4 : i64, element_type = bf16}

// CHECK-LABEL: plan.bucket @prefill_4
// CHECK-SAME: attributes {arena_bytes = 256 : i64, batch = 1 : i64, kind = "prefill", naive_bytes = 256 : i64, tokens = 4 : i64}
plan.bucket @prefill_4 attributes {kind = "prefill", tokens = 4 : i64, batch = 1 : i64,
                                   arena_bytes = 256 : i64, naive_bytes = 256 : i64} {
  // CHECK: %[[IDS:.*]] = plan.input "ids" : !plan.buffer<4xi32>
  %ids = plan.input "ids" : !plan.buffer<4xi32>
  // CHECK: %[[POS:.*]] = plan.input "positions" : !plan.buffer<4xi32>
  %pos = plan.input "positions" : !plan.buffer<4xi32>
  // CHECK: %[[LOGITS:.*]] = plan.output "logits" : !plan.buffer<4x16xf32>
  %logits = plan.output "logits" : !plan.buffer<4x16xf32>
  // CHECK: %[[WIN:.*]] = plan.cache @layers.0.window : !plan.cache
  %win = plan.cache @"layers.0.window" : !plan.cache
  // CHECK: %[[TABLE:.*]] = plan.weight @model.embed_tokens.weight : !plan.buffer<16x8xf32>
  %table = plan.weight @"model.embed_tokens.weight" : !plan.buffer<16x8xf32>
  // CHECK: %[[X:.*]] = plan.alloc offset 0 : !plan.buffer<4x8xf32>
  %x = plan.alloc offset 0 : !plan.buffer<4x8xf32>
  // CHECK: plan.launch "v4.embed"(%[[IDS]], %[[TABLE]] : !plan.buffer<4xi32>, !plan.buffer<16x8xf32>) -> (%[[X]] : !plan.buffer<4x8xf32>) {params = {}}
  plan.launch "v4.embed"(%ids, %table : !plan.buffer<4xi32>, !plan.buffer<16x8xf32>)
      -> (%x : !plan.buffer<4x8xf32>) {params = {}}
  // CHECK: plan.launch "v4.cache_append"(%[[WIN]], %[[X]], %[[POS]] : !plan.cache, !plan.buffer<4x8xf32>, !plan.buffer<4xi32>) -> (%[[WIN]] : !plan.cache) {params = {}}
  plan.launch "v4.cache_append"(%win, %x, %pos : !plan.cache, !plan.buffer<4x8xf32>, !plan.buffer<4xi32>)
      -> (%win : !plan.cache) {params = {}}
  // CHECK: %[[Y:.*]] = plan.alloc offset 128 : !plan.buffer<4x8xf32>
  %y = plan.alloc offset 128 : !plan.buffer<4x8xf32>
  // CHECK: plan.launch "v4.rms_norm"(%[[X]] : !plan.buffer<4x8xf32>) -> (%[[Y]] : !plan.buffer<4x8xf32>) {params = {eps = 9.9999999999999995E-7 : f64, group = 8 : i64}}
  plan.launch "v4.rms_norm"(%x : !plan.buffer<4x8xf32>) -> (%y : !plan.buffer<4x8xf32>)
      {params = {eps = 1.0e-6 : f64, group = 8 : i64}}
  %head = plan.weight @"model.head.weight" : !plan.buffer<16x8xf32>
  // CHECK: plan.launch "v4.linear"(%[[Y]], %{{.*}} : !plan.buffer<4x8xf32>, !plan.buffer<16x8xf32>) -> (%[[LOGITS]] : !plan.buffer<4x16xf32>)
  plan.launch "v4.linear"(%y, %head : !plan.buffer<4x8xf32>, !plan.buffer<16x8xf32>)
      -> (%logits : !plan.buffer<4x16xf32>) {params = {}}
  // CHECK-NOT: plan.return
}

// A decode bucket before memory planning: no offsets, no arena size yet.
// CHECK-LABEL: plan.bucket @decode_2
// CHECK-SAME: attributes {batch = 2 : i64, kind = "decode", tokens = 2 : i64}
plan.bucket @decode_2 attributes {kind = "decode", tokens = 2 : i64, batch = 2 : i64} {
  %ids = plan.input "ids" : !plan.buffer<2xi32>
  %logits = plan.output "logits" : !plan.buffer<2x16xf32>
  %table = plan.weight @"model.embed_tokens.weight" : !plan.buffer<16x8xf32>
  // CHECK: plan.alloc : !plan.buffer<2x8xf32>
  %x = plan.alloc : !plan.buffer<2x8xf32>
  plan.launch "v4.embed"(%ids, %table : !plan.buffer<2xi32>, !plan.buffer<16x8xf32>)
      -> (%x : !plan.buffer<2x8xf32>) {params = {}}
  // A launch without inputs (e.g. a fill).
  // CHECK: plan.launch "fill"() -> (%{{.*}} : !plan.buffer<2x16xf32>) {params = {value = 0.000000e+00 : f32}}
  plan.launch "fill"() -> (%logits : !plan.buffer<2x16xf32>) {params = {value = 0.0 : f32}}
  // The explicit terminator parses too.
  plan.return
}
