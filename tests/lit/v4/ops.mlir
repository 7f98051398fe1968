// Round trip of every v4 op, the !v4.cache type and the #v4.quant encoding:
// print, re-parse, print again, and check the second print.
// RUN: v4-opt %s | v4-opt | FileCheck %s

v4.global @"model.embed_tokens.weight" : tensor<1000x64xf32>
v4.global @"model.layers.0.attn.wq_a.weight" : tensor<32x64xbf16>
v4.global @"model.layers.0.attn.wq_b.weight" : tensor<32x64xf8E4M3FN, #v4.quant<fp8_e4m3, block = [128, 128], scale = ue8m0>>
v4.global @"model.layers.0.ffn.experts.w1" : tensor<8x96x64xi8, #v4.quant<fp4_e2m1, block = [1, 32], scale = f32>>
v4.global @"model.layers.0.ffn.gate.tid2eid" : tensor<1000x2xi32>

// CHECK: v4.global @model.embed_tokens.weight : tensor<1000x64xf32>
// CHECK: v4.global @model.layers.0.attn.wq_a.weight : tensor<32x64xbf16>
// CHECK: v4.global @model.layers.0.attn.wq_b.weight : tensor<32x64xf8E4M3FN, #v4.quant<fp8_e4m3, block = [128, 128], scale = ue8m0>>
// CHECK: v4.global @model.layers.0.ffn.experts.w1 : tensor<8x96x64xi8, #v4.quant<fp4_e2m1, block = [1, 32], scale = f32>>
// CHECK: v4.global @model.layers.0.ffn.gate.tid2eid : tensor<1000x2xi32>

// CHECK-LABEL: func.func @cache_types
// CHECK-SAME: (%{{.*}}: !v4.cache<window, rows = 8, width = 32, f32>,
// CHECK-SAME: %{{.*}}: !v4.cache<compress_state, rows = 8, width = 128, bf16>,
// CHECK-SAME: %{{.*}}: !v4.cache<entries, width = 32, rate = 4, f32>,
// CHECK-SAME: %{{.*}}: !v4.cache<entries, rows = 64, width = 16, rate = 128, bf16>,
// CHECK-SAME: %{{.*}}: !v4.cache<entries, rows = 0, width = 16, rate = 4, f32>)
func.func @cache_types(%w: !v4.cache<window, rows = 8, width = 32, f32>,
                       %s: !v4.cache<compress_state, width = 128, rows = 8, bf16>,
                       %e: !v4.cache<entries, rows = ?, width = 32, rate = 4, f32>,
                       %f: !v4.cache<entries, rows = 64, width = 16, rate = 128, bf16>,
                       %g: !v4.cache<entries, rows = 0, width = 16, rate = 4, f32>) {
  return
}

