// v4-fuse-hc: hc_post followed by the next site's hc_pre on its result -> hc_post_pre.
// RUN: v4-opt --split-input-file --v4-fuse-hc %s | FileCheck %s

// The new streams also feed the next hc_post, which now reads result #0.
// CHECK-LABEL: func.func @fires
// CHECK: %[[X2:.*]], %[[C:.*]], %[[P2:.*]], %[[M2:.*]] = v4.hc_post_pre %arg0, %arg1, %arg2, %arg3, %arg4, %arg5, %arg6 {hc = 4 : i64, hc_eps = 9.9999999999999995E-7 : f64, norm_eps = 9.9999999999999995E-7 : f64, sinkhorn_iters = 20 : i64}
// CHECK-NOT: v4.hc_pre
// CHECK: %[[X3:.*]] = v4.hc_post %[[X2]], %[[C]], %[[P2]], %[[M2]] {hc = 4 : i64}
// CHECK: return %[[X3]]
func.func @fires(%X: tensor<?x256xf32>, %y: tensor<?x64xf32>, %post: tensor<?x4xf32>, %comb: tensor<?x16xf32>,
                 %fn: tensor<24x256xf32>, %base: tensor<24xf32>, %scale: tensor<3xf32>) -> tensor<?x256xf32> {
  %X2 = v4.hc_post %X, %y, %post, %comb {hc = 4 : i64}
      : (tensor<?x256xf32>, tensor<?x64xf32>, tensor<?x4xf32>, tensor<?x16xf32>) -> tensor<?x256xf32>
  %c, %p2, %m2 = v4.hc_pre %X2, %fn, %base, %scale
      {hc = 4 : i64, hc_eps = 1.0e-06 : f64, norm_eps = 1.0e-06 : f64, sinkhorn_iters = 20 : i64}
      : (tensor<?x256xf32>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<?x64xf32>, tensor<?x4xf32>, tensor<?x16xf32>)
  %X3 = v4.hc_post %X2, %c, %p2, %m2 {hc = 4 : i64}
      : (tensor<?x256xf32>, tensor<?x64xf32>, tensor<?x4xf32>, tensor<?x16xf32>) -> tensor<?x256xf32>
  return %X3 : tensor<?x256xf32>
}

// -----

// The new streams are read (by v4.add) before the hc_pre: the fused op, placed
// at the hc_pre, could not serve that read. No fusion.
// CHECK-LABEL: func.func @read_before_pre
// CHECK: v4.hc_post
// CHECK: v4.add
// CHECK: v4.hc_pre
// CHECK-NOT: v4.hc_post_pre
func.func @read_before_pre(%X: tensor<?x256xf32>, %y: tensor<?x64xf32>, %post: tensor<?x4xf32>, %comb: tensor<?x16xf32>,
                           %fn: tensor<24x256xf32>, %base: tensor<24xf32>, %scale: tensor<3xf32>)
    -> (tensor<?x256xf32>, tensor<?x64xf32>) {
  %X2 = v4.hc_post %X, %y, %post, %comb {hc = 4 : i64}
      : (tensor<?x256xf32>, tensor<?x64xf32>, tensor<?x4xf32>, tensor<?x16xf32>) -> tensor<?x256xf32>
  %d = v4.add %X2, %X2 : (tensor<?x256xf32>, tensor<?x256xf32>) -> tensor<?x256xf32>
  %c, %p2, %m2 = v4.hc_pre %X2, %fn, %base, %scale
      {hc = 4 : i64, hc_eps = 1.0e-06 : f64, norm_eps = 1.0e-06 : f64, sinkhorn_iters = 20 : i64}
      : (tensor<?x256xf32>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<?x64xf32>, tensor<?x4xf32>, tensor<?x16xf32>)
  return %d, %c : tensor<?x256xf32>, tensor<?x64xf32>
}

// -----

// hc_pre of streams that no hc_post made (the first site, after hc_expand): no fusion.
// CHECK-LABEL: func.func @first_site
// CHECK: v4.hc_pre
// CHECK-NOT: v4.hc_post_pre
func.func @first_site(%x: tensor<?x64xf32>, %fn: tensor<24x256xf32>, %base: tensor<24xf32>, %scale: tensor<3xf32>)
    -> tensor<?x64xf32> {
  %X = v4.hc_expand %x {hc = 4 : i64} : (tensor<?x64xf32>) -> tensor<?x256xf32>
  %c, %p, %m = v4.hc_pre %X, %fn, %base, %scale
      {hc = 4 : i64, hc_eps = 1.0e-06 : f64, norm_eps = 1.0e-06 : f64, sinkhorn_iters = 20 : i64}
      : (tensor<?x256xf32>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
      -> (tensor<?x64xf32>, tensor<?x4xf32>, tensor<?x16xf32>)
  return %c : tensor<?x64xf32>
}
