// RUN: v4-opt --split-input-file --v4-plan-memory %s | FileCheck %s

// A chain a -> b -> c -> d of 128-byte buffers: c reuses a's bytes, d b's.
// CHECK-LABEL: plan.bucket @prefill_4
// CHECK-SAME: arena_bytes = 256 : i64
// CHECK-SAME: naive_bytes = 512 : i64
// CHECK: %[[A:.*]] = plan.alloc offset 0 : !plan.buffer<4x8xf32>
// CHECK: %[[B:.*]] = plan.alloc offset 128 : !plan.buffer<4x8xf32>
// CHECK: %[[C:.*]] = plan.alloc offset 0 : !plan.buffer<4x8xf32>
// CHECK: %[[D:.*]] = plan.alloc offset 128 : !plan.buffer<4x8xf32>
// CHECK: plan.launch "v4.linear"(%[[D]]
v4.global @"model.w" : tensor<16x8xf32>
plan.bucket @prefill_4 attributes {kind = "prefill", tokens = 4 : i64, batch = 1 : i64} {
  %ids = plan.input "ids" : !plan.buffer<4xi32>
  %logits = plan.output "logits" : !plan.buffer<4x16xf32>
  %w = plan.weight @"model.w" : !plan.buffer<16x8xf32>
  %a = plan.alloc : !plan.buffer<4x8xf32>
  plan.launch "v4.embed"(%ids, %w : !plan.buffer<4xi32>, !plan.buffer<16x8xf32>) -> (%a : !plan.buffer<4x8xf32>) {params = {}}
  %b = plan.alloc : !plan.buffer<4x8xf32>
  plan.launch "v4.rms_norm"(%a : !plan.buffer<4x8xf32>) -> (%b : !plan.buffer<4x8xf32>) {params = {}}
  %c = plan.alloc : !plan.buffer<4x8xf32>
  plan.launch "v4.rms_norm"(%b : !plan.buffer<4x8xf32>) -> (%c : !plan.buffer<4x8xf32>) {params = {}}
  %d = plan.alloc : !plan.buffer<4x8xf32>
  plan.launch "v4.rms_norm"(%c : !plan.buffer<4x8xf32>) -> (%d : !plan.buffer<4x8xf32>) {params = {}}
  plan.launch "v4.linear"(%d, %w : !plan.buffer<4x8xf32>, !plan.buffer<16x8xf32>) -> (%logits : !plan.buffer<4x16xf32>) {params = {}}
}

// -----

// A residual stream stays live across the block: x is read by the last add,
// so nothing written in between may take its bytes. Sizes round up to 64.
// CHECK-LABEL: plan.bucket @decode_1
// CHECK-SAME: arena_bytes = 192 : i64
// CHECK-SAME: naive_bytes = 256 : i64
// CHECK: %[[X:.*]] = plan.alloc offset 0 : !plan.buffer<1x8xf32>
// CHECK: %[[H:.*]] = plan.alloc offset 64 : !plan.buffer<1x8xf32>
// CHECK: %[[G:.*]] = plan.alloc offset 128 : !plan.buffer<1x8xf32>
// CHECK: %[[Y:.*]] = plan.alloc offset 64 : !plan.buffer<1x8xf32>
v4.global @"model.w" : tensor<16x8xf32>
plan.bucket @decode_1 attributes {kind = "decode", tokens = 1 : i64, batch = 1 : i64} {
  %ids = plan.input "ids" : !plan.buffer<1xi32>
  %logits = plan.output "logits" : !plan.buffer<1x16xf32>
  %w = plan.weight @"model.w" : !plan.buffer<16x8xf32>
  %x = plan.alloc : !plan.buffer<1x8xf32>
  plan.launch "v4.embed"(%ids, %w : !plan.buffer<1xi32>, !plan.buffer<16x8xf32>) -> (%x : !plan.buffer<1x8xf32>) {params = {}}
  %h = plan.alloc : !plan.buffer<1x8xf32>
  plan.launch "v4.rms_norm"(%x : !plan.buffer<1x8xf32>) -> (%h : !plan.buffer<1x8xf32>) {params = {}}
  %g = plan.alloc : !plan.buffer<1x8xf32>
  plan.launch "v4.rms_norm"(%h : !plan.buffer<1x8xf32>) -> (%g : !plan.buffer<1x8xf32>) {params = {}}
  %y = plan.alloc : !plan.buffer<1x8xf32>
  plan.launch "v4.add"(%x, %g : !plan.buffer<1x8xf32>, !plan.buffer<1x8xf32>) -> (%y : !plan.buffer<1x8xf32>) {params = {}}
  plan.launch "v4.linear"(%y, %w : !plan.buffer<1x8xf32>, !plan.buffer<16x8xf32>) -> (%logits : !plan.buffer<1x16xf32>) {params = {}}
}