// CHECK-LABEL: func.func @weights_and_embed
// CHECK-SAME: (%[[IDS:.*]]: tensor<?xi32>)
// CHECK: %[[TABLE:.*]] = v4.weight @model.embed_tokens.weight : tensor<1000x64xf32>
// CHECK: %[[WQ:.*]] = v4.weight @model.layers.0.attn.wq_b.weight : tensor<32x64xf8E4M3FN, #v4.quant<fp8_e4m3, block = [128, 128], scale = ue8m0>>
// CHECK: %[[X:.*]] = v4.embed %[[IDS]], %[[TABLE]] : (tensor<?xi32>, tensor<1000x64xf32>) -> tensor<?x64xf32>
// CHECK: %[[Y:.*]] = v4.linear %[[X]], %[[WQ]] : (tensor<?x64xf32>, tensor<32x64xf8E4M3FN, #v4.quant<fp8_e4m3, block = [128, 128], scale = ue8m0>>) -> tensor<?x32xf32>
// CHECK: return %[[Y]]
func.func @weights_and_embed(%ids: tensor<?xi32>) -> tensor<?x32xf32> {
  %table = v4.weight @"model.embed_tokens.weight" : tensor<1000x64xf32>
  %wq = v4.weight @"model.layers.0.attn.wq_b.weight" : tensor<32x64xf8E4M3FN, #v4.quant<fp8_e4m3, block = [128, 128], scale = ue8m0>>
  %x = v4.embed %ids, %table : (tensor<?xi32>, tensor<1000x64xf32>) -> tensor<?x64xf32>
  %y = v4.linear %x, %wq : (tensor<?x64xf32>, tensor<32x64xf8E4M3FN, #v4.quant<fp8_e4m3, block = [128, 128], scale = ue8m0>>) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}

// CHECK-LABEL: func.func @hyper_connections
// CHECK-SAME: (%[[X:[^:]*]]: tensor<?x64xf32>, %[[FN:[^:]*]]: tensor<24x256xf32>, %[[BASE:[^:]*]]: tensor<24xf32>, %[[SCALE:[^:]*]]: tensor<3xf32>, %[[HFN:[^:]*]]: tensor<4x256xf32>, %[[HBASE:[^:]*]]: tensor<4xf32>, %[[HSCALE:[^:]*]]: tensor<1xf32>)
// CHECK: %[[S:.*]] = v4.hc_expand %[[X]] {hc = 4 : i64} : (tensor<?x64xf32>) -> tensor<?x256xf32>
// CHECK: %[[C:[^ ,]+]], %[[POST:[^ ,]+]], %[[COMB:[^ ,]+]] = v4.hc_pre %[[S]], %[[FN]], %[[BASE]], %[[SCALE]] {hc = 4 : i64, hc_eps = 5.000000e-01 : f64, norm_eps = 2.500000e-01 : f64, sinkhorn_iters = 20 : i64} : (tensor<?x256xf32>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>) -> (tensor<?x64xf32>, tensor<?x4xf32>, tensor<?x16xf32>)
// CHECK: %[[P:.*]] = v4.hc_post %[[S]], %[[C]], %[[POST]], %[[COMB]] {hc = 4 : i64} : (tensor<?x256xf32>, tensor<?x64xf32>, tensor<?x4xf32>, tensor<?x16xf32>) -> tensor<?x256xf32>
// CHECK: %[[H:.*]] = v4.hc_head %[[P]], %[[HFN]], %[[HBASE]], %[[HSCALE]] {hc = 4 : i64, hc_eps = 5.000000e-01 : f64, norm_eps = 2.500000e-01 : f64} : (tensor<?x256xf32>, tensor<4x256xf32>, tensor<4xf32>, tensor<1xf32>) -> tensor<?x64xf32>
// CHECK: return %[[H]]
func.func @hyper_connections(%x: tensor<?x64xf32>, %fn: tensor<24x256xf32>, %base: tensor<24xf32>,
                             %scale: tensor<3xf32>, %hfn: tensor<4x256xf32>, %hbase: tensor<4xf32>,
                             %hscale: tensor<1xf32>) -> tensor<?x64xf32> {
  %stack = v4.hc_expand %x {hc = 4 : i64} : (tensor<?x64xf32>) -> tensor<?x256xf32>
  %c, %post, %comb = v4.hc_pre %stack, %fn, %base, %scale
      {hc = 4 : i64, hc_eps = 0.5 : f64, norm_eps = 0.25 : f64, sinkhorn_iters = 20 : i64}
      : (tensor<?x256xf32>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<?x64xf32>, tensor<?x4xf32>, tensor<?x16xf32>)
  %next = v4.hc_post %stack, %c, %post, %comb {hc = 4 : i64}
      : (tensor<?x256xf32>, tensor<?x64xf32>, tensor<?x4xf32>, tensor<?x16xf32>) -> tensor<?x256xf32>
  %h = v4.hc_head %next, %hfn, %hbase, %hscale {hc = 4 : i64, hc_eps = 0.5 : f64, norm_eps = 0.25 : f64}
      : (tensor<?x256xf32>, tensor<4x256xf32>, tensor<4xf32>, tensor<1xf32>) -> tensor<?x64xf32>
  return %h : tensor<?x64xf32>
}

// CHECK-LABEL: func.func @norm_projection_rope
// CHECK-SAME: (%[[X:[^:]*]]: tensor<4x64xbf16>, %[[NW:[^:]*]]: tensor<64xbf16>, %[[WO:[^:]*]]: tensor<32x32xbf16>, %[[POS:[^:]*]]: tensor<4xi32>)
// CHECK: %[[N:.*]] = v4.rms_norm %[[X]], %[[NW]] {eps = 1.250000e-01 : f64, group = 64 : i64} : (tensor<4x64xbf16>, tensor<64xbf16>) -> tensor<4x64xbf16>
// CHECK: %[[HN:.*]] = v4.rms_norm %[[N]] {eps = 1.250000e-01 : f64, group = 16 : i64} : (tensor<4x64xbf16>) -> tensor<4x64xbf16>
// CHECK: %[[R:.*]] = v4.rope %[[HN]], %[[POS]] {head_dim = 32 : i64, inv_freq = array<f32: 1.000000e+00, 1.250000e-01>, inverse = true, rope_dim = 4 : i64, scaling = 1.000000e+00 : f64} : (tensor<4x64xbf16>, tensor<4xi32>) -> tensor<4x64xbf16>
// CHECK: %[[G:.*]] = v4.grouped_linear %[[R]], %[[WO]] {groups = 2 : i64} : (tensor<4x64xbf16>, tensor<32x32xbf16>) -> tensor<4x32xbf16>
func.func @norm_projection_rope(%x: tensor<4x64xbf16>, %nw: tensor<64xbf16>, %wo: tensor<32x32xbf16>,
                                %pos: tensor<4xi32>) -> tensor<4x32xbf16> {
  %n = v4.rms_norm %x, %nw {eps = 0.125 : f64, group = 64 : i64} : (tensor<4x64xbf16>, tensor<64xbf16>) -> tensor<4x64xbf16>
  %hn = v4.rms_norm %n {eps = 0.125 : f64, group = 16 : i64} : (tensor<4x64xbf16>) -> tensor<4x64xbf16>
  %r = v4.rope %hn, %pos {head_dim = 32 : i64, inv_freq = array<f32: 1.0, 0.125>, inverse = true,
                          rope_dim = 4 : i64, scaling = 1.0 : f64}
      : (tensor<4x64xbf16>, tensor<4xi32>) -> tensor<4x64xbf16>
  %g = v4.grouped_linear %r, %wo {groups = 2 : i64} : (tensor<4x64xbf16>, tensor<32x32xbf16>) -> tensor<4x32xbf16>
  return %g : tensor<4x32xbf16>
}

// CHECK-LABEL: func.func @csa_attention
// CHECK-SAME: (%[[Q:[^:]*]]: tensor<?x64xf32>, %[[KV:[^:]*]]: tensor<?x32xf32>, %[[CKV:[^:]*]]: tensor<?x64xf32>, %[[CGATE:[^:]*]]: tensor<?x64xf32>, %[[APE:[^:]*]]: tensor<4x64xf32>, %[[NORM:[^:]*]]: tensor<32xf32>, %[[POS:[^:]*]]: tensor<?xi32>, %[[QI:[^:]*]]: tensor<?x32xf32>, %[[WI:[^:]*]]: tensor<?x2xf32>, %[[SINKS:[^:]*]]: tensor<2xf32>, %[[STATE:[^:]*]]: !v4.cache<compress_state, rows = 8, width = 128, f32>, %[[ENTRIES:[^:]*]]: !v4.cache<entries, width = 32, rate = 4, f32>, %[[KEYS:[^:]*]]: !v4.cache<entries, width = 16, rate = 4, f32>, %[[WIN:[^:]*]]: !v4.cache<window, rows = 8, width = 32, f32>)
// CHECK: %[[STATE2:[^ ,]+]], %[[ENTRIES2:[^ ,]+]] = v4.compress %[[CKV]], %[[CGATE]], %[[APE]], %[[NORM]], %[[POS]], %[[STATE]], %[[ENTRIES]] {eps = 1.250000e-01 : f64, head_dim = 32 : i64, inv_freq = array<f32: 1.000000e+00, 5.000000e-01>, overlap = true, rate = 4 : i64, rope_dim = 4 : i64, scaling = 1.000000e+00 : f64} : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<4x64xf32>, tensor<32xf32>, tensor<?xi32>, !v4.cache<compress_state, rows = 8, width = 128, f32>, !v4.cache<entries, width = 32, rate = 4, f32>) -> (!v4.cache<compress_state, rows = 8, width = 128, f32>, !v4.cache<entries, width = 32, rate = 4, f32>)
// CHECK: %[[TOPK:.*]] = v4.indexer_topk %[[QI]], %[[WI]], %[[POS]], %[[KEYS]] {head_dim = 16 : i64, heads = 2 : i64, rate = 4 : i64, score_scale = 2.500000e-01 : f64, top_k = 8 : i64, weight_scale = 5.000000e-01 : f64} : (tensor<?x32xf32>, tensor<?x2xf32>, tensor<?xi32>, !v4.cache<entries, width = 16, rate = 4, f32>) -> tensor<?x8xi32>
// CHECK: %[[O:.*]] = v4.attention %[[Q]], %[[KV]], %[[SINKS]], %[[POS]], %[[WIN]] entries %[[ENTRIES2]] topk %[[TOPK]] {head_dim = 32 : i64, num_heads = 2 : i64, rate = 4 : i64, scale = 1.250000e-01 : f64, window = 8 : i64} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<2xf32>, tensor<?xi32>, !v4.cache<window, rows = 8, width = 32, f32>, !v4.cache<entries, width = 32, rate = 4, f32>, tensor<?x8xi32>) -> tensor<?x64xf32>
// CHECK: %[[W2:.*]] = v4.cache_append %[[WIN]], %[[KV]], %[[POS]] : (!v4.cache<window, rows = 8, width = 32, f32>, tensor<?x32xf32>, tensor<?xi32>) -> !v4.cache<window, rows = 8, width = 32, f32>
// CHECK: return %[[O]], %[[STATE2]], %[[ENTRIES2]], %[[W2]]
func.func @csa_attention(%q: tensor<?x64xf32>, %kv: tensor<?x32xf32>, %ckv: tensor<?x64xf32>,
                         %cgate: tensor<?x64xf32>, %ape: tensor<4x64xf32>, %norm: tensor<32xf32>,
                         %pos: tensor<?xi32>, %qi: tensor<?x32xf32>, %wi: tensor<?x2xf32>,
                         %sinks: tensor<2xf32>,
                         %state: !v4.cache<compress_state, rows = 8, width = 128, f32>,
                         %entries: !v4.cache<entries, width = 32, rate = 4, f32>,
                         %keys: !v4.cache<entries, width = 16, rate = 4, f32>,
                         %win: !v4.cache<window, rows = 8, width = 32, f32>)
    -> (tensor<?x64xf32>, !v4.cache<compress_state, rows = 8, width = 128, f32>,
        !v4.cache<entries, width = 32, rate = 4, f32>, !v4.cache<window, rows = 8, width = 32, f32>) {
  %state2, %entries2 = v4.compress %ckv, %cgate, %ape, %norm, %pos, %state, %entries
      {eps = 0.125 : f64, head_dim = 32 : i64, inv_freq = array<f32: 1.0, 0.5>, overlap = true,
       rate = 4 : i64, rope_dim = 4 : i64, scaling = 1.0 : f64}
      : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<4x64xf32>, tensor<32xf32>, tensor<?xi32>,
         !v4.cache<compress_state, rows = 8, width = 128, f32>, !v4.cache<entries, width = 32, rate = 4, f32>)
      -> (!v4.cache<compress_state, rows = 8, width = 128, f32>, !v4.cache<entries, width = 32, rate = 4, f32>)
  %topk = v4.indexer_topk %qi, %wi, %pos, %keys
      {head_dim = 16 : i64, heads = 2 : i64, rate = 4 : i64, score_scale = 0.25 : f64,
       top_k = 8 : i64, weight_scale = 0.5 : f64}
      : (tensor<?x32xf32>, tensor<?x2xf32>, tensor<?xi32>, !v4.cache<entries, width = 16, rate = 4, f32>)
      -> tensor<?x8xi32>
  %o = v4.attention %q, %kv, %sinks, %pos, %win entries %entries2 topk %topk
      {head_dim = 32 : i64, num_heads = 2 : i64, rate = 4 : i64, scale = 0.125 : f64, window = 8 : i64}
      : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<2xf32>, tensor<?xi32>,
         !v4.cache<window, rows = 8, width = 32, f32>, !v4.cache<entries, width = 32, rate = 4, f32>,
         tensor<?x8xi32>) -> tensor<?x64xf32>
  %win2 = v4.cache_append %win, %kv, %pos
      : (!v4.cache<window, rows = 8, width = 32, f32>, tensor<?x32xf32>, tensor<?xi32>)
      -> !v4.cache<window, rows = 8, width = 32, f32>
  return %o, %state2, %entries2, %win2
      : tensor<?x64xf32>, !v4.cache<compress_state, rows = 8, width = 128, f32>,
        !v4.cache<entries, width = 32, rate = 4, f32>, !v4.cache<window, rows = 8, width = 32, f32>
}

