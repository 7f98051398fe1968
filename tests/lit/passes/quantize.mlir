// v4-quantize: which weights become fp8 / fp4 and which stay f32.
// RUN: v4-opt --split-input-file --v4-quantize=precision=fp8 %s | FileCheck %s
// RUN: v4-opt --split-input-file --v4-quantize="precision=fp32 experts=fp4" %s | FileCheck %s --check-prefix=FP4
// RUN: v4-opt --split-input-file --v4-quantize="precision=fp32 experts=same" %s | FileCheck %s --check-prefix=NONE --implicit-check-not=quant
// RUN: not v4-opt --v4-quantize=precision=int4 %s 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: not v4-opt --v4-quantize="precision=fp8 experts=fp8" %s 2>&1 | FileCheck %s --check-prefix=BADEXPERTS

// BAD: v4-quantize: precision must be fp32, bf16 or fp8, got 'int4'
// BADEXPERTS: v4-quantize: experts must be same or fp4, got 'fp8'

// Fires on an attention projection: a data global (same name, e4m3 codes)
// and a scale global (ceil(192/128) x ceil(256/128) blocks), both marked.
// CHECK: v4.global @model.layers.0.self_attn.q_a_proj.weight {v4.quant_part = "data", v4.quant_source = "model.layers.0.self_attn.q_a_proj.weight"} : tensor<192x256xf8E4M3FN, #v4.quant<fp8_e4m3, block = [128, 128], scale = ue8m0>>
// CHECK: v4.global @model.layers.0.self_attn.q_a_proj.weight.scale {v4.quant_part = "scale", v4.quant_source = "model.layers.0.self_attn.q_a_proj.weight"} : tensor<2x2xi8>
// The compressor's projections and the head stay f32, as V4 releases them.
// CHECK: v4.global @model.layers.0.self_attn.compressor.kv_proj.weight : tensor<64x256xf32>
// CHECK: v4.global @model.layers.0.self_attn.compressor.indexer.gate_proj.weight : tensor<64x256xf32>
// CHECK: v4.global @model.layers.0.self_attn.compressor.indexer.scorer.weights_proj.weight : tensor<4x256xf32>
// CHECK: v4.global @lm_head.weight : tensor<512x256xf32>
// CHECK-LABEL: func.func @forward
// CHECK: %[[W:.*]] = v4.weight @model.layers.0.self_attn.q_a_proj.weight : tensor<192x256xf8E4M3FN, #v4.quant<fp8_e4m3, block = [128, 128], scale = ue8m0>>
// CHECK: %[[S:.*]] = v4.weight @model.layers.0.self_attn.q_a_proj.weight.scale : tensor<2x2xi8>
// CHECK: v4.linear_fp8 %arg0, %[[W]], %[[S]] {block = array<i64: 128, 128>}
// CHECK: v4.linear %arg0, %{{.*}} : (tensor<?x256xf32>, tensor<64x256xf32>)
// CHECK: v4.linear %arg0, %{{.*}} : (tensor<?x256xf32>, tensor<64x256xf32>)
// CHECK: v4.linear %arg0, %{{.*}} : (tensor<?x256xf32>, tensor<4x256xf32>)
// CHECK: v4.linear %arg0, %{{.*}} : (tensor<?x256xf32>, tensor<512x256xf32>)
// NONE (precision=fp32 experts=same): every weight and op as it was, no quant anywhere.
// NONE: v4.global @model.layers.0.self_attn.q_a_proj.weight : tensor<192x256xf32>
// NONE-LABEL: func.func @forward
// NONE: v4.linear %arg0, %{{.*}} : (tensor<?x256xf32>, tensor<192x256xf32>) -> tensor<?x192xf32>
v4.global @"model.layers.0.self_attn.q_a_proj.weight" : tensor<192x256xf32>
v4.global @"model.layers.0.self_attn.compressor.kv_proj.weight" : tensor<64x256xf32>
v4.global @"model.layers.0.self_attn.compressor.indexer.gate_proj.weight" : tensor<64x256xf32>
v4.global @"model.layers.0.self_attn.compressor.indexer.scorer.weights_proj.weight" : tensor<4x256xf32>
v4.global @"lm_head.weight" : tensor<512x256xf32>
func.func @forward(%h: tensor<?x256xf32>) -> (tensor<?x192xf32>, tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x4xf32>, tensor<?x512xf32>) {
  %wq = v4.weight @"model.layers.0.self_attn.q_a_proj.weight" : tensor<192x256xf32>
  %wkv = v4.weight @"model.layers.0.self_attn.compressor.kv_proj.weight" : tensor<64x256xf32>
  %wg = v4.weight @"model.layers.0.self_attn.compressor.indexer.gate_proj.weight" : tensor<64x256xf32>
  %ww = v4.weight @"model.layers.0.self_attn.compressor.indexer.scorer.weights_proj.weight" : tensor<4x256xf32>
  %wh = v4.weight @"lm_head.weight" : tensor<512x256xf32>
  %q = v4.linear %h, %wq : (tensor<?x256xf32>, tensor<192x256xf32>) -> tensor<?x192xf32>
  %kv = v4.linear %h, %wkv : (tensor<?x256xf32>, tensor<64x256xf32>) -> tensor<?x64xf32>
  %g = v4.linear %h, %wg : (tensor<?x256xf32>, tensor<64x256xf32>) -> tensor<?x64xf32>
  %w = v4.linear %h, %ww : (tensor<?x256xf32>, tensor<4x256xf32>) -> tensor<?x4xf32>
  %l = v4.linear %h, %wh : (tensor<?x256xf32>, tensor<512x256xf32>) -> tensor<?x512xf32>
  return %q, %kv, %g, %w, %l : tensor<?x192xf32>, tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x4xf32>, tensor<?x512xf32>
}

