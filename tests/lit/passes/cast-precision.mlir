// v4-cast-precision: bf16 storage of weights and activations, with the tiny
// precision-critical tensors kept f32.
// RUN: v4-opt --split-input-file --v4-cast-precision=precision=bf16 %s | FileCheck %s
// RUN: v4-opt --split-input-file --v4-cast-precision=precision=fp32 %s | FileCheck %s --check-prefix=FP32 --implicit-check-not=bf16
// RUN: not v4-opt --v4-cast-precision=precision=fp16 %s 2>&1 | FileCheck %s --check-prefix=BAD

// BAD: v4-cast-precision: unknown precision 'fp16'; use fp32 (no change) or bf16
// FP32 (no change): every chunk prints back in f32, no bf16 anywhere.

// The embedding, the final norm and the head become bf16; the logits (the
// returned tensor) stay f32, so the head linear widens.
// CHECK: v4.global @model.embed_tokens.weight : tensor<100x64xbf16>
// CHECK: v4.global @model.norm.weight : tensor<64xbf16>
// CHECK: v4.global @lm_head.weight : tensor<100x64xbf16>
// CHECK-LABEL: func.func @head
// FP32: v4.global @model.embed_tokens.weight : tensor<100x64xf32>
// FP32-LABEL: func.func @head
// FP32: v4.linear {{.*}} : (tensor<?x64xf32>, tensor<100x64xf32>) -> tensor<?x100xf32>
// CHECK-SAME: (%{{.*}}: tensor<?xi32>) -> tensor<?x100xf32>
// CHECK: v4.embed %{{.*}}, %{{.*}} : (tensor<?xi32>, tensor<100x64xbf16>) -> tensor<?x64xbf16>
// CHECK: v4.rms_norm {{.*}} : (tensor<?x64xbf16>, tensor<64xbf16>) -> tensor<?x64xbf16>
// CHECK: v4.linear {{.*}} : (tensor<?x64xbf16>, tensor<100x64xbf16>) -> tensor<?x100xf32>
v4.global @"model.embed_tokens.weight" : tensor<100x64xf32>
v4.global @"model.norm.weight" : tensor<64xf32>
v4.global @"lm_head.weight" : tensor<100x64xf32>
func.func @head(%ids: tensor<?xi32>) -> tensor<?x100xf32> {
  %table = v4.weight @"model.embed_tokens.weight" : tensor<100x64xf32>
  %x = v4.embed %ids, %table : (tensor<?xi32>, tensor<100x64xf32>) -> tensor<?x64xf32>
  %nw = v4.weight @"model.norm.weight" : tensor<64xf32>
  %h = v4.rms_norm %x, %nw {eps = 0.125 : f64, group = 64 : i64} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  %w = v4.weight @"lm_head.weight" : tensor<100x64xf32>
  %logits = v4.linear %h, %w : (tensor<?x64xf32>, tensor<100x64xf32>) -> tensor<?x100xf32>
  return %logits : tensor<?x100xf32>
}

// -----