// HCA layers attend to all entries (no topk); sliding layers to the window only.
// CHECK-LABEL: func.func @hca_and_sliding_attention
// CHECK-SAME: (%[[Q:[^:]*]]: tensor<3x64xf32>, %[[KV:[^:]*]]: tensor<3x32xf32>, %[[SINKS:[^:]*]]: tensor<2xf32>, %[[POS:[^:]*]]: tensor<3xi32>, %[[WIN:[^:]*]]: !v4.cache<window, rows = 8, width = 32, f32>, %[[ENTRIES:[^:]*]]: !v4.cache<entries, rows = 16, width = 32, rate = 128, f32>, %[[CKV:[^:]*]]: tensor<3x32xf32>, %[[APE:[^:]*]]: tensor<128x32xf32>, %[[NORM:[^:]*]]: tensor<32xf32>, %[[STATE:[^:]*]]: !v4.cache<compress_state, rows = 256, width = 64, f32>)
// CHECK: %[[STATE2:[^ ,]+]], %[[ENTRIES2:[^ ,]+]] = v4.compress %[[CKV]], %[[CKV]], %[[APE]], %[[NORM]], %[[POS]], %[[STATE]], %[[ENTRIES]] {{{.*}}overlap = false, rate = 128 : i64{{.*}}}
// CHECK-SAME: -> (!v4.cache<compress_state, rows = 256, width = 64, f32>, !v4.cache<entries, rows = 16, width = 32, rate = 128, f32>)
// CHECK: %[[HCA:.*]] = v4.attention %[[Q]], %[[KV]], %[[SINKS]], %[[POS]], %[[WIN]] entries %[[ENTRIES2]] {head_dim = 32 : i64, num_heads = 2 : i64, rate = 128 : i64, scale = 1.250000e-01 : f64, window = 8 : i64} : (tensor<3x64xf32>, tensor<3x32xf32>, tensor<2xf32>, tensor<3xi32>, !v4.cache<window, rows = 8, width = 32, f32>, !v4.cache<entries, rows = 16, width = 32, rate = 128, f32>) -> tensor<3x64xf32>
// CHECK: %[[SWA:.*]] = v4.attention %[[Q]], %[[KV]], %[[SINKS]], %[[POS]], %[[WIN]] {head_dim = 32 : i64, num_heads = 2 : i64, rate = 0 : i64, scale = 1.250000e-01 : f64, window = 8 : i64} : (tensor<3x64xf32>, tensor<3x32xf32>, tensor<2xf32>, tensor<3xi32>, !v4.cache<window, rows = 8, width = 32, f32>) -> tensor<3x64xf32>
// CHECK: %[[SUM:.*]] = v4.add %[[HCA]], %[[SWA]] : (tensor<3x64xf32>, tensor<3x64xf32>) -> tensor<3x64xf32>
// CHECK: return %[[SUM]]
func.func @hca_and_sliding_attention(%q: tensor<3x64xf32>, %kv: tensor<3x32xf32>, %sinks: tensor<2xf32>,
                                     %pos: tensor<3xi32>, %win: !v4.cache<window, rows = 8, width = 32, f32>,
                                     %entries: !v4.cache<entries, rows = 16, width = 32, rate = 128, f32>,
                                     %ckv: tensor<3x32xf32>, %ape: tensor<128x32xf32>, %norm: tensor<32xf32>,
                                     %state: !v4.cache<compress_state, rows = 256, width = 64, f32>)
    -> tensor<3x64xf32> {
  %state2, %entries2 = v4.compress %ckv, %ckv, %ape, %norm, %pos, %state, %entries
      {eps = 0.125 : f64, head_dim = 32 : i64, inv_freq = array<f32: 1.0, 0.5>, overlap = false,
       rate = 128 : i64, rope_dim = 4 : i64, scaling = 1.0 : f64}
      : (tensor<3x32xf32>, tensor<3x32xf32>, tensor<128x32xf32>, tensor<32xf32>, tensor<3xi32>,
         !v4.cache<compress_state, rows = 256, width = 64, f32>, !v4.cache<entries, rows = 16, width = 32, rate = 128, f32>)
      -> (!v4.cache<compress_state, rows = 256, width = 64, f32>, !v4.cache<entries, rows = 16, width = 32, rate = 128, f32>)
  %hca = v4.attention %q, %kv, %sinks, %pos, %win entries %entries2
      {head_dim = 32 : i64, num_heads = 2 : i64, rate = 128 : i64, scale = 0.125 : f64, window = 8 : i64}
      : (tensor<3x64xf32>, tensor<3x32xf32>, tensor<2xf32>, tensor<3xi32>,
         !v4.cache<window, rows = 8, width = 32, f32>, !v4.cache<entries, rows = 16, width = 32, rate = 128, f32>)
      -> tensor<3x64xf32>
  %swa = v4.attention %q, %kv, %sinks, %pos, %win
      {head_dim = 32 : i64, num_heads = 2 : i64, rate = 0 : i64, scale = 0.125 : f64, window = 8 : i64}
      : (tensor<3x64xf32>, tensor<3x32xf32>, tensor<2xf32>, tensor<3xi32>,
         !v4.cache<window, rows = 8, width = 32, f32>) -> tensor<3x64xf32>
  %sum = v4.add %hca, %swa : (tensor<3x64xf32>, tensor<3x64xf32>) -> tensor<3x64xf32>
  return %sum : tensor<3x64xf32>
}

