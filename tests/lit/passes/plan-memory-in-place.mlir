// RUN: v4-opt --v4-lower-to-plan --v4-plan-memory %s | FileCheck %s

// In-place reuse driven by the ops' V4_InPlaceElementwise trait, from v4 ops
// to offsets. rms_norm writes over x and rope over the normed rows (one slot
// for x, n, r); the linear has no such property, so l gets its own bytes;
// swiglu writes over l (both of its inputs die there, the first one wins).
// CHECK-LABEL: plan.bucket @decode_1
// CHECK-SAME: arena_bytes = 128 : i64
// CHECK-SAME: naive_bytes = 320 : i64
// CHECK-SAME: peak_live_bytes = 128 : i64
// CHECK-SAME: written_in_place = 3 : i64
// CHECK: %[[X:.*]] = plan.alloc offset 0 : !plan.buffer<1x8xf32>
// CHECK: plan.launch "v4.embed"({{.*}}) -> (%[[X]] : !plan.buffer<1x8xf32>) {params = {}}
// CHECK: %[[N:.*]] = plan.alloc offset 0 : !plan.buffer<1x8xf32>
// CHECK: plan.launch "v4.rms_norm"(%[[X]] : {{.*}}) -> (%[[N]] : {{.*}}) {in_place = array<i64: 0>, params =
// CHECK: %[[R:.*]] = plan.alloc offset 0 : !plan.buffer<1x8xf32>
// CHECK: plan.launch "v4.rope"(%[[N]], %{{.*}} : {{.*}}) -> (%[[R]] : {{.*}}) {in_place = array<i64: 0>, params =
// CHECK: %[[L:.*]] = plan.alloc offset 64 : !plan.buffer<1x8xf32>
// CHECK: plan.launch "v4.linear"(%[[R]], %{{.*}} : {{.*}}) -> (%[[L]] : {{.*}}) {params = {}}
// CHECK: %[[S:.*]] = plan.alloc offset 64 : !plan.buffer<1x8xf32>
// CHECK: plan.launch "v4.swiglu"(%[[L]], %[[R]] : {{.*}}) -> (%[[S]] : {{.*}}) {in_place = array<i64: 0, 1>, params =
v4.global @"model.embed.weight" : tensor<16x8xf32>
v4.global @"model.square" : tensor<8x8xf32>
func.func @decode_1(%ids: tensor<1xi32>, %pos: tensor<1xi32>) -> tensor<1x16xf32>
    attributes {v4.bucket = {batch = 1 : i64, kind = "decode", tokens = 1 : i64}} {
  %table = v4.weight @"model.embed.weight" : tensor<16x8xf32>
  %square = v4.weight @"model.square" : tensor<8x8xf32>
  %x = v4.embed %ids, %table : (tensor<1xi32>, tensor<16x8xf32>) -> tensor<1x8xf32>
  %n = v4.rms_norm %x {eps = 1.0e-06 : f64, group = 8 : i64} : (tensor<1x8xf32>) -> tensor<1x8xf32>
  %r = v4.rope %n, %pos {head_dim = 8 : i64, inv_freq = array<f32: 1.0, 0.1>, inverse = false,
                         rope_dim = 4 : i64, scaling = 1.0 : f64}
      : (tensor<1x8xf32>, tensor<1xi32>) -> tensor<1x8xf32>
  %l = v4.linear %r, %square : (tensor<1x8xf32>, tensor<8x8xf32>) -> tensor<1x8xf32>
  %s = v4.swiglu %l, %r {limit = 10.0 : f64} : (tensor<1x8xf32>, tensor<1x8xf32>) -> tensor<1x8xf32>
  %logits = v4.linear %s, %table : (tensor<1x8xf32>, tensor<16x8xf32>) -> tensor<1x16xf32>
  return %logits : tensor<1x16xf32>
}