// mHC: the streams and the collapsed input become bf16; fn/base/scale and
// the post/comb mixes stay f32.
// CHECK: v4.global @fn : tensor<24x256xf32>
// CHECK: v4.global @base : tensor<24xf32>
// CHECK: v4.global @scale : tensor<3xf32>
// CHECK: v4.global @head_fn : tensor<4x256xf32>
// CHECK-LABEL: func.func @hyper_connections
// FP32-LABEL: func.func @hyper_connections
// FP32: v4.hc_head {{.*}} : (tensor<?x256xf32>, tensor<4x256xf32>, tensor<4xf32>, tensor<1xf32>) -> tensor<?x64xf32>
// CHECK: v4.hc_expand {{.*}} -> tensor<?x256xbf16>
// CHECK: v4.hc_pre {{.*}} : (tensor<?x256xbf16>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>) -> (tensor<?x64xbf16>, tensor<?x4xf32>, tensor<?x16xf32>)
// CHECK: v4.hc_post {{.*}} : (tensor<?x256xbf16>, tensor<?x64xbf16>, tensor<?x4xf32>, tensor<?x16xf32>) -> tensor<?x256xbf16>
// CHECK: v4.hc_head {{.*}} : (tensor<?x256xbf16>, tensor<4x256xf32>, tensor<4xf32>, tensor<1xf32>) -> tensor<?x64xbf16>
// CHECK: v4.add {{.*}} -> tensor<?x64xbf16>
// Returned tensors that are not a projection follow the rule.
// CHECK: return {{.*}} : tensor<?x64xbf16>, tensor<?x64xbf16>
v4.global @fn : tensor<24x256xf32>
v4.global @base : tensor<24xf32>
v4.global @scale : tensor<3xf32>
v4.global @head_fn : tensor<4x256xf32>
v4.global @head_base : tensor<4xf32>
v4.global @head_scale : tensor<1xf32>
func.func @hyper_connections(%x: tensor<?x64xf32>, %other: tensor<?x64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>) {
  %fn = v4.weight @fn : tensor<24x256xf32>
  %base = v4.weight @base : tensor<24xf32>
  %scale = v4.weight @scale : tensor<3xf32>
  %hfn = v4.weight @head_fn : tensor<4x256xf32>
  %hbase = v4.weight @head_base : tensor<4xf32>
  %hscale = v4.weight @head_scale : tensor<1xf32>
  %stack = v4.hc_expand %x {hc = 4 : i64} : (tensor<?x64xf32>) -> tensor<?x256xf32>
  %c, %post, %comb = v4.hc_pre %stack, %fn, %base, %scale
      {hc = 4 : i64, hc_eps = 0.5 : f64, norm_eps = 0.25 : f64, sinkhorn_iters = 20 : i64}
      : (tensor<?x256xf32>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<?x64xf32>, tensor<?x4xf32>, tensor<?x16xf32>)
  %next = v4.hc_post %stack, %c, %post, %comb {hc = 4 : i64}
      : (tensor<?x256xf32>, tensor<?x64xf32>, tensor<?x4xf32>, tensor<?x16xf32>) -> tensor<?x256xf32>
  %h = v4.hc_head %next, %hfn, %hbase, %hscale {hc = 4 : i64, hc_eps = 0.5 : f64, norm_eps = 0.25 : f64}
      : (tensor<?x256xf32>, tensor<4x256xf32>, tensor<4xf32>, tensor<1xf32>) -> tensor<?x64xf32>
  %sum = v4.add %h, %c : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  %y = v4.add %sum, %other : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  return %h, %y : tensor<?x64xf32>, tensor<?x64xf32>
}

// -----

