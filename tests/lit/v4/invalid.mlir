// One verifier error per case: each op, the !v4.cache type and #v4.quant.
// RUN: v4-opt --split-input-file --verify-diagnostics %s

// expected-error @+1 {{has element type 'f16'; use f32, bf16, i32, i8 (block scales), or a #v4.quant encoding}}
v4.global @"model.norm.weight" : tensor<64xf16>

// -----

func.func @weight_without_global() -> tensor<64xf32> {
  // expected-error @+1 {{refers to @"model.norm.weight", which no v4.global declares}}
  %w = v4.weight @"model.norm.weight" : tensor<64xf32>
  return %w : tensor<64xf32>
}

// -----

v4.global @"model.norm.weight" : tensor<64xf32>
func.func @weight_type_mismatch() -> tensor<32xf32> {
  // expected-error @+1 {{result type 'tensor<32xf32>' differs from the type 'tensor<64xf32>' that v4.global @"model.norm.weight" declares}}
  %w = v4.weight @"model.norm.weight" : tensor<32xf32>
  return %w : tensor<32xf32>
}

// -----

func.func @embed(%ids: tensor<?xi32>, %table: tensor<100x64xf32>) -> tensor<?x32xf32> {
  // expected-error @+1 {{result width is 32 but must be 64 (the table's row width D)}}
  %x = v4.embed %ids, %table : (tensor<?xi32>, tensor<100x64xf32>) -> tensor<?x32xf32>
  return %x : tensor<?x32xf32>
}

// -----

func.func @embed_tokens(%ids: tensor<4xi32>, %table: tensor<100x64xf32>) -> tensor<5x64xf32> {
  // expected-error @+1 {{`result` has 5 tokens but `ids` has 4; all token-major operands and results need the same token count}}
  %x = v4.embed %ids, %table : (tensor<4xi32>, tensor<100x64xf32>) -> tensor<5x64xf32>
  return %x : tensor<5x64xf32>
}

// -----

func.func @hc_expand(%x: tensor<?x64xf32>) -> tensor<?x192xf32> {
  // expected-error @+1 {{result width is 192 but must be 256 (hc * x width)}}
  %s = v4.hc_expand %x {hc = 4 : i64} : (tensor<?x64xf32>) -> tensor<?x192xf32>
  return %s : tensor<?x192xf32>
}

// -----

func.func @hc_pre(%X: tensor<?x256xf32>, %fn: tensor<16x256xf32>, %base: tensor<24xf32>, %scale: tensor<3xf32>) {
  // expected-error @+1 {{fn rows is 16 but must be 24 ((2+hc)*hc mixing weights)}}
  %c, %p, %m = v4.hc_pre %X, %fn, %base, %scale
      {hc = 4 : i64, hc_eps = 1.0e-06 : f64, norm_eps = 1.0e-06 : f64, sinkhorn_iters = 20 : i64}
      : (tensor<?x256xf32>, tensor<16x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<?x64xf32>, tensor<?x4xf32>, tensor<?x16xf32>)
  return
}

// -----

func.func @hc_pre_streams(%X: tensor<?x250xf32>, %fn: tensor<24x250xf32>, %base: tensor<24xf32>, %scale: tensor<3xf32>) {
  // expected-error @+1 {{`X` has 250 channels, not a multiple of hc = 4; it must stack hc streams of D channels}}
  %c, %p, %m = v4.hc_pre %X, %fn, %base, %scale
      {hc = 4 : i64, hc_eps = 1.0e-06 : f64, norm_eps = 1.0e-06 : f64, sinkhorn_iters = 20 : i64}
      : (tensor<?x250xf32>, tensor<24x250xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<?x62xf32>, tensor<?x4xf32>, tensor<?x16xf32>)
  return
}

// -----

