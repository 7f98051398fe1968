// RUN: v4-opt --split-input-file --allow-unregistered-dialect --v4-lower-to-plan --verify-diagnostics %s

// expected-error @+1 {{has no v4.bucket attribute; run --v4-specialize=buckets=... before --v4-lower-to-plan}}
func.func @forward(%ids: tensor<?xi32>, %pos: tensor<?xi32>) -> tensor<?xi32> {
  return %ids : tensor<?xi32>
}

// -----

// expected-error @+1 {{cache argument #1 lacks v4.cache_name (string) or v4.layer (integer) argument attributes; the model builder must name every cache}}
func.func @prefill_4(%ids: tensor<4xi32>, %win: !v4.cache<window, rows = 4, width = 8, f32>)
    -> !v4.cache<window, rows = 4, width = 8, f32>
    attributes {v4.bucket = {batch = 1 : i64, kind = "prefill", tokens = 4 : i64}} {
  return %win : !v4.cache<window, rows = 4, width = 8, f32>
}

// -----

// The window is updated in place, so reading the old version afterwards is wrong.
v4.global @"model.sinks" : tensor<1xf32>
v4.global @"model.embed.weight" : tensor<16x8xf32>
func.func @prefill_4(%ids: tensor<4xi32>, %pos: tensor<4xi32>,
                     %win: !v4.cache<window, rows = 4, width = 8, f32> {v4.cache_name = "layers.0.window", v4.layer = 0 : i64})
    -> (tensor<4x8xf32>, !v4.cache<window, rows = 4, width = 8, f32>)
    attributes {v4.bucket = {batch = 1 : i64, kind = "prefill", tokens = 4 : i64}} {
  %sinks = v4.weight @"model.sinks" : tensor<1xf32>
  %table = v4.weight @"model.embed.weight" : tensor<16x8xf32>
  %x = v4.embed %ids, %table : (tensor<4xi32>, tensor<16x8xf32>) -> tensor<4x8xf32>
  // expected-error @+1 {{updates a cache in place, but 'v4.attention' reads the old version afterwards; make the update the last reader of that version}}
  %win2 = v4.cache_append %win, %x, %pos
      : (!v4.cache<window, rows = 4, width = 8, f32>, tensor<4x8xf32>, tensor<4xi32>) -> !v4.cache<window, rows = 4, width = 8, f32>
  %att = v4.attention %x, %x, %sinks, %pos, %win
      {head_dim = 8 : i64, num_heads = 1 : i64, rate = 0 : i64, scale = 0.35 : f64, window = 4 : i64}
      : (tensor<4x8xf32>, tensor<4x8xf32>, tensor<1xf32>, tensor<4xi32>, !v4.cache<window, rows = 4, width = 8, f32>)
      -> tensor<4x8xf32>
  return %att, %win2 : tensor<4x8xf32>, !v4.cache<window, rows = 4, width = 8, f32>
}

// -----

func.func @prefill_4(%ids: tensor<4xi32>) -> tensor<4x8xf32>
    attributes {v4.bucket = {batch = 1 : i64, kind = "prefill", tokens = 4 : i64}} {
  // expected-error @+1 {{is not a v4 op; only v4 ops lower to plan launches (fold or remove it before --v4-lower-to-plan)}}
  %x = arith.constant dense<0.0> : tensor<4x8xf32>
  return %x : tensor<4x8xf32>
}

// -----

// expected-error @+1 {{argument #0 (ids) has type 'tensor<4xf32>'; token inputs are one i32 per token, tensor<Nxi32>}}
func.func @prefill_4(%ids: tensor<4xf32>) -> tensor<4xf32>
    attributes {v4.bucket = {batch = 1 : i64, kind = "prefill", tokens = 4 : i64}} {
  return %ids : tensor<4xf32>
}

// -----

v4.global @"model.embed.weight" : tensor<16x8xf32>
func.func @prefill_4(%ids: tensor<4xi32>) -> tensor<16x8xf32>
    attributes {v4.bucket = {batch = 1 : i64, kind = "prefill", tokens = 4 : i64}} {
  %table = v4.weight @"model.embed.weight" : tensor<16x8xf32>
  // expected-error @+1 {{returns logits that no op computes; the logits must be the result of a v4 op}}
  return %table : tensor<16x8xf32>
}

// -----

// Two buckets disagree about the schema of one cache.
v4.global @"model.embed.weight" : tensor<16x8xf32>
func.func @prefill_4(%ids: tensor<4xi32>,
                     %win: !v4.cache<window, rows = 4, width = 8, f32> {v4.cache_name = "layers.0.window", v4.layer = 0 : i64})
    -> tensor<4x8xf32> attributes {v4.bucket = {batch = 1 : i64, kind = "prefill", tokens = 4 : i64}} {
  %table = v4.weight @"model.embed.weight" : tensor<16x8xf32>
  %x = v4.embed %ids, %table : (tensor<4xi32>, tensor<16x8xf32>) -> tensor<4x8xf32>
  return %x : tensor<4x8xf32>
}
// expected-error @+1 {{cache argument #1 declares slot "layers.0.window" with a different schema than an earlier bucket; give each cache a unique v4.cache_name}}
func.func @decode_1(%ids: tensor<1xi32>,
                    %win: !v4.cache<window, rows = 8, width = 8, f32> {v4.cache_name = "layers.0.window", v4.layer = 0 : i64})
    -> tensor<1x8xf32> attributes {v4.bucket = {batch = 1 : i64, kind = "decode", tokens = 1 : i64}} {
  %table = v4.weight @"model.embed.weight" : tensor<16x8xf32>
  %x = v4.embed %ids, %table : (tensor<1xi32>, tensor<16x8xf32>) -> tensor<1x8xf32>
  return %x : tensor<1x8xf32>
}