// -----

// In place: each in_place launch's input dies there and has the result's
// type, so the result takes the input's bytes. x, h and g are one slot.
// CHECK-LABEL: plan.bucket @prefill_4
// CHECK-SAME: arena_bytes = 128 : i64
// CHECK-SAME: naive_bytes = 384 : i64
// CHECK-SAME: peak_live_bytes = 128 : i64
// CHECK-SAME: written_in_place = 2 : i64
// CHECK: %[[X:.*]] = plan.alloc offset 0 : !plan.buffer<4x8xf32>
// CHECK: %[[H:.*]] = plan.alloc offset 0 : !plan.buffer<4x8xf32>
// CHECK: %[[G:.*]] = plan.alloc offset 0 : !plan.buffer<4x8xf32>
v4.global @"model.w" : tensor<16x8xf32>
plan.bucket @prefill_4 attributes {kind = "prefill", tokens = 4 : i64, batch = 1 : i64} {
  %ids = plan.input "ids" : !plan.buffer<4xi32>
  %pos = plan.input "positions" : !plan.buffer<4xi32>
  %logits = plan.output "logits" : !plan.buffer<4x16xf32>
  %w = plan.weight @"model.w" : !plan.buffer<16x8xf32>
  %x = plan.alloc : !plan.buffer<4x8xf32>
  plan.launch "v4.embed"(%ids, %w : !plan.buffer<4xi32>, !plan.buffer<16x8xf32>) -> (%x : !plan.buffer<4x8xf32>) {params = {}}
  %h = plan.alloc : !plan.buffer<4x8xf32>
  plan.launch "v4.rms_norm"(%x : !plan.buffer<4x8xf32>) -> (%h : !plan.buffer<4x8xf32>) {in_place = array<i64: 0>, params = {}}
  %g = plan.alloc : !plan.buffer<4x8xf32>
  plan.launch "v4.rope"(%h, %pos : !plan.buffer<4x8xf32>, !plan.buffer<4xi32>) -> (%g : !plan.buffer<4x8xf32>) {in_place = array<i64: 0>, params = {}}
  plan.launch "v4.linear"(%g, %w : !plan.buffer<4x8xf32>, !plan.buffer<16x8xf32>) -> (%logits : !plan.buffer<4x16xf32>) {params = {}}
}

// -----

// Not in place while the input is read by a later launch: x feeds the add,
// so the norm's h gets its own bytes. The add may take either input (both
// die there); it takes the first, x.
// CHECK-LABEL: plan.bucket @decode_1
// CHECK-SAME: arena_bytes = 128 : i64
// CHECK-SAME: naive_bytes = 192 : i64
// CHECK-SAME: peak_live_bytes = 128 : i64
// CHECK-SAME: written_in_place = 1 : i64
// CHECK: %[[X:.*]] = plan.alloc offset 0 : !plan.buffer<1x8xf32>
// CHECK: %[[H:.*]] = plan.alloc offset 64 : !plan.buffer<1x8xf32>
// CHECK: %[[Y:.*]] = plan.alloc offset 0 : !plan.buffer<1x8xf32>
v4.global @"model.w" : tensor<16x8xf32>
plan.bucket @decode_1 attributes {kind = "decode", tokens = 1 : i64, batch = 1 : i64} {
  %ids = plan.input "ids" : !plan.buffer<1xi32>
  %logits = plan.output "logits" : !plan.buffer<1x16xf32>
  %w = plan.weight @"model.w" : !plan.buffer<16x8xf32>
  %x = plan.alloc : !plan.buffer<1x8xf32>
  plan.launch "v4.embed"(%ids, %w : !plan.buffer<1xi32>, !plan.buffer<16x8xf32>) -> (%x : !plan.buffer<1x8xf32>) {params = {}}
  %h = plan.alloc : !plan.buffer<1x8xf32>
  plan.launch "v4.rms_norm"(%x : !plan.buffer<1x8xf32>) -> (%h : !plan.buffer<1x8xf32>) {in_place = array<i64: 0>, params = {}}
  %y = plan.alloc : !plan.buffer<1x8xf32>
  plan.launch "v4.add"(%x, %h : !plan.buffer<1x8xf32>, !plan.buffer<1x8xf32>) -> (%y : !plan.buffer<1x8xf32>) {in_place = array<i64: 0, 1>, params = {}}
  plan.launch "v4.linear"(%y, %w : !plan.buffer<1x8xf32>, !plan.buffer<16x8xf32>) -> (%logits : !plan.buffer<1x16xf32>) {params = {}}
}