// CHECK-LABEL: func.func @mixture_of_experts
// CHECK-SAME: (%[[H:[^:]*]]: tensor<?x64xf32>, %[[IDS:[^:]*]]: tensor<?xi32>, %[[GATE:[^:]*]]: tensor<8x64xf32>, %[[BIAS:[^:]*]]: tensor<8xf32>, %[[GU:[^:]*]]: tensor<8x96x64xf32>, %[[DOWN:[^:]*]]: tensor<8x64x48xf32>)
// CHECK: %[[TID:.*]] = v4.weight @model.layers.0.ffn.gate.tid2eid : tensor<1000x2xi32>
// CHECK: %[[RW:[^ ,]+]], %[[RE:[^ ,]+]] = v4.router %[[H]], %[[GATE]], %[[BIAS]] {routed_scaling = 1.500000e+00 : f64, top_k = 2 : i64} : (tensor<?x64xf32>, tensor<8x64xf32>, tensor<8xf32>) -> (tensor<?x2xf32>, tensor<?x2xi32>)
// CHECK: %[[HW:[^ ,]+]], %[[HE:[^ ,]+]] = v4.hash_router %[[H]], %[[GATE]], %[[TID]], %[[IDS]] {routed_scaling = 1.500000e+00 : f64} : (tensor<?x64xf32>, tensor<8x64xf32>, tensor<1000x2xi32>, tensor<?xi32>) -> (tensor<?x2xf32>, tensor<?x2xi32>)
// CHECK: %[[M:.*]] = v4.moe %[[H]], %[[RW]], %[[RE]], %[[GU]], %[[DOWN]] {swiglu_limit = 1.000000e+01 : f64} : (tensor<?x64xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<8x96x64xf32>, tensor<8x64x48xf32>) -> tensor<?x64xf32>
// CHECK: %[[HM:.*]] = v4.moe %[[H]], %[[HW]], %[[HE]], %[[GU]], %[[DOWN]]
// CHECK: %[[A:.*]] = v4.swiglu %[[M]], %[[HM]] {limit = 1.000000e+01 : f64} : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
// CHECK: return %[[A]]
func.func @mixture_of_experts(%h: tensor<?x64xf32>, %ids: tensor<?xi32>, %gate: tensor<8x64xf32>,
                              %bias: tensor<8xf32>, %gate_up: tensor<8x96x64xf32>,
                              %down: tensor<8x64x48xf32>) -> tensor<?x64xf32> {
  %tid2eid = v4.weight @"model.layers.0.ffn.gate.tid2eid" : tensor<1000x2xi32>
  %w, %e = v4.router %h, %gate, %bias {routed_scaling = 1.5 : f64, top_k = 2 : i64}
      : (tensor<?x64xf32>, tensor<8x64xf32>, tensor<8xf32>) -> (tensor<?x2xf32>, tensor<?x2xi32>)
  %hw, %he = v4.hash_router %h, %gate, %tid2eid, %ids {routed_scaling = 1.5 : f64}
      : (tensor<?x64xf32>, tensor<8x64xf32>, tensor<1000x2xi32>, tensor<?xi32>)
      -> (tensor<?x2xf32>, tensor<?x2xi32>)
  %m = v4.moe %h, %w, %e, %gate_up, %down {swiglu_limit = 10.0 : f64}
      : (tensor<?x64xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<8x96x64xf32>, tensor<8x64x48xf32>)
      -> tensor<?x64xf32>
  %hm = v4.moe %h, %hw, %he, %gate_up, %down {swiglu_limit = 10.0 : f64}
      : (tensor<?x64xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<8x96x64xf32>, tensor<8x64x48xf32>)
      -> tensor<?x64xf32>
  %a = v4.swiglu %m, %hm {limit = 10.0 : f64} : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  return %a : tensor<?x64xf32>
}