// -----

// expected-error @+1 {{must return the logits tensor first, then the caches}}
func.func @prefill_4(%ids: tensor<4xi32>,
                     %win: !v4.cache<window, rows = 4, width = 8, f32> {v4.cache_name = "layers.0.window", v4.layer = 0 : i64})
    -> !v4.cache<window, rows = 4, width = 8, f32>
    attributes {v4.bucket = {batch = 1 : i64, kind = "prefill", tokens = 4 : i64}} {
  return %win : !v4.cache<window, rows = 4, width = 8, f32>
}

// -----

v4.global @"model.embed.weight" : tensor<16x8xf32>
func.func @prefill_4(%ids: tensor<4xi32>) -> (tensor<4x8xf32>, tensor<4x8xf32>)
    attributes {v4.bucket = {batch = 1 : i64, kind = "prefill", tokens = 4 : i64}} {
  %table = v4.weight @"model.embed.weight" : tensor<16x8xf32>
  %x = v4.embed %ids, %table : (tensor<4xi32>, tensor<16x8xf32>) -> tensor<4x8xf32>
  // expected-error @+1 {{returns a non-cache value as result #1; the model function returns the logits, then the caches}}
  return %x, %x : tensor<4x8xf32>, tensor<4x8xf32>
}

// -----

// A cache slot is a module symbol named after v4.cache_name: nothing else may hold that name.
// expected-error @+1 {{has the symbol name "layers.0.window" that a cache slot needs; rename the cache or the symbol}}
v4.global @"layers.0.window" : tensor<4xf32>
func.func @prefill_4(%ids: tensor<4xi32>, %pos: tensor<4xi32>,
                     %win: !v4.cache<window, rows = 4, width = 8, f32> {v4.cache_name = "layers.0.window", v4.layer = 0 : i64})
    -> !v4.cache<window, rows = 4, width = 8, f32>
    attributes {v4.bucket = {batch = 1 : i64, kind = "prefill", tokens = 4 : i64}} {
  return %win : !v4.cache<window, rows = 4, width = 8, f32>
}

// -----

// Every buffer needs a static size: a dynamic intermediate means the function was not specialised.
v4.global @"model.embed.weight" : tensor<16x8xf32>
func.func @prefill_4(%ids: tensor<4xi32>) -> tensor<4x8xf32>
    attributes {v4.bucket = {batch = 1 : i64, kind = "prefill", tokens = 4 : i64}} {
  %t = v4.weight @"model.embed.weight" : tensor<16x8xf32>
  // expected-error @+1 {{has type 'tensor<?x8xf32>', which is not a static tensor; run --v4-specialize first}}
  %x = v4.embed %ids, %t : (tensor<4xi32>, tensor<16x8xf32>) -> tensor<?x8xf32>
  %y = v4.add %x, %x : (tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<4x8xf32>
  return %y : tensor<4x8xf32>
}

// -----

// expected-error @+1 {{has a v4.bucket attribute without kind/tokens/batch; rerun --v4-specialize}}
func.func @prefill_4(%ids: tensor<4xi32>) -> tensor<4xi32>
    attributes {v4.bucket = {kind = "prefill", tokens = 4 : i64}} {
  return %ids : tensor<4xi32>
}

// -----

// expected-error @+1 {{argument #2 is a third tensor argument; the model function takes ids, positions, then caches}}
func.func @prefill_4(%ids: tensor<4xi32>, %pos: tensor<4xi32>, %extra: tensor<4xi32>) -> tensor<4xi32>
    attributes {v4.bucket = {batch = 1 : i64, kind = "prefill", tokens = 4 : i64}} {
  return %ids : tensor<4xi32>
}

// -----

// A bucket is one straight-line schedule of launches: no control flow.
// expected-error @+1 {{has 2 blocks; the model function must be one straight-line block}}
func.func @prefill_4(%ids: tensor<4xi32>) -> tensor<4xi32>
    attributes {v4.bucket = {batch = 1 : i64, kind = "prefill", tokens = 4 : i64}} {
  "test.br"()[^next] : () -> ()
^next:
  return %ids : tensor<4xi32>
}

// -----

v4.global @"model.embed.weight" : tensor<16x8xf32>
func.func @prefill_4(%ids: tensor<4xi32>) -> tensor<4x8xf32>
    attributes {v4.bucket = {batch = 1 : i64, kind = "prefill", tokens = 4 : i64}} {
  // expected-error @+1 {{has regions; only region-free v4 ops lower to plan launches}}
  "test.region"() ({
    "test.inner"() : () -> ()
  }) : () -> ()
  %t = v4.weight @"model.embed.weight" : tensor<16x8xf32>
  %x = v4.embed %ids, %t : (tensor<4xi32>, tensor<16x8xf32>) -> tensor<4x8xf32>
  return %x : tensor<4x8xf32>
}