// Routing: gate and bias stay f32, so do the routing weights; the experts,
// the tid2eid table (i32) and the MoE activations follow the rule.
// CHECK: v4.global @gate : tensor<8x64xf32>
// CHECK: v4.global @bias : tensor<8xf32>
// CHECK: v4.global @tid2eid : tensor<1000x2xi32>
// CHECK: v4.global @gate_up : tensor<8x96x64xbf16>
// CHECK: v4.global @down : tensor<8x64x48xbf16>
// CHECK-LABEL: func.func @mixture_of_experts
// FP32-LABEL: func.func @mixture_of_experts
// FP32: v4.moe {{.*}} : (tensor<?x64xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<8x96x64xf32>, tensor<8x64x48xf32>) -> tensor<?x64xf32>
// CHECK-SAME: (%{{.*}}: tensor<?x64xbf16>, %{{.*}}: tensor<?xi32>) -> tensor<?x64xbf16>
// CHECK: v4.router {{.*}} : (tensor<?x64xbf16>, tensor<8x64xf32>, tensor<8xf32>) -> (tensor<?x2xf32>, tensor<?x2xi32>)
// CHECK: v4.hash_router {{.*}} : (tensor<?x64xbf16>, tensor<8x64xf32>, tensor<1000x2xi32>, tensor<?xi32>) -> (tensor<?x2xf32>, tensor<?x2xi32>)
// CHECK: v4.moe {{.*}} : (tensor<?x64xbf16>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<8x96x64xbf16>, tensor<8x64x48xbf16>) -> tensor<?x64xbf16>
v4.global @gate : tensor<8x64xf32>
v4.global @bias : tensor<8xf32>
v4.global @tid2eid : tensor<1000x2xi32>
v4.global @gate_up : tensor<8x96x64xf32>
v4.global @down : tensor<8x64x48xf32>
func.func @mixture_of_experts(%h: tensor<?x64xf32>, %ids: tensor<?xi32>) -> tensor<?x64xf32> {
  %gate = v4.weight @gate : tensor<8x64xf32>
  %bias = v4.weight @bias : tensor<8xf32>
  %tid2eid = v4.weight @tid2eid : tensor<1000x2xi32>
  %gate_up = v4.weight @gate_up : tensor<8x96x64xf32>
  %down = v4.weight @down : tensor<8x64x48xf32>
  %w, %e = v4.router %h, %gate, %bias {routed_scaling = 1.5 : f64, top_k = 2 : i64}
      : (tensor<?x64xf32>, tensor<8x64xf32>, tensor<8xf32>) -> (tensor<?x2xf32>, tensor<?x2xi32>)
  %hw, %he = v4.hash_router %h, %gate, %tid2eid, %ids {routed_scaling = 1.5 : f64}
      : (tensor<?x64xf32>, tensor<8x64xf32>, tensor<1000x2xi32>, tensor<?xi32>) -> (tensor<?x2xf32>, tensor<?x2xi32>)
  %m = v4.moe %h, %w, %e, %gate_up, %down {swiglu_limit = 10.0 : f64}
      : (tensor<?x64xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<8x96x64xf32>, tensor<8x64x48xf32>)
      -> tensor<?x64xf32>
  %hm = v4.moe %h, %hw, %he, %gate_up, %down {swiglu_limit = 10.0 : f64}
      : (tensor<?x64xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<8x96x64xf32>, tensor<8x64x48xf32>)
      -> tensor<?x64xf32>
  %a = v4.add %m, %hm : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  %out = v4.add %a, %h : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  %o2 = v4.swiglu %out, %out {limit = 10.0 : f64} : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  %o3 = v4.add %o2, %h : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  %o4 = v4.add %o3, %h : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  return %o4 : tensor<?x64xf32>
}

// -----