func.func @hc_post(%X: tensor<?x256xf32>, %y: tensor<?x64xf32>, %post: tensor<?x4xf32>, %comb: tensor<?x4xf32>) {
  // expected-error @+1 {{comb width is 4 but must be 16 (hc*hc)}}
  %r = v4.hc_post %X, %y, %post, %comb {hc = 4 : i64}
      : (tensor<?x256xf32>, tensor<?x64xf32>, tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x256xf32>
  return
}

// -----

func.func @hc_head(%X: tensor<?x256xf32>, %fn: tensor<4x256xf32>, %base: tensor<4xf32>, %scale: tensor<3xf32>) {
  // expected-error @+1 {{scale size is 3 but must be 1 (one scale)}}
  %h = v4.hc_head %X, %fn, %base, %scale {hc = 4 : i64, hc_eps = 1.0e-06 : f64, norm_eps = 1.0e-06 : f64}
      : (tensor<?x256xf32>, tensor<4x256xf32>, tensor<4xf32>, tensor<3xf32>) -> tensor<?x64xf32>
  return
}

// -----

func.func @rms_norm_group(%x: tensor<?x64xf32>) {
  // expected-error @+1 {{x has 64 channels, not a multiple of group = 24; set group to a divisor}}
  %n = v4.rms_norm %x {eps = 1.0e-06 : f64, group = 24 : i64} : (tensor<?x64xf32>) -> tensor<?x64xf32>
  return
}

// -----

func.func @rms_norm_weight(%x: tensor<?x64xf32>, %w: tensor<32xf32>) {
  // expected-error @+1 {{w size is 32 but must be 64 (one weight per channel of a group)}}
  %n = v4.rms_norm %x, %w {eps = 1.0e-06 : f64, group = 64 : i64} : (tensor<?x64xf32>, tensor<32xf32>) -> tensor<?x64xf32>
  return
}

// -----

func.func @rms_norm_eps(%x: tensor<?x64xf32>) {
  // expected-error @+1 {{attribute `eps` must be positive, got 0}}
  %n = v4.rms_norm %x {eps = 0.0 : f64, group = 64 : i64} : (tensor<?x64xf32>) -> tensor<?x64xf32>
  return
}

// -----

func.func @linear(%x: tensor<?x64xf32>, %w: tensor<32x48xf32>) {
  // expected-error @+1 {{w columns is 48 but must be 64 (the reduction size K = x width; w is [N, K])}}
  %y = v4.linear %x, %w : (tensor<?x64xf32>, tensor<32x48xf32>) -> tensor<?x32xf32>
  return
}

// -----

func.func @linear_int_activation(%x: tensor<?x64xi32>, %w: tensor<32x64xf32>) {
  // expected-error @+1 {{operand #0 must be 2D tensor of 32-bit float or bfloat16 type values}}
  %y = v4.linear %x, %w : (tensor<?x64xi32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  return
}

// -----

func.func @linear_element_mix(%x: tensor<?x64xf32>, %w: tensor<32x64xf32>) {
  // expected-error @+1 {{`result` has element type 'bf16' but `x` has 'f32'; a projection keeps x's element type or widens to f32}}
  %y = v4.linear %x, %w : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xbf16>
  return
}

// -----

func.func @grouped_linear(%x: tensor<?x128xf32>, %w: tensor<32x128xf32>) {
  // expected-error @+1 {{w columns is 128 but must be 64 (Kg = x width / groups)}}
  %y = v4.grouped_linear %x, %w {groups = 2 : i64} : (tensor<?x128xf32>, tensor<32x128xf32>) -> tensor<?x32xf32>
  return
}

// -----

func.func @rope_odd(%x: tensor<?x64xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{rope_dim (5) must be even: channels rotate in pairs}}
  %r = v4.rope %x, %pos {head_dim = 32 : i64, inv_freq = array<f32: 1.0, 0.5>, inverse = false,
                         rope_dim = 5 : i64, scaling = 1.0 : f64}
      : (tensor<?x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return
}

// -----

func.func @rope_inv_freq(%x: tensor<?x64xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{inv_freq has 3 frequencies but needs rope_dim/2 = 2 (one per rotated pair)}}
  %r = v4.rope %x, %pos {head_dim = 32 : i64, inv_freq = array<f32: 1.0, 0.5, 0.25>, inverse = false,
                         rope_dim = 4 : i64, scaling = 1.0 : f64}
      : (tensor<?x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return
}

// -----

func.func @rope_heads(%x: tensor<?x48xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{x has 48 channels, not a multiple of head_dim = 32; heads are packed as [T, H*head_dim]}}
  %r = v4.rope %x, %pos {head_dim = 32 : i64, inv_freq = array<f32: 1.0, 0.5>, inverse = false,
                         rope_dim = 4 : i64, scaling = 1.0 : f64}
      : (tensor<?x48xf32>, tensor<?xi32>) -> tensor<?x48xf32>
  return
}

// -----

func.func @compress_width(%kv: tensor<?x32xf32>, %ape: tensor<4x32xf32>, %norm: tensor<32xf32>, %pos: tensor<?xi32>,
                          %s: !v4.cache<compress_state, rows = 8, width = 64, f32>,
                          %e: !v4.cache<entries, width = 32, rate = 4, f32>) {
  // expected-error @+1 {{kv width is 32 but must be 64 (Cin = 2*head_dim with overlap (CSA))}}
  %s2, %e2 = v4.compress %kv, %kv, %ape, %norm, %pos, %s, %e
      {eps = 1.0e-06 : f64, head_dim = 32 : i64, inv_freq = array<f32: 1.0, 0.5>, overlap = true,
       rate = 4 : i64, rope_dim = 4 : i64, scaling = 1.0 : f64}
      : (tensor<?x32xf32>, tensor<?x32xf32>, tensor<4x32xf32>, tensor<32xf32>, tensor<?xi32>,
         !v4.cache<compress_state, rows = 8, width = 64, f32>, !v4.cache<entries, width = 32, rate = 4, f32>)
      -> (!v4.cache<compress_state, rows = 8, width = 64, f32>, !v4.cache<entries, width = 32, rate = 4, f32>)
  return
}

// -----

func.func @compress_state_rows(%kv: tensor<?x32xf32>, %ape: tensor<4x32xf32>, %norm: tensor<32xf32>, %pos: tensor<?xi32>,
                               %s: !v4.cache<compress_state, rows = 4, width = 64, f32>,
                               %e: !v4.cache<entries, width = 32, rate = 4, f32>) {
  // expected-error @+1 {{state rows is 4 but must be 8 (2*rate: the previous and the pending window)}}
  %s2, %e2 = v4.compress %kv, %kv, %ape, %norm, %pos, %s, %e
      {eps = 1.0e-06 : f64, head_dim = 32 : i64, inv_freq = array<f32: 1.0, 0.5>, overlap = false,
       rate = 4 : i64, rope_dim = 4 : i64, scaling = 1.0 : f64}
      : (tensor<?x32xf32>, tensor<?x32xf32>, tensor<4x32xf32>, tensor<32xf32>, tensor<?xi32>,
         !v4.cache<compress_state, rows = 4, width = 64, f32>, !v4.cache<entries, width = 32, rate = 4, f32>)
      -> (!v4.cache<compress_state, rows = 4, width = 64, f32>, !v4.cache<entries, width = 32, rate = 4, f32>)
  return
}

// -----

func.func @indexer_topk(%q: tensor<?x32xf32>, %w: tensor<?x2xf32>, %pos: tensor<?xi32>,
                        %keys: !v4.cache<entries, width = 16, rate = 4, f32>) {
  // expected-error @+1 {{result width is 4 but must be 8 (top_k)}}
  %t = v4.indexer_topk %q, %w, %pos, %keys
      {head_dim = 16 : i64, heads = 2 : i64, rate = 4 : i64, score_scale = 0.25 : f64,
       top_k = 8 : i64, weight_scale = 0.5 : f64}
      : (tensor<?x32xf32>, tensor<?x2xf32>, tensor<?xi32>, !v4.cache<entries, width = 16, rate = 4, f32>)
      -> tensor<?x4xi32>
  return
}

// -----

func.func @indexer_keys(%q: tensor<?x32xf32>, %w: tensor<?x2xf32>, %pos: tensor<?xi32>,
                        %keys: !v4.cache<entries, width = 16, rate = 128, f32>) {
  // expected-error @+1 {{keys rate is 128 but must be 4 (attribute rate)}}
  %t = v4.indexer_topk %q, %w, %pos, %keys
      {head_dim = 16 : i64, heads = 2 : i64, rate = 4 : i64, score_scale = 0.25 : f64,
       top_k = 8 : i64, weight_scale = 0.5 : f64}
      : (tensor<?x32xf32>, tensor<?x2xf32>, tensor<?xi32>, !v4.cache<entries, width = 16, rate = 128, f32>)
      -> tensor<?x8xi32>
  return
}

// -----

func.func @attention_missing_entries(%q: tensor<?x64xf32>, %kv: tensor<?x32xf32>, %sinks: tensor<2xf32>,
                                     %pos: tensor<?xi32>, %win: !v4.cache<window, rows = 8, width = 32, f32>) {
  // expected-error @+1 {{rate = 4 attends to compressed entries; pass them with `entries %e`}}
  %o = v4.attention %q, %kv, %sinks, %pos, %win
      {head_dim = 32 : i64, num_heads = 2 : i64, rate = 4 : i64, scale = 0.125 : f64, window = 8 : i64}
      : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<2xf32>, tensor<?xi32>,
         !v4.cache<window, rows = 8, width = 32, f32>) -> tensor<?x64xf32>
  return
}