// -----

// Not in place for a launch without the property: the linear's input dies
// there and has the result's size, but a matrix product reads every input
// row for each output row, so y needs its own bytes.
// CHECK-LABEL: plan.bucket @decode_1
// CHECK-SAME: arena_bytes = 128 : i64
// CHECK-SAME: written_in_place = 0 : i64
// CHECK: %[[X:.*]] = plan.alloc offset 0 : !plan.buffer<1x8xf32>
// CHECK: %[[Y:.*]] = plan.alloc offset 64 : !plan.buffer<1x8xf32>
v4.global @"model.w" : tensor<16x8xf32>
v4.global @"model.square" : tensor<8x8xf32>
plan.bucket @decode_1 attributes {kind = "decode", tokens = 1 : i64, batch = 1 : i64} {
  %ids = plan.input "ids" : !plan.buffer<1xi32>
  %logits = plan.output "logits" : !plan.buffer<1x16xf32>
  %w = plan.weight @"model.w" : !plan.buffer<16x8xf32>
  %sq = plan.weight @"model.square" : !plan.buffer<8x8xf32>
  %x = plan.alloc : !plan.buffer<1x8xf32>
  plan.launch "v4.embed"(%ids, %w : !plan.buffer<1xi32>, !plan.buffer<16x8xf32>) -> (%x : !plan.buffer<1x8xf32>) {params = {}}
  %y = plan.alloc : !plan.buffer<1x8xf32>
  plan.launch "v4.linear"(%x, %sq : !plan.buffer<1x8xf32>, !plan.buffer<8x8xf32>) -> (%y : !plan.buffer<1x8xf32>) {params = {}}
  plan.launch "v4.linear"(%y, %w : !plan.buffer<1x8xf32>, !plan.buffer<16x8xf32>) -> (%logits : !plan.buffer<1x16xf32>) {params = {}}
}

// -----

// Not in place when the types differ: the dying input x (4x8) is smaller
// than the result (4x16), so they cannot be the same bytes.
// CHECK-LABEL: plan.bucket @prefill_4
// CHECK-SAME: arena_bytes = 384 : i64
// CHECK-SAME: written_in_place = 0 : i64
// CHECK: %[[X:.*]] = plan.alloc offset 256 : !plan.buffer<4x8xf32>
// CHECK: %[[Y:.*]] = plan.alloc offset 0 : !plan.buffer<4x16xf32>
v4.global @"model.w" : tensor<16x8xf32>
v4.global @"model.head" : tensor<16x16xf32>
plan.bucket @prefill_4 attributes {kind = "prefill", tokens = 4 : i64, batch = 1 : i64} {
  %ids = plan.input "ids" : !plan.buffer<4xi32>
  %logits = plan.output "logits" : !plan.buffer<4x16xf32>
  %w = plan.weight @"model.w" : !plan.buffer<16x8xf32>
  %head = plan.weight @"model.head" : !plan.buffer<16x16xf32>
  %x = plan.alloc : !plan.buffer<4x8xf32>
  plan.launch "v4.embed"(%ids, %w : !plan.buffer<4xi32>, !plan.buffer<16x8xf32>) -> (%x : !plan.buffer<4x8xf32>) {params = {}}
  %y = plan.alloc : !plan.buffer<4x16xf32>
  plan.launch "v4.hc_expand"(%x : !plan.buffer<4x8xf32>) -> (%y : !plan.buffer<4x16xf32>) {in_place = array<i64: 0>, params = {hc = 2 : i64}}
  plan.launch "v4.linear"(%y, %head : !plan.buffer<4x16xf32>, !plan.buffer<16x16xf32>) -> (%logits : !plan.buffer<4x16xf32>) {params = {}}
}
