// Verifier errors of the fused ops (V4FusedOps.td), one case each.
// RUN: v4-opt --split-input-file --verify-diagnostics %s

func.func @norm_linear_no_weights(%x: tensor<?x64xf32>) {
  // expected-error @+1 {{needs at least one weight: it is a norm feeding linears}}
  v4.norm_linear %x weights {eps = 1.0e-06 : f64, group = 64 : i64} : (tensor<?x64xf32>) -> ()
  return
}

// -----

func.func @norm_linear_weight_width(%x: tensor<?x64xf32>, %w: tensor<32x48xf32>) {
  // expected-error @+1 {{weight #0 columns is 48 but must be 64 (the input width K; a weight is [N, K])}}
  %y = v4.norm_linear %x weights %w {eps = 1.0e-06 : f64, group = 64 : i64} : (tensor<?x64xf32>, tensor<32x48xf32>) -> tensor<?x32xf32>
  return
}

// -----

func.func @norm_linear_result_count(%x: tensor<?x64xf32>, %w: tensor<32x64xf32>) {
  // expected-error @+1 {{has 1 weights but 2 results; give one result per weight}}
  %a, %b = v4.norm_linear %x weights %w {eps = 1.0e-06 : f64, group = 64 : i64} : (tensor<?x64xf32>, tensor<32x64xf32>) -> (tensor<?x32xf32>, tensor<?x32xf32>)
  return
}

// -----