// -----

func.func @attention_sliding_with_entries(%q: tensor<?x64xf32>, %kv: tensor<?x32xf32>, %sinks: tensor<2xf32>,
                                          %pos: tensor<?xi32>, %win: !v4.cache<window, rows = 8, width = 32, f32>,
                                          %e: !v4.cache<entries, width = 32, rate = 4, f32>) {
  // expected-error @+1 {{has an entries cache but rate = 0 (sliding only)}}
  %o = v4.attention %q, %kv, %sinks, %pos, %win entries %e
      {head_dim = 32 : i64, num_heads = 2 : i64, rate = 0 : i64, scale = 0.125 : f64, window = 8 : i64}
      : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<2xf32>, tensor<?xi32>,
         !v4.cache<window, rows = 8, width = 32, f32>, !v4.cache<entries, width = 32, rate = 4, f32>)
      -> tensor<?x64xf32>
  return
}

// -----

func.func @attention_topk_without_entries(%q: tensor<?x64xf32>, %kv: tensor<?x32xf32>, %sinks: tensor<2xf32>,
                                          %pos: tensor<?xi32>, %win: !v4.cache<window, rows = 8, width = 32, f32>,
                                          %topk: tensor<?x8xi32>) {
  // expected-error @+1 {{topk selects compressed entries; it needs `entries %e` too}}
  %o = v4.attention %q, %kv, %sinks, %pos, %win topk %topk
      {head_dim = 32 : i64, num_heads = 2 : i64, rate = 0 : i64, scale = 0.125 : f64, window = 8 : i64}
      : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<2xf32>, tensor<?xi32>,
         !v4.cache<window, rows = 8, width = 32, f32>, tensor<?x8xi32>) -> tensor<?x64xf32>
  return
}

