// v4 ops are pure (caches are SSA values): CSE merges identical ops and
// canonicalization drops unused ones, cache updates included.
// RUN: v4-opt --cse --canonicalize %s | FileCheck %s

// CHECK-LABEL: func.func @merge_and_drop
// CHECK-SAME: (%[[X:[^:]*]]: tensor<?x64xf32>, %[[W:[^:]*]]: tensor<32x64xf32>, %[[KV:[^:]*]]: tensor<?x32xf32>, %[[POS:[^:]*]]: tensor<?xi32>, %[[WIN:[^:]*]]: !v4.cache<window, rows = 8, width = 32, f32>)
// CHECK-NEXT: %[[Y:.*]] = v4.linear %[[X]], %[[W]]
// CHECK-NEXT: %[[S:.*]] = v4.add %[[Y]], %[[Y]]
// CHECK-NEXT: return %[[S]]
func.func @merge_and_drop(%x: tensor<?x64xf32>, %w: tensor<32x64xf32>, %kv: tensor<?x32xf32>,
                          %pos: tensor<?xi32>, %win: !v4.cache<window, rows = 8, width = 32, f32>)
    -> tensor<?x32xf32> {
  %a = v4.linear %x, %w : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %b = v4.linear %x, %w : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %unused = v4.cache_append %win, %kv, %pos
      : (!v4.cache<window, rows = 8, width = 32, f32>, tensor<?x32xf32>, tensor<?xi32>)
      -> !v4.cache<window, rows = 8, width = 32, f32>
  %s = v4.add %a, %b : (tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x32xf32>
  return %s : tensor<?x32xf32>
}