func.func @norm_linear_group(%x: tensor<?x64xf32>, %nw: tensor<48xf32>, %w: tensor<32x64xf32>) {
  // expected-error @+1 {{x has 64 channels, not a multiple of group = 48}}
  %y = v4.norm_linear %x norm %nw weights %w {eps = 1.0e-06 : f64, group = 48 : i64} : (tensor<?x64xf32>, tensor<48xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  return
}

// -----

func.func @linear_swiglu_up_rows(%h: tensor<?x64xf32>, %wg: tensor<48x64xf32>, %wu: tensor<40x64xf32>) {
  // expected-error @+1 {{up_w rows is 40 but must be 48 (I = gate_w rows)}}
  %a = v4.linear_swiglu %h, %wg, %wu {limit = 10.0 : f64} : (tensor<?x64xf32>, tensor<48x64xf32>, tensor<40x64xf32>) -> tensor<?x48xf32>
  return
}

// -----

func.func @linear_swiglu_limit(%h: tensor<?x64xf32>, %wg: tensor<48x64xf32>, %wu: tensor<48x64xf32>) {
  // expected-error @+1 {{attribute `limit` must be positive, got 0}}
  %a = v4.linear_swiglu %h, %wg, %wu {limit = 0.0 : f64} : (tensor<?x64xf32>, tensor<48x64xf32>, tensor<48x64xf32>) -> tensor<?x48xf32>
  return
}

// -----

func.func @hc_post_pre_fn_rows(%X: tensor<?x256xf32>, %y: tensor<?x64xf32>, %post: tensor<?x4xf32>, %comb: tensor<?x16xf32>,
                               %fn: tensor<20x256xf32>, %base: tensor<24xf32>, %scale: tensor<3xf32>) {
  // expected-error @+1 {{fn rows is 20 but must be 24 ((2+hc)*hc mixing weights)}}
  %X2, %c, %p2, %m2 = v4.hc_post_pre %X, %y, %post, %comb, %fn, %base, %scale
      {hc = 4 : i64, hc_eps = 1.0e-06 : f64, norm_eps = 1.0e-06 : f64, sinkhorn_iters = 20 : i64}
      : (tensor<?x256xf32>, tensor<?x64xf32>, tensor<?x4xf32>, tensor<?x16xf32>, tensor<20x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<?x256xf32>, tensor<?x64xf32>, tensor<?x4xf32>, tensor<?x16xf32>)
  return
}

// -----

func.func @hc_post_pre_tokens(%X: tensor<4x256xf32>, %y: tensor<3x64xf32>, %post: tensor<4x4xf32>, %comb: tensor<4x16xf32>,
                              %fn: tensor<24x256xf32>, %base: tensor<24xf32>, %scale: tensor<3xf32>) {
  // expected-error @+1 {{`y` has 3 tokens but `X` has 4}}
  %X2, %c, %p2, %m2 = v4.hc_post_pre %X, %y, %post, %comb, %fn, %base, %scale
      {hc = 4 : i64, hc_eps = 1.0e-06 : f64, norm_eps = 1.0e-06 : f64, sinkhorn_iters = 20 : i64}
      : (tensor<4x256xf32>, tensor<3x64xf32>, tensor<4x4xf32>, tensor<4x16xf32>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<4x256xf32>, tensor<4x64xf32>, tensor<4x4xf32>, tensor<4x16xf32>)
  return
}

// -----

func.func @rope_cache_append_width(%win: !v4.cache<window, rows = 8, width = 16, f32>, %kv: tensor<1x32xf32>, %pos: tensor<1xi32>) {
  // expected-error @+1 {{window width is 16 but must be 32 (head_dim)}}
  %k, %win2 = v4.rope_cache_append %win, %kv, %pos
      {head_dim = 32 : i64, inv_freq = array<f32: 1.0, 0.1>, inverse = false, rope_dim = 4 : i64, scaling = 1.0 : f64}
      : (!v4.cache<window, rows = 8, width = 16, f32>, tensor<1x32xf32>, tensor<1xi32>)
      -> (tensor<1x32xf32>, !v4.cache<window, rows = 8, width = 16, f32>)
  return
}

// -----

func.func @rope_cache_append_inv_freq(%win: !v4.cache<window, rows = 8, width = 32, f32>, %kv: tensor<1x32xf32>, %pos: tensor<1xi32>) {
  // expected-error @+1 {{inv_freq has 1 frequencies but needs rope_dim/2 = 2}}
  %k, %win2 = v4.rope_cache_append %win, %kv, %pos
      {head_dim = 32 : i64, inv_freq = array<f32: 1.0>, inverse = false, rope_dim = 4 : i64, scaling = 1.0 : f64}
      : (!v4.cache<window, rows = 8, width = 32, f32>, tensor<1x32xf32>, tensor<1xi32>)
      -> (tensor<1x32xf32>, !v4.cache<window, rows = 8, width = 32, f32>)
  return
}

// -----

func.func @linear_compress_kv_rows(%h: tensor<?x64xf32>, %wkv: tensor<32x64xf32>, %wg: tensor<64x64xf32>, %ape: tensor<4x64xf32>,
                                   %norm: tensor<32xf32>, %pos: tensor<?xi32>,
                                   %s: !v4.cache<compress_state, rows = 8, width = 128, f32>,
                                   %e: !v4.cache<entries, width = 32, rate = 4, f32>) {
  // expected-error @+1 {{kv_w rows is 32 but must be 64 (Cin = 2*head_dim with overlap (CSA))}}
  %s2, %e2 = v4.linear_compress %h, %wkv, %wg, %ape, %norm, %pos, %s, %e
      {eps = 1.0e-06 : f64, head_dim = 32 : i64, inv_freq = array<f32: 1.0, 0.1>,
       overlap = true, rate = 4 : i64, rope_dim = 4 : i64, scaling = 1.0 : f64}
      : (tensor<?x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>, tensor<4x64xf32>, tensor<32xf32>, tensor<?xi32>,
         !v4.cache<compress_state, rows = 8, width = 128, f32>, !v4.cache<entries, width = 32, rate = 4, f32>)
      -> (!v4.cache<compress_state, rows = 8, width = 128, f32>, !v4.cache<entries, width = 32, rate = 4, f32>)
  return
}

// -----

func.func @linear_compress_state_rows(%h: tensor<?x64xf32>, %wkv: tensor<32x64xf32>, %wg: tensor<32x64xf32>, %ape: tensor<4x32xf32>,
                                      %norm: tensor<32xf32>, %pos: tensor<?xi32>,
                                      %s: !v4.cache<compress_state, rows = 4, width = 64, f32>,
                                      %e: !v4.cache<entries, width = 32, rate = 4, f32>) {
  // expected-error @+1 {{state rows is 4 but must be 8 (2*rate: the previous and the pending window)}}
  %s2, %e2 = v4.linear_compress %h, %wkv, %wg, %ape, %norm, %pos, %s, %e
      {eps = 1.0e-06 : f64, head_dim = 32 : i64, inv_freq = array<f32: 1.0, 0.1>,
       overlap = false, rate = 4 : i64, rope_dim = 4 : i64, scaling = 1.0 : f64}
      : (tensor<?x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<4x32xf32>, tensor<32xf32>, tensor<?xi32>,
         !v4.cache<compress_state, rows = 4, width = 64, f32>, !v4.cache<entries, width = 32, rate = 4, f32>)
      -> (!v4.cache<compress_state, rows = 4, width = 64, f32>, !v4.cache<entries, width = 32, rate = 4, f32>)
  return
}