// -----

func.func @attention_heads(%q: tensor<?x64xf32>, %kv: tensor<?x32xf32>, %sinks: tensor<4xf32>,
                           %pos: tensor<?xi32>, %win: !v4.cache<window, rows = 8, width = 32, f32>) {
  // expected-error @+1 {{sinks size is 4 but must be 2 (one sink logit per head)}}
  %o = v4.attention %q, %kv, %sinks, %pos, %win
      {head_dim = 32 : i64, num_heads = 2 : i64, rate = 0 : i64, scale = 0.125 : f64, window = 8 : i64}
      : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<4xf32>, tensor<?xi32>,
         !v4.cache<window, rows = 8, width = 32, f32>) -> tensor<?x64xf32>
  return
}

// -----

func.func @attention_window(%q: tensor<?x64xf32>, %kv: tensor<?x32xf32>, %sinks: tensor<2xf32>,
                            %pos: tensor<?xi32>, %win: !v4.cache<window, rows = 16, width = 32, f32>) {
  // expected-error @+1 {{window cache rows is 16 but must be 8 (attribute window)}}
  %o = v4.attention %q, %kv, %sinks, %pos, %win
      {head_dim = 32 : i64, num_heads = 2 : i64, rate = 0 : i64, scale = 0.125 : f64, window = 8 : i64}
      : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<2xf32>, tensor<?xi32>,
         !v4.cache<window, rows = 16, width = 32, f32>) -> tensor<?x64xf32>
  return
}

// -----

func.func @cache_append(%win: !v4.cache<window, rows = 8, width = 32, f32>, %kv: tensor<?x16xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{kv width is 16 but must be 32 (the window cache width (head_dim))}}
  %w = v4.cache_append %win, %kv, %pos
      : (!v4.cache<window, rows = 8, width = 32, f32>, tensor<?x16xf32>, tensor<?xi32>)
      -> !v4.cache<window, rows = 8, width = 32, f32>
  return
}

// -----

func.func @cache_append_kind(%e: !v4.cache<entries, width = 32, rate = 4, f32>, %kv: tensor<?x32xf32>, %pos: tensor<?xi32>) {
  // expected-error @+1 {{operand #0 must be !v4.cache<window, ...>}}
  %w = v4.cache_append %e, %kv, %pos
      : (!v4.cache<entries, width = 32, rate = 4, f32>, tensor<?x32xf32>, tensor<?xi32>)
      -> !v4.cache<window, rows = 8, width = 32, f32>
  return
}

// -----

