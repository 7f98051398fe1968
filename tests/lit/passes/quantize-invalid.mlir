// v4-quantize refuses, rather than miscompiles, expert weights it can only
// partly rewrite.
// RUN: v4-opt --v4-quantize="precision=fp32 experts=fp4" --verify-diagnostics %s

// Both v4.moe read @gate_up; the second's down projection is not a global, so
// only the first becomes v4.moe_fp4, which quantizes @gate_up under the second.
v4.global @gate_up : tensor<8x96x64xf32>
v4.global @down : tensor<8x64x48xf32>
func.func @forward(%h: tensor<?x64xf32>, %w: tensor<?x2xf32>, %ex: tensor<?x2xi32>, %down2: tensor<8x64x48xf32>)
    -> (tensor<?x64xf32>, tensor<?x64xf32>) {
  %gu = v4.weight @gate_up : tensor<8x96x64xf32>
  %dn = v4.weight @down : tensor<8x64x48xf32>
  %a = v4.moe %h, %w, %ex, %gu, %dn {swiglu_limit = 10.0 : f64}
      : (tensor<?x64xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<8x96x64xf32>, tensor<8x64x48xf32>) -> tensor<?x64xf32>
  // expected-error @+1 {{shares expert weights with another v4.moe; v4-quantize experts=fp4 needs each expert tensor read by v4.moe ops it can all rewrite (use experts=same)}}
  %b = v4.moe %h, %w, %ex, %gu, %down2 {swiglu_limit = 10.0 : f64}
      : (tensor<?x64xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<8x96x64xf32>, tensor<8x64x48xf32>) -> tensor<?x64xf32>
  return %a, %b : tensor<?x64xf32>, tensor<?x64xf32>
}
