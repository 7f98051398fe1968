// RUN: v4-opt --split-input-file --v4-lower-to-plan %s | FileCheck %s

v4.global @"model.embed.weight" : tensor<16x8xf32>
v4.global @"model.norm.weight" : tensor<8xf32>
v4.global @"model.sinks" : tensor<1xf32>

// The weights stay; one slot per named cache, shared by both buckets.
// CHECK: v4.global @model.embed.weight : tensor<16x8xf32>
// CHECK: v4.global @model.norm.weight : tensor<8xf32>
// CHECK: v4.global @model.sinks : tensor<1xf32>
// CHECK: plan.cache_slot @layers.0.window {element_type = f32, kind = "window", layer = 0 : i64, rate = 0 : i64, rows = 4 : i64, width = 8 : i64}
// CHECK-NOT: plan.cache_slot
// CHECK-LABEL: plan.bucket @prefill_4
// CHECK-SAME: attributes {batch = 1 : i64, kind = "prefill", tokens = 4 : i64}
// CHECK: %[[IDS:.*]] = plan.input "ids" : !plan.buffer<4xi32>
// CHECK: %[[POS:.*]] = plan.input "positions" : !plan.buffer<4xi32>
// CHECK: %[[WIN:.*]] = plan.cache @layers.0.window : !plan.cache
// CHECK: %[[LOGITS:.*]] = plan.output "logits" : !plan.buffer<4x16xf32>
// CHECK: %[[TABLE:.*]] = plan.weight @model.embed.weight : !plan.buffer<16x8xf32>
// CHECK: %[[X:.*]] = plan.alloc : !plan.buffer<4x8xf32>
// CHECK: plan.launch "v4.embed"(%[[IDS]], %[[TABLE]] : !plan.buffer<4xi32>, !plan.buffer<16x8xf32>) -> (%[[X]] : !plan.buffer<4x8xf32>) {params = {}}
// The attention reads the window before the append updates it in place.
// CHECK: %[[SINKS:.*]] = plan.weight @model.sinks
// CHECK: %[[NORM:.*]] = plan.weight @model.norm.weight
// CHECK: %[[ATT:.*]] = plan.alloc : !plan.buffer<4x8xf32>
// CHECK: plan.launch "v4.attention"(%[[X]], %[[X]], %[[SINKS]], %[[POS]], %[[WIN]] : {{.*}}) -> (%[[ATT]] : !plan.buffer<4x8xf32>)
// CHECK-SAME: {params = {head_dim = 8 : i64, num_heads = 1 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 0, 0>, rate = 0 : i64, scale = 3.500000e-01 : f64, window = 4 : i64}}
// CHECK: plan.launch "v4.cache_append"(%[[WIN]], %[[X]], %[[POS]] : !plan.cache, !plan.buffer<4x8xf32>, !plan.buffer<4xi32>) -> (%[[WIN]] : !plan.cache)
// CHECK: %[[H:.*]] = plan.alloc : !plan.buffer<4x8xf32>
// rms_norm is V4_InPlaceElementwise: its result may overwrite the operand of
// its own type (#0), never the weight.
// CHECK: plan.launch "v4.rms_norm"(%[[ATT]], %[[NORM]] : {{.*}}) -> (%[[H]] : !plan.buffer<4x8xf32>) {in_place = array<i64: 0>, params = {eps = 9.9999999999999995E-7 : f64, group = 8 : i64}}
// The logits are written straight into the output slot.
// CHECK: plan.launch "v4.linear"(%[[H]], %[[TABLE]] : !plan.buffer<4x8xf32>, !plan.buffer<16x8xf32>) -> (%[[LOGITS]] : !plan.buffer<4x16xf32>) {params = {}}
// CHECK-NOT: func.func
func.func @prefill_4(%ids: tensor<4xi32>, %pos: tensor<4xi32>,
                     %win: !v4.cache<window, rows = 4, width = 8, f32> {v4.cache_name = "layers.0.window", v4.layer = 0 : i64})
    -> (tensor<4x16xf32>, !v4.cache<window, rows = 4, width = 8, f32>)
    attributes {v4.bucket = {batch = 1 : i64, kind = "prefill", tokens = 4 : i64}} {
  %table = v4.weight @"model.embed.weight" : tensor<16x8xf32>
  %x = v4.embed %ids, %table : (tensor<4xi32>, tensor<16x8xf32>) -> tensor<4x8xf32>
  %sinks = v4.weight @"model.sinks" : tensor<1xf32>
  %norm = v4.weight @"model.norm.weight" : tensor<8xf32>
  %att = v4.attention %x, %x, %sinks, %pos, %win
      {head_dim = 8 : i64, num_heads = 1 : i64, rate = 0 : i64, scale = 0.35 : f64, window = 4 : i64}
      : (tensor<4x8xf32>, tensor<4x8xf32>, tensor<1xf32>, tensor<4xi32>, !v4.cache<window, rows = 4, width = 8, f32>)
      -> tensor<4x8xf32>
  %win2 = v4.cache_append %win, %x, %pos
      : (!v4.cache<window, rows = 4, width = 8, f32>, tensor<4x8xf32>, tensor<4xi32>) -> !v4.cache<window, rows = 4, width = 8, f32>
  %h = v4.rms_norm %att, %norm {eps = 1.0e-06 : f64, group = 8 : i64}
      : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  %logits = v4.linear %h, %table : (tensor<4x8xf32>, tensor<16x8xf32>) -> tensor<4x16xf32>
  return %logits, %win2 : tensor<4x16xf32>, !v4.cache<window, rows = 4, width = 8, f32>
}

