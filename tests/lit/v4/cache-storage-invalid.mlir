// Verifier errors of the !v4.cache storage formats.
// RUN: v4-opt --split-input-file --verify-diagnostics %s

// expected-error @+1 {{`rope = 4` is only for f8E4M3FN caches (their bf16 rope channels); remove it from the 'bf16' cache}}
func.func @rope_on_bf16(%c: !v4.cache<window, rows = 8, width = 32, rope = 4, bf16>)

// -----

// expected-error @+1 {{!v4.cache rope = 32 must be in [0, width = 32): the last `rope` channels are bf16, the others e4m3}}
func.func @rope_whole_row(%c: !v4.cache<window, rows = 8, width = 32, rope = 32, f8E4M3FN>)

// -----

// expected-error @+1 {{!v4.cache rope = -1 must be in [0, width = 32)}}
func.func @rope_negative(%c: !v4.cache<entries, width = 32, rate = 4, rope = -1, f8E4M3FN>)

// -----

// expected-error @+1 {{!v4.cache<compress_state> cannot be f8E4M3FN: the compressor state is a running pool, not stored kv; keep it f32 (or bf16)}}
func.func @fp8_state(%c: !v4.cache<compress_state, rows = 8, width = 128, f8E4M3FN>)

// -----

// expected-error @+1 {{!v4.cache element type must be f32, bf16 or f8E4M3FN, got 'f8E5M2'}}
func.func @other_fp8(%c: !v4.cache<window, rows = 8, width = 32, f8E5M2>)

// -----

// A bf16 kv tensor cannot go into an fp8 cache: only f32 rows are rounded on store.
func.func @append_bf16_into_fp8(%w: !v4.cache<window, rows = 8, width = 32, rope = 4, f8E4M3FN>,
                                %kv: tensor<?x32xbf16>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{kv element type 'bf16' cannot be stored in a 'f8E4M3FN' cache; give kv the cache's element type (or f32, which a bf16 or f8E4M3FN cache rounds on store)}}
  %w2 = v4.cache_append %w, %kv, %pos : (!v4.cache<window, rows = 8, width = 32, rope = 4, f8E4M3FN>,
                                         tensor<?x32xbf16>, tensor<?xi32>)
      -> !v4.cache<window, rows = 8, width = 32, rope = 4, f8E4M3FN>
  return
}
