// v4-kv-cache-dtype errors.
// RUN: v4-opt --split-input-file --allow-unregistered-dialect --verify-diagnostics --v4-kv-cache-dtype=dtype=fp8 %s

// fp8 needs the rope width of the stored rows; kv that no v4.rope produced has none.
// expected-error @+1 {{cannot tell the rope channels of cache argument #2 ('!v4.cache<window, rows = 4, width = 8, f32>'): its rows must come from v4.cache_append of a v4.rope, v4.rope_cache_append or v4.compress}}
func.func @forward(%x: tensor<4x8xf32>, %pos: tensor<4xi32>,
    %win: !v4.cache<window, rows = 4, width = 8, f32> {v4.cache_name = "layers.0.window", v4.layer = 0 : i64})
    -> !v4.cache<window, rows = 4, width = 8, f32> {
  %win2 = v4.cache_append %win, %x, %pos
      : (!v4.cache<window, rows = 4, width = 8, f32>, tensor<4x8xf32>, tensor<4xi32>) -> !v4.cache<window, rows = 4, width = 8, f32>
  return %win2 : !v4.cache<window, rows = 4, width = 8, f32>
}

// -----

// The format is set once, on f32 caches.
// expected-error @+1 {{cache argument #0 is already '!v4.cache<window, rows = 4, width = 8, bf16>'; v4-kv-cache-dtype sets the format of f32 caches once}}
func.func @twice(%win: !v4.cache<window, rows = 4, width = 8, bf16> {v4.cache_name = "layers.0.window", v4.layer = 0 : i64}) {
  return
}

// -----

// A cache result is the new version of the one cache operand of its type: with
// two such operands the pass cannot tell which version it follows.
func.func @forward(%a: !v4.cache<window, rows = 4, width = 8, f32> {v4.cache_name = "layers.0.window", v4.layer = 0 : i64})
    -> !v4.cache<window, rows = 4, width = 8, f32> {
  // expected-error @+1 {{takes two caches of type '!v4.cache<window, rows = 4, width = 8, f32>'; v4-kv-cache-dtype cannot tell which one a result updates (an op that updates a cache must take one cache of its type)}}
  %b = "test.update"(%a, %a) : (!v4.cache<window, rows = 4, width = 8, f32>, !v4.cache<window, rows = 4, width = 8, f32>)
      -> !v4.cache<window, rows = 4, width = 8, f32>
  return %b : !v4.cache<window, rows = 4, width = 8, f32>
}
