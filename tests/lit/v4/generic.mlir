// The generic v4-to-plan lowering copies op->getAttrDictionary() into kernel
// parameters, so inherent attributes (and operandSegmentSizes of ops with
// optional operands) must live in the attribute dictionary, and the generic
// form must parse back.
// RUN: v4-opt --mlir-print-op-generic %s | FileCheck %s
// RUN: v4-opt --mlir-print-op-generic %s | v4-opt | FileCheck %s --check-prefix=CUSTOM

// CHECK: "v4.global"() {sym_name = "model.layers.0.attn.attn_sink", type = tensor<2xf32>}
v4.global @"model.layers.0.attn.attn_sink" : tensor<2xf32>

// CHECK-LABEL: "func.func"
// CHECK-SAME: sym_name = "sliding_and_csa"
func.func @sliding_and_csa(%q: tensor<?x64xf32>, %kv: tensor<?x32xf32>, %pos: tensor<?xi32>,
                           %win: !v4.cache<window, rows = 8, width = 32, f32>,
                           %e: !v4.cache<entries, width = 32, rate = 4, f32>, %topk: tensor<?x8xi32>,
                           %nw: tensor<32xf32>)
    -> (tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>) {
  // CHECK: %[[SINKS:.*]] = "v4.weight"() {name = @model.layers.0.attn.attn_sink} : () -> tensor<2xf32>
  %sinks = v4.weight @"model.layers.0.attn.attn_sink" : tensor<2xf32>
  // CHECK: "v4.attention"(%{{.*}}, %{{.*}}, %[[SINKS]], %{{.*}}, %{{.*}}) {head_dim = 32 : i64, num_heads = 2 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 0, 0>, rate = 0 : i64, scale = 1.250000e-01 : f64, window = 8 : i64}
  %swa = v4.attention %q, %kv, %sinks, %pos, %win
      {head_dim = 32 : i64, num_heads = 2 : i64, rate = 0 : i64, scale = 0.125 : f64, window = 8 : i64}
      : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<2xf32>, tensor<?xi32>,
         !v4.cache<window, rows = 8, width = 32, f32>) -> tensor<?x64xf32>
  // CHECK: "v4.attention"(%{{.*}}, %{{.*}}, %[[SINKS]], %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) {head_dim = 32 : i64, num_heads = 2 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 1, 1>, rate = 4 : i64, scale = 1.250000e-01 : f64, window = 8 : i64}
  %csa = v4.attention %q, %kv, %sinks, %pos, %win entries %e topk %topk
      {head_dim = 32 : i64, num_heads = 2 : i64, rate = 4 : i64, scale = 0.125 : f64, window = 8 : i64}
      : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<2xf32>, tensor<?xi32>,
         !v4.cache<window, rows = 8, width = 32, f32>, !v4.cache<entries, width = 32, rate = 4, f32>,
         tensor<?x8xi32>) -> tensor<?x64xf32>
  // rms_norm has a single optional operand: w is present iff there are two operands.
  // CHECK: "v4.rms_norm"(%{{.*}}, %{{.*}}) {eps = 1.250000e-01 : f64, group = 32 : i64}
  // CHECK: "v4.rms_norm"(%{{.*}}) {eps = 1.250000e-01 : f64, group = 16 : i64}
  %n = v4.rms_norm %kv, %nw {eps = 0.125 : f64, group = 32 : i64}
      : (tensor<?x32xf32>, tensor<32xf32>) -> tensor<?x32xf32>
  %h = v4.rms_norm %kv {eps = 0.125 : f64, group = 16 : i64} : (tensor<?x32xf32>) -> tensor<?x32xf32>
  return %swa, %csa, %n, %h : tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>
}

// CUSTOM-LABEL: func.func @sliding_and_csa
// CUSTOM: v4.attention %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {head_dim = 32 : i64, num_heads = 2 : i64, rate = 0 : i64, scale = 1.250000e-01 : f64, window = 8 : i64}
// CUSTOM: v4.attention %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} entries %{{.*}} topk %{{.*}} {head_dim = 32 : i64