func.func @router(%h: tensor<?x64xf32>, %gate: tensor<8x64xf32>, %bias: tensor<8xf32>) {
  // expected-error @+1 {{top_k = 9 exceeds the 8 experts of gate}}
  %w, %e = v4.router %h, %gate, %bias {routed_scaling = 1.5 : f64, top_k = 9 : i64}
      : (tensor<?x64xf32>, tensor<8x64xf32>, tensor<8xf32>) -> (tensor<?x9xf32>, tensor<?x9xi32>)
  return
}

// -----

func.func @hash_router(%h: tensor<?x64xf32>, %gate: tensor<8x64xf32>, %table: tensor<100x2xi32>, %ids: tensor<?xi32>) {
  // expected-error @+1 {{weights width is 3 but must be 2 (k experts per token)}}
  %w, %e = v4.hash_router %h, %gate, %table, %ids {routed_scaling = 1.5 : f64}
      : (tensor<?x64xf32>, tensor<8x64xf32>, tensor<100x2xi32>, tensor<?xi32>) -> (tensor<?x3xf32>, tensor<?x3xi32>)
  return
}

// -----

func.func @moe(%h: tensor<?x64xf32>, %w: tensor<?x2xf32>, %e: tensor<?x2xi32>,
               %gate_up: tensor<8x96x64xf32>, %down: tensor<8x64x96xf32>) {
  // expected-error @+1 {{down dim 2 is 96 but must be 48 (I = gate_up dim 1 / 2)}}
  %m = v4.moe %h, %w, %e, %gate_up, %down {swiglu_limit = 10.0 : f64}
      : (tensor<?x64xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<8x96x64xf32>, tensor<8x64x96xf32>)
      -> tensor<?x64xf32>
  return
}

// -----

func.func @swiglu(%g: tensor<?x48xf32>, %u: tensor<?x48xf32>) {
  // expected-error @+1 {{attribute `limit` must be positive, got -1}}
  %a = v4.swiglu %g, %u {limit = -1.0 : f64} : (tensor<?x48xf32>, tensor<?x48xf32>) -> tensor<?x48xf32>
  return
}

// -----

func.func @add(%a: tensor<4x64xf32>, %b: tensor<3x64xf32>) {
  // expected-error @+1 {{`b` has 3 tokens but `a` has 4}}
  %s = v4.add %a, %b : (tensor<4x64xf32>, tensor<3x64xf32>) -> tensor<?x64xf32>
  return
}

// -----

// expected-error @+1 {{unknown cache kind 'ring'; expected window, compress_state or entries}}
func.func @cache_kind(%c: !v4.cache<ring, rows = 8, width = 32, f32>)

// -----

// expected-error @+1 {{!v4.cache<window> needs a static positive `rows = N` (the window size W)}}
func.func @cache_window_rows(%c: !v4.cache<window, width = 32, f32>)

// -----

// expected-error @+1 {{!v4.cache<entries> needs `rate = m` with m > 0}}
func.func @cache_entries_rate(%c: !v4.cache<entries, width = 32, f32>)

// -----

// expected-error @+1 {{only !v4.cache<entries> has a rate; remove `rate = 4` from the window cache}}
func.func @cache_window_rate(%c: !v4.cache<window, rows = 8, width = 32, rate = 4, f32>)

// -----

// expected-error @+1 {{!v4.cache element type must be f32, bf16 or f8E4M3FN, got 'i32'}}
func.func @cache_element(%c: !v4.cache<window, rows = 8, width = 32, i32>)

// -----

// expected-error @+1 {{!v4.cache needs `width = N` (channels per row)}}
func.func @cache_width(%c: !v4.cache<window, rows = 8, f32>)

// -----

// expected-error @+1 {{#v4.quant block sizes must be positive, got 0}}
v4.global @"w" : tensor<256x256xf8E4M3FN, #v4.quant<fp8_e4m3, block = [128, 0], scale = ue8m0>>

// -----

// expected-error @+1 {{#v4.quant<fp8_e4m3> tensors store f8E4M3FN elements, got 'f32'}}
v4.global @"w" : tensor<256x256xf32, #v4.quant<fp8_e4m3, block = [128, 128], scale = ue8m0>>

// -----

// expected-error @+1 {{#v4.quant has 3 block sizes but the tensor has rank 2}}
v4.global @"w" : tensor<256x256xi8, #v4.quant<fp4_e2m1, block = [1, 1, 32], scale = ue8m0>>
