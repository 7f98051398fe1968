// v4-kv-cache-dtype retypes the window and entries caches (arguments, updated
// versions, results); fp8 keeps the producer's rope_dim channels bf16, except
// in indexer keys (all e4m3); compressor state stays f32.
// RUN: v4-opt --v4-kv-cache-dtype=dtype=fp8 %s | FileCheck %s --check-prefix=FP8
// RUN: v4-opt --v4-kv-cache-dtype=dtype=bf16 %s | FileCheck %s --check-prefix=BF16
// RUN: v4-opt --v4-kv-cache-dtype=dtype=fp32 %s | FileCheck %s --check-prefix=FP32 --implicit-check-not=bf16 --implicit-check-not=f8E4M3FN

// FP8-LABEL: func.func @forward
// FP8-SAME: %arg{{[0-9]+}}: !v4.cache<window, rows = 4, width = 8, rope = 4, f8E4M3FN> {v4.cache_name = "layers.0.window", v4.layer = 0 : i64}
// FP8-SAME: %arg{{[0-9]+}}: !v4.cache<compress_state, rows = 8, width = 32, f32>
// FP8-SAME: %arg{{[0-9]+}}: !v4.cache<entries, width = 8, rate = 4, rope = 4, f8E4M3FN>
// FP8-SAME: %arg{{[0-9]+}}: !v4.cache<compress_state, rows = 8, width = 32, f32>
// FP8-SAME: %arg{{[0-9]+}}: !v4.cache<entries, width = 8, rate = 4, f8E4M3FN> {v4.cache_name = "layers.0.indexer.entries"
// FP8-SAME: -> (tensor<4x4xi32>, !v4.cache<window, rows = 4, width = 8, rope = 4, f8E4M3FN>, !v4.cache<compress_state, rows = 8, width = 32, f32>, !v4.cache<entries, width = 8, rate = 4, rope = 4, f8E4M3FN>, !v4.cache<compress_state, rows = 8, width = 32, f32>, !v4.cache<entries, width = 8, rate = 4, f8E4M3FN>)
// FP8: v4.cache_append {{.*}} -> !v4.cache<window, rows = 4, width = 8, rope = 4, f8E4M3FN>
// FP8: v4.compress {{.*}} -> (!v4.cache<compress_state, rows = 8, width = 32, f32>, !v4.cache<entries, width = 8, rate = 4, rope = 4, f8E4M3FN>)
// FP8: v4.compress {{.*}} -> (!v4.cache<compress_state, rows = 8, width = 32, f32>, !v4.cache<entries, width = 8, rate = 4, f8E4M3FN>)
// FP8: v4.indexer_topk {{.*}} !v4.cache<entries, width = 8, rate = 4, f8E4M3FN>) -> tensor<4x4xi32>

// BF16-LABEL: func.func @forward
// BF16-SAME: !v4.cache<window, rows = 4, width = 8, bf16>
// BF16-SAME: !v4.cache<compress_state, rows = 8, width = 32, f32>
// BF16-SAME: !v4.cache<entries, width = 8, rate = 4, bf16>
// BF16-NOT: rope =
// BF16-NOT: f8E4M3FN

// FP32-LABEL: func.func @forward
// FP32-SAME: !v4.cache<window, rows = 4, width = 8, f32> {v4.cache_name = "layers.0.window", v4.layer = 0 : i64}
// FP32-SAME: !v4.cache<entries, width = 8, rate = 4, f32> {v4.cache_name = "layers.0.compressor.entries"
// FP32-SAME: !v4.cache<entries, width = 8, rate = 4, f32> {v4.cache_name = "layers.0.indexer.entries"
// FP32: v4.cache_append {{.*}} -> !v4.cache<window, rows = 4, width = 8, f32>
// FP32: v4.indexer_topk {{.*}} !v4.cache<entries, width = 8, rate = 4, f32>) -> tensor<4x4xi32>