// The fp4 expert weights of the module above keep their logical shape.
// CHECK-LABEL: func.func @quantized_experts
// CHECK: %[[W1:.*]] = v4.weight @model.layers.0.ffn.experts.w1 : tensor<8x96x64xi8, #v4.quant<fp4_e2m1, block = [1, 32], scale = f32>>
// CHECK: v4.moe %{{.*}}, %{{.*}}, %{{.*}}, %[[W1]], %{{.*}} {swiglu_limit = 1.000000e+01 : f64}
func.func @quantized_experts(%h: tensor<?x64xf32>, %w: tensor<?x2xf32>, %e: tensor<?x2xi32>,
                             %down: tensor<8x64x48xf32>) -> tensor<?x64xf32> {
  %w1 = v4.weight @"model.layers.0.ffn.experts.w1" : tensor<8x96x64xi8, #v4.quant<fp4_e2m1, block = [1, 32], scale = f32>>
  %m = v4.moe %h, %w, %e, %w1, %down {swiglu_limit = 10.0 : f64}
      : (tensor<?x64xf32>, tensor<?x2xf32>, tensor<?x2xi32>,
         tensor<8x96x64xi8, #v4.quant<fp4_e2m1, block = [1, 32], scale = f32>>, tensor<8x64x48xf32>)
      -> tensor<?x64xf32>
  return %m : tensor<?x64xf32>
}