// Attention: sinks and the compressor's position_bias stay f32, norm_w and
// activations become bf16; caches are v4-kv-cache-dtype's (unchanged here).
// CHECK: v4.global @ape : tensor<4x64xf32>
// CHECK: v4.global @norm : tensor<32xbf16>
// CHECK: v4.global @sinks : tensor<2xf32>
// CHECK-LABEL: func.func @csa_attention
// FP32-LABEL: func.func @csa_attention
// FP32: v4.attention {{.*}} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<2xf32>, tensor<?xi32>, !v4.cache<window, rows = 8, width = 32, f32>, !v4.cache<entries, width = 32, rate = 4, f32>) -> tensor<?x64xf32>
// CHECK: v4.compress {{.*}} : (tensor<?x64xbf16>, tensor<?x64xbf16>, tensor<4x64xf32>, tensor<32xbf16>, tensor<?xi32>, !v4.cache<compress_state, rows = 8, width = 128, f32>, !v4.cache<entries, width = 32, rate = 4, f32>)
// CHECK: v4.attention {{.*}} : (tensor<?x64xbf16>, tensor<?x32xbf16>, tensor<2xf32>, tensor<?xi32>, !v4.cache<window, rows = 8, width = 32, f32>, !v4.cache<entries, width = 32, rate = 4, f32>) -> tensor<?x64xbf16>
v4.global @ape : tensor<4x64xf32>
v4.global @norm : tensor<32xf32>
v4.global @sinks : tensor<2xf32>
func.func @csa_attention(%q: tensor<?x64xf32>, %kv: tensor<?x32xf32>, %ckv: tensor<?x64xf32>,
                         %pos: tensor<?xi32>,
                         %state: !v4.cache<compress_state, rows = 8, width = 128, f32>,
                         %entries: !v4.cache<entries, width = 32, rate = 4, f32>,
                         %win: !v4.cache<window, rows = 8, width = 32, f32>)
    -> (tensor<?x64xf32>, !v4.cache<compress_state, rows = 8, width = 128, f32>,
        !v4.cache<entries, width = 32, rate = 4, f32>) {
  %ape = v4.weight @ape : tensor<4x64xf32>
  %norm = v4.weight @norm : tensor<32xf32>
  %sinks = v4.weight @sinks : tensor<2xf32>
  %state2, %entries2 = v4.compress %ckv, %ckv, %ape, %norm, %pos, %state, %entries
      {eps = 0.125 : f64, head_dim = 32 : i64, inv_freq = array<f32: 1.0, 0.5>, overlap = true,
       rate = 4 : i64, rope_dim = 4 : i64, scaling = 1.0 : f64}
      : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<4x64xf32>, tensor<32xf32>, tensor<?xi32>,
         !v4.cache<compress_state, rows = 8, width = 128, f32>, !v4.cache<entries, width = 32, rate = 4, f32>)
      -> (!v4.cache<compress_state, rows = 8, width = 128, f32>, !v4.cache<entries, width = 32, rate = 4, f32>)
  %o = v4.attention %q, %kv, %sinks, %pos, %win entries %entries2
      {head_dim = 32 : i64, num_heads = 2 : i64, rate = 4 : i64, scale = 0.125 : f64, window = 8 : i64}
      : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<2xf32>, tensor<?xi32>,
         !v4.cache<window, rows = 8, width = 32, f32>, !v4.cache<entries, width = 32, rate = 4, f32>)
      -> tensor<?x64xf32>
  %o2 = v4.add %o, %q : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  %o3 = v4.add %o2, %q : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
  return %o3, %state2, %entries2
      : tensor<?x64xf32>, !v4.cache<compress_state, rows = 8, width = 128, f32>, !v4.cache<entries, width = 32, rate = 4, f32>
}

// -----

// Quantized weights and their i8 scales are left as they are; the linear's
// activations become bf16.
// CHECK: v4.global @wq : tensor<32x64xf8E4M3FN, #v4.quant<fp8_e4m3, block = [128, 128], scale = ue8m0>>
// CHECK: v4.global @wq.scale : tensor<1x1xi8>
// CHECK-LABEL: func.func @quantized
// FP32-LABEL: func.func @quantized
// FP32: v4.linear_fp8 {{.*}} : (tensor<?x64xf32>, tensor<32x64xf8E4M3FN, #v4.quant<fp8_e4m3, block = [128, 128], scale = ue8m0>>, tensor<1x1xi8>) -> tensor<?x32xf32>
// CHECK: v4.linear_fp8 {{.*}} : (tensor<?x64xbf16>, tensor<32x64xf8E4M3FN, #v4.quant<fp8_e4m3, block = [128, 128], scale = ue8m0>>, tensor<1x1xi8>) -> tensor<?x32xbf16>
v4.global @wq : tensor<32x64xf8E4M3FN, #v4.quant<fp8_e4m3, block = [128, 128], scale = ue8m0>>
v4.global @"wq.scale" : tensor<1x1xi8>
func.func @quantized(%x: tensor<?x64xf32>) -> tensor<?x32xf32> {
  %w = v4.weight @wq : tensor<32x64xf8E4M3FN, #v4.quant<fp8_e4m3, block = [128, 128], scale = ue8m0>>
  %s = v4.weight @"wq.scale" : tensor<1x1xi8>
  %y = v4.linear_fp8 %x, %w, %s {block = array<i64: 128, 128>}
      : (tensor<?x64xf32>, tensor<32x64xf8E4M3FN, #v4.quant<fp8_e4m3, block = [128, 128], scale = ue8m0>>, tensor<1x1xi8>)
      -> tensor<?x32xf32>
  %z = v4.add %y, %y : (tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x32xf32>
  return %z : tensor<?x32xf32>
}
