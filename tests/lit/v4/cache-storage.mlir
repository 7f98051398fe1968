// The storage formats of !v4.cache (docs/quantization.md, "KV cache"): bf16,
// and f8E4M3FN = e4m3 channels with a bf16 tail of `rope` channels. Round
// trip, then ops that store f32 rows into narrow caches.
// RUN: v4-opt %s | v4-opt | FileCheck %s

// CHECK-LABEL: func.func @storage_types
// CHECK-SAME: (%{{.*}}: !v4.cache<window, rows = 128, width = 512, rope = 64, f8E4M3FN>,
// CHECK-SAME: %{{.*}}: !v4.cache<entries, width = 512, rate = 4, rope = 64, f8E4M3FN>,
// CHECK-SAME: %{{.*}}: !v4.cache<entries, width = 128, rate = 4, f8E4M3FN>,
// CHECK-SAME: %{{.*}}: !v4.cache<window, rows = 8, width = 32, bf16>)
func.func @storage_types(%w: !v4.cache<window, rows = 128, width = 512, rope = 64, f8E4M3FN>,
                         %e: !v4.cache<entries, rope = 64, width = 512, rate = 4, f8E4M3FN>,
                         %k: !v4.cache<entries, width = 128, rate = 4, rope = 0, f8E4M3FN>,
                         %b: !v4.cache<window, rows = 8, width = 32, bf16>) {
  return
}

// f32 kv rows go into an fp8 window: the store rounds them.
// CHECK-LABEL: func.func @append_f32_rows
// CHECK: v4.cache_append %{{.*}} -> !v4.cache<window, rows = 8, width = 32, rope = 4, f8E4M3FN>
func.func @append_f32_rows(%w: !v4.cache<window, rows = 8, width = 32, rope = 4, f8E4M3FN>,
                           %kv: tensor<?x32xf32>, %pos: tensor<?xi32>)
    -> !v4.cache<window, rows = 8, width = 32, rope = 4, f8E4M3FN> {
  %w2 = v4.cache_append %w, %kv, %pos : (!v4.cache<window, rows = 8, width = 32, rope = 4, f8E4M3FN>,
                                         tensor<?x32xf32>, tensor<?xi32>)
      -> !v4.cache<window, rows = 8, width = 32, rope = 4, f8E4M3FN>
  return %w2 : !v4.cache<window, rows = 8, width = 32, rope = 4, f8E4M3FN>
}