// CHECK-LABEL: plan.bucket @decode_1
// CHECK-SAME: attributes {batch = 1 : i64, kind = "decode", tokens = 1 : i64}
// CHECK: plan.cache @layers.0.window : !plan.cache
// CHECK: plan.launch "v4.cache_append"
func.func @decode_1(%ids: tensor<1xi32>, %pos: tensor<1xi32>,
                    %win: !v4.cache<window, rows = 4, width = 8, f32> {v4.cache_name = "layers.0.window", v4.layer = 0 : i64})
    -> (tensor<1x16xf32>, !v4.cache<window, rows = 4, width = 8, f32>)
    attributes {v4.bucket = {batch = 1 : i64, kind = "decode", tokens = 1 : i64}} {
  %table = v4.weight @"model.embed.weight" : tensor<16x8xf32>
  %x = v4.embed %ids, %table : (tensor<1xi32>, tensor<16x8xf32>) -> tensor<1x8xf32>
  %win2 = v4.cache_append %win, %x, %pos
      : (!v4.cache<window, rows = 4, width = 8, f32>, tensor<1x8xf32>, tensor<1xi32>) -> !v4.cache<window, rows = 4, width = 8, f32>
  %logits = v4.linear %x, %table : (tensor<1x8xf32>, tensor<16x8xf32>) -> tensor<1x16xf32>
  return %logits, %win2 : tensor<1x16xf32>, !v4.cache<window, rows = 4, width = 8, f32>
}

// -----

// A compressor updates two caches at once; each result goes back to its slot.
// CHECK: plan.cache_slot @layers.1.state {element_type = f32, kind = "compress_state", layer = 1 : i64, rate = 0 : i64, rows = 8 : i64, width = 32 : i64}
// CHECK: plan.cache_slot @layers.1.entries {element_type = f32, kind = "entries", layer = 1 : i64, rate = 4 : i64, rows = 0 : i64, width = 8 : i64}
// CHECK-LABEL: plan.bucket @prefill_4
// CHECK: %[[STATE:.*]] = plan.cache @layers.1.state
// CHECK: %[[ENTRIES:.*]] = plan.cache @layers.1.entries
// CHECK: plan.launch "v4.compress"({{.*}}, %[[STATE]], %[[ENTRIES]] : {{.*}}) -> (%[[STATE]], %[[ENTRIES]] : !plan.cache, !plan.cache)
v4.global @"model.layers.1.attn.compressor.ape" : tensor<4x16xf32>
v4.global @"model.layers.1.attn.compressor.norm.weight" : tensor<8xf32>
func.func @prefill_4(%ids: tensor<4xi32>, %pos: tensor<4xi32>,
                     %state: !v4.cache<compress_state, rows = 8, width = 32, f32> {v4.cache_name = "layers.1.state", v4.layer = 1 : i64},
                     %entries: !v4.cache<entries, width = 8, rate = 4, f32> {v4.cache_name = "layers.1.entries", v4.layer = 1 : i64})
    -> (tensor<4x16xf32>, !v4.cache<compress_state, rows = 8, width = 32, f32>, !v4.cache<entries, width = 8, rate = 4, f32>)
    attributes {v4.bucket = {batch = 1 : i64, kind = "prefill", tokens = 4 : i64}} {
  %ape = v4.weight @"model.layers.1.attn.compressor.ape" : tensor<4x16xf32>
  %norm = v4.weight @"model.layers.1.attn.compressor.norm.weight" : tensor<8xf32>
  %kv = v4.add %ape, %ape : (tensor<4x16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32>
  %s2, %e2 = v4.compress %kv, %kv, %ape, %norm, %pos, %state, %entries
      {eps = 1.0e-06 : f64, head_dim = 8 : i64, inv_freq = array<f32: 1.0, 0.1>, overlap = true, rate = 4 : i64,
       rope_dim = 4 : i64, scaling = 1.0 : f64}
      : (tensor<4x16xf32>, tensor<4x16xf32>, tensor<4x16xf32>, tensor<8xf32>, tensor<4xi32>,
         !v4.cache<compress_state, rows = 8, width = 32, f32>, !v4.cache<entries, width = 8, rate = 4, f32>)
      -> (!v4.cache<compress_state, rows = 8, width = 32, f32>, !v4.cache<entries, width = 8, rate = 4, f32>)
  return %kv, %s2, %e2 : tensor<4x16xf32>, !v4.cache<compress_state, rows = 8, width = 32, f32>, !v4.cache<entries, width = 8, rate = 4, f32>
}
