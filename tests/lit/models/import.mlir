// The builder's graph of a real checkpoint: every layer type, both routings,
// caches threaded through @forward.
// RUN: v4c import %conformance/tiny-mixed | FileCheck %s

// CHECK-DAG: v4.global @model.embed_tokens.weight : tensor<512x64xf32>
// CHECK-DAG: v4.global @model.layers.0.mlp.gate.tid2eid : tensor<512x2xi32>
// CHECK-DAG: v4.global @model.layers.3.mlp.gate.e_score_correction_bias : tensor<8xf32>
// CHECK-DAG: v4.global @model.layers.1.self_attn.compressor.indexer.q_b_proj.weight : tensor<256x32xf32>
// CHECK-LABEL: func.func @forward(
// CHECK-SAME: %[[IDS:.*]]: tensor<?xi32>, %[[POS:[^:]*]]: tensor<?xi32>
// CHECK-SAME: !v4.cache<window, rows = 8, width = 32, f32> {v4.cache_name = "layers.0.window", v4.layer = 0 : i64}
// CHECK-SAME: !v4.cache<compress_state, rows = 8, width = 128, f32> {v4.cache_name = "layers.1.compressor.state"
// CHECK-SAME: !v4.cache<entries, width = 32, rate = 16, f32> {v4.cache_name = "layers.2.compressor.entries"
// CHECK: %[[X:.*]] = v4.embed %[[IDS]]
// CHECK: v4.hc_expand %[[X]] {hc = 4 : i64}
// Layer 0 is sliding: attention over the window only.
// CHECK: v4.attention %{{[0-9]+}}, %{{[0-9]+}}, %{{[0-9]+}}, %[[POS]], %{{[a-z0-9]+}} {head_dim = 32 : i64, num_heads = 4 : i64, rate = 0 : i64
// CHECK: v4.hash_router
// Layer 1 is CSA: compressor (overlapping), indexer compressor, top-k, then attention over both.
// CHECK: v4.compress {{.*}}overlap = true{{.*}}rate = 4 : i64
// CHECK: v4.compress {{.*}}head_dim = 16 : i64{{.*}}overlap = true
// CHECK: %[[TOPK:.*]] = v4.indexer_topk {{.*}}top_k = 4 : i64
// CHECK: v4.attention {{.*}} entries %new_entries topk %[[TOPK]] {{.*}}rate = 4 : i64
// Layer 2 is HCA: one non-overlapping compressor, no indexer.
// CHECK: v4.compress {{.*}}overlap = false{{.*}}rate = 16 : i64
// CHECK-NOT: v4.indexer_topk
// CHECK: v4.attention {{.*}} entries %{{[a-z_0-9]+}} {{{.*}}rate = 16 : i64
// Layer 3 routes by top-k.
// CHECK: v4.router {{.*}}top_k = 2 : i64
// CHECK: v4.hc_head
// CHECK: return
