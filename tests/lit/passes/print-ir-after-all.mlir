// v4-opt's own IR printing works on the v4 passes: the module after each
// pass of an explicit pipeline (on stderr).
// RUN: v4-opt %s --pass-pipeline='builtin.module(v4-lower-to-plan,v4-plan-memory)' \
// RUN:   --mlir-print-ir-after-all -o /dev/null 2>&1 | FileCheck %s

// CHECK: // -----// IR Dump After {{.*}} (v4-lower-to-plan) {{.*}}//----- //
// CHECK: plan.bucket @decode_1
// CHECK: plan.alloc : !plan.buffer<1x8xf32>
// CHECK: // -----// IR Dump After {{.*}} (v4-plan-memory) {{.*}}//----- //
// CHECK: plan.bucket @decode_1 attributes {arena_bytes = 64 : i64
// CHECK: plan.alloc offset 0 : !plan.buffer<1x8xf32>
// CHECK-NOT: IR Dump
v4.global @"model.embed.weight" : tensor<16x8xf32>
func.func @decode_1(%ids: tensor<1xi32>, %pos: tensor<1xi32>) -> tensor<1x16xf32>
    attributes {v4.bucket = {batch = 1 : i64, kind = "decode", tokens = 1 : i64}} {
  %table = v4.weight @"model.embed.weight" : tensor<16x8xf32>
  %x = v4.embed %ids, %table : (tensor<1xi32>, tensor<16x8xf32>) -> tensor<1x8xf32>
  %n = v4.rms_norm %x {eps = 1.0e-06 : f64, group = 8 : i64} : (tensor<1x8xf32>) -> tensor<1x8xf32>
  %logits = v4.linear %n, %table : (tensor<1x8xf32>, tensor<16x8xf32>) -> tensor<1x16xf32>
  return %logits : tensor<1x16xf32>
}