// -----

// A weight that is also read by another op (a tied embedding) stays f32.
// CHECK-LABEL: func.func @tied
// CHECK: v4.embed
// CHECK: v4.linear %{{.*}}, %{{.*}} : (tensor<?x64xf32>, tensor<512x64xf32>)
v4.global @"model.layers.0.mlp.shared_experts.up_proj.weight" : tensor<512x64xf32>
func.func @tied(%ids: tensor<?xi32>) -> tensor<?x512xf32> {
  %t = v4.weight @"model.layers.0.mlp.shared_experts.up_proj.weight" : tensor<512x64xf32>
  %x = v4.embed %ids, %t : (tensor<?xi32>, tensor<512x64xf32>) -> tensor<?x64xf32>
  %l = v4.linear %x, %t : (tensor<?x64xf32>, tensor<512x64xf32>) -> tensor<?x512xf32>
  return %l : tensor<?x512xf32>
}

// -----

// Routed experts: only with experts=fp4 (precision=fp8 alone leaves v4.moe).
// CHECK-LABEL: func.func @experts
// NONE-LABEL: func.func @experts
// NONE: v4.moe %{{.*}} : (tensor<?x64xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<8x96x64xf32>, tensor<8x64x48xf32>) -> tensor<?x64xf32>
// CHECK: v4.moe %
// FP4: v4.global @model.layers.0.mlp.experts.gate_up_proj {v4.quant_part = "data", v4.quant_source = "model.layers.0.mlp.experts.gate_up_proj"} : tensor<8x96x64xi8, #v4.quant<fp4_e2m1, block = [1, 32], scale = ue8m0>>
// FP4: v4.global @model.layers.0.mlp.experts.gate_up_proj.scale {v4.quant_part = "scale", v4.quant_source = "model.layers.0.mlp.experts.gate_up_proj"} : tensor<8x96x2xi8>
// FP4: v4.global @model.layers.0.mlp.experts.down_proj.scale {{.*}} : tensor<8x64x2xi8>
// FP4-LABEL: func.func @experts
// FP4: v4.moe_fp4 %arg0, %arg1, %arg2, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {block = array<i64: 1, 32>, swiglu_limit = 1.000000e+01 : f64}
// FP4-NOT: v4.moe %
v4.global @"model.layers.0.mlp.experts.gate_up_proj" : tensor<8x96x64xf32>
v4.global @"model.layers.0.mlp.experts.down_proj" : tensor<8x64x48xf32>
func.func @experts(%h: tensor<?x64xf32>, %w: tensor<?x2xf32>, %ex: tensor<?x2xi32>) -> tensor<?x64xf32> {
  %gu = v4.weight @"model.layers.0.mlp.experts.gate_up_proj" : tensor<8x96x64xf32>
  %dn = v4.weight @"model.layers.0.mlp.experts.down_proj" : tensor<8x64x48xf32>
  %m = v4.moe %h, %w, %ex, %gu, %dn {swiglu_limit = 10.0 : f64}
      : (tensor<?x64xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<8x96x64xf32>, tensor<8x64x48xf32>) -> tensor<?x64xf32>
  return %m : tensor<?x64xf32>
}
