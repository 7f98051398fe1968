// v4-fuse-swiglu: linear(h, gate), linear(h, up), swiglu -> linear_swiglu.
// RUN: v4-opt --split-input-file --v4-fuse-swiglu %s | FileCheck %s

// CHECK-LABEL: func.func @fires
// CHECK-NEXT: %[[A:.*]] = v4.linear_swiglu %arg0, %arg1, %arg2 {limit = 1.000000e+01 : f64} : (tensor<?x64xf32>, tensor<48x64xf32>, tensor<48x64xf32>) -> tensor<?x48xf32>
// CHECK-NEXT: return %[[A]]
func.func @fires(%h: tensor<?x64xf32>, %wg: tensor<48x64xf32>, %wu: tensor<48x64xf32>) -> tensor<?x48xf32> {
  %g = v4.linear %h, %wg : (tensor<?x64xf32>, tensor<48x64xf32>) -> tensor<?x48xf32>
  %u = v4.linear %h, %wu : (tensor<?x64xf32>, tensor<48x64xf32>) -> tensor<?x48xf32>
  %a = v4.swiglu %g, %u {limit = 10.0 : f64} : (tensor<?x48xf32>, tensor<?x48xf32>) -> tensor<?x48xf32>
  return %a : tensor<?x48xf32>
}

// -----

// The gate projection is also returned, so it must stay: no fusion.
// CHECK-LABEL: func.func @gate_used_elsewhere
// CHECK: v4.linear
// CHECK: v4.linear
// CHECK: v4.swiglu
// CHECK-NOT: v4.linear_swiglu
func.func @gate_used_elsewhere(%h: tensor<?x64xf32>, %wg: tensor<48x64xf32>, %wu: tensor<48x64xf32>)
    -> (tensor<?x48xf32>, tensor<?x48xf32>) {
  %g = v4.linear %h, %wg : (tensor<?x64xf32>, tensor<48x64xf32>) -> tensor<?x48xf32>
  %u = v4.linear %h, %wu : (tensor<?x64xf32>, tensor<48x64xf32>) -> tensor<?x48xf32>
  %a = v4.swiglu %g, %u {limit = 10.0 : f64} : (tensor<?x48xf32>, tensor<?x48xf32>) -> tensor<?x48xf32>
  return %a, %g : tensor<?x48xf32>, tensor<?x48xf32>
}

// -----

// Gate and up project different inputs; the fused op takes one h: no fusion.
// CHECK-LABEL: func.func @different_inputs
// CHECK: v4.swiglu
// CHECK-NOT: v4.linear_swiglu
func.func @different_inputs(%h: tensor<?x64xf32>, %h2: tensor<?x64xf32>, %wg: tensor<48x64xf32>, %wu: tensor<48x64xf32>)
    -> tensor<?x48xf32> {
  %g = v4.linear %h, %wg : (tensor<?x64xf32>, tensor<48x64xf32>) -> tensor<?x48xf32>
  %u = v4.linear %h2, %wu : (tensor<?x64xf32>, tensor<48x64xf32>) -> tensor<?x48xf32>
  %a = v4.swiglu %g, %u {limit = 10.0 : f64} : (tensor<?x48xf32>, tensor<?x48xf32>) -> tensor<?x48xf32>
  return %a : tensor<?x48xf32>
}

// -----

// The up input is not a linear at all: no fusion.
// CHECK-LABEL: func.func @up_not_linear
// CHECK: v4.swiglu
// CHECK-NOT: v4.linear_swiglu
func.func @up_not_linear(%h: tensor<?x64xf32>, %wg: tensor<48x64xf32>, %u: tensor<?x48xf32>) -> tensor<?x48xf32> {
  %g = v4.linear %h, %wg : (tensor<?x64xf32>, tensor<48x64xf32>) -> tensor<?x48xf32>
  %a = v4.swiglu %g, %u {limit = 10.0 : f64} : (tensor<?x48xf32>, tensor<?x48xf32>) -> tensor<?x48xf32>
  return %a : tensor<?x48xf32>
}