v4.global @ape : tensor<4x16xf32>
v4.global @norm : tensor<8xf32>
func.func @forward(%x: tensor<4x8xf32>, %pos: tensor<4xi32>, %wts: tensor<4x2xf32>,
    %win: !v4.cache<window, rows = 4, width = 8, f32> {v4.cache_name = "layers.0.window", v4.layer = 0 : i64},
    %state: !v4.cache<compress_state, rows = 8, width = 32, f32> {v4.cache_name = "layers.0.compressor.state", v4.layer = 0 : i64},
    %entries: !v4.cache<entries, width = 8, rate = 4, f32> {v4.cache_name = "layers.0.compressor.entries", v4.layer = 0 : i64},
    %kstate: !v4.cache<compress_state, rows = 8, width = 32, f32> {v4.cache_name = "layers.0.indexer.state", v4.layer = 0 : i64},
    %keys: !v4.cache<entries, width = 8, rate = 4, f32> {v4.cache_name = "layers.0.indexer.entries", v4.layer = 0 : i64})
    -> (tensor<4x4xi32>, !v4.cache<window, rows = 4, width = 8, f32>,
        !v4.cache<compress_state, rows = 8, width = 32, f32>, !v4.cache<entries, width = 8, rate = 4, f32>,
        !v4.cache<compress_state, rows = 8, width = 32, f32>, !v4.cache<entries, width = 8, rate = 4, f32>) {
  %ape = v4.weight @ape : tensor<4x16xf32>
  %norm = v4.weight @norm : tensor<8xf32>
  %kv = v4.rope %x, %pos {head_dim = 8 : i64, inv_freq = array<f32: 1.0, 0.1>, inverse = false, rope_dim = 4 : i64,
                          scaling = 1.0 : f64} : (tensor<4x8xf32>, tensor<4xi32>) -> tensor<4x8xf32>
  %win2 = v4.cache_append %win, %kv, %pos
      : (!v4.cache<window, rows = 4, width = 8, f32>, tensor<4x8xf32>, tensor<4xi32>) -> !v4.cache<window, rows = 4, width = 8, f32>
  %s2, %e2 = v4.compress %ape, %ape, %ape, %norm, %pos, %state, %entries
      {eps = 1.0e-06 : f64, head_dim = 8 : i64, inv_freq = array<f32: 1.0, 0.1>, overlap = true, rate = 4 : i64,
       rope_dim = 4 : i64, scaling = 1.0 : f64}
      : (tensor<4x16xf32>, tensor<4x16xf32>, tensor<4x16xf32>, tensor<8xf32>, tensor<4xi32>,
         !v4.cache<compress_state, rows = 8, width = 32, f32>, !v4.cache<entries, width = 8, rate = 4, f32>)
      -> (!v4.cache<compress_state, rows = 8, width = 32, f32>, !v4.cache<entries, width = 8, rate = 4, f32>)
  %ks2, %k2 = v4.compress %ape, %ape, %ape, %norm, %pos, %kstate, %keys
      {eps = 1.0e-06 : f64, head_dim = 8 : i64, inv_freq = array<f32: 1.0, 0.1>, overlap = true, rate = 4 : i64,
       rope_dim = 4 : i64, scaling = 1.0 : f64}
      : (tensor<4x16xf32>, tensor<4x16xf32>, tensor<4x16xf32>, tensor<8xf32>, tensor<4xi32>,
         !v4.cache<compress_state, rows = 8, width = 32, f32>, !v4.cache<entries, width = 8, rate = 4, f32>)
      -> (!v4.cache<compress_state, rows = 8, width = 32, f32>, !v4.cache<entries, width = 8, rate = 4, f32>)
  %top = v4.indexer_topk %ape, %wts, %pos, %k2
      {head_dim = 8 : i64, heads = 2 : i64, rate = 4 : i64, score_scale = 0.35 : f64, top_k = 4 : i64, weight_scale = 0.7 : f64}
      : (tensor<4x16xf32>, tensor<4x2xf32>, tensor<4xi32>, !v4.cache<entries, width = 8, rate = 4, f32>) -> tensor<4x4xi32>
  return %top, %win2, %s2, %e2, %ks2, %k2
      : tensor<4x4xi32>, !v4.cache<window, rows = 4, width = 8, f32>,
        !v4.cache<compress_state, rows = 8, width = 32, f32>, !v4.cache<entries, width = 8, rate = 4, f32>,
        !v4.cache<compress_state, rows = 8, width = 32, f32>, !v4.cache<entries, width = 8, rate = 4, f32>
}
