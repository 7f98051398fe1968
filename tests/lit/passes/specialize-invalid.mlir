// RUN: v4-opt --split-input-file --allow-unregistered-dialect --v4-specialize="buckets=prefill:4" --verify-diagnostics %s

// expected-error @+1 {{v4-specialize: the module has no func.func @forward to specialise; build the model function first}}
module {
  func.func @main(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
    return %x : tensor<?x8xf32>
  }
}

// -----

// expected-error @+1 {{argument #0 has type 'tensor<4x?xf32>' with dynamic dimension 1; only dimension 0 (tokens) may be dynamic}}
func.func @forward(%x: tensor<4x?xf32>) -> tensor<4x?xf32> {
  return %x : tensor<4x?xf32>
}

// -----

// expected-error @+1 {{already uses the name @prefill_4 that v4-specialize gives a bucket; rename it}}
func.func @prefill_4(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  return %x : tensor<?x8xf32>
}
func.func @forward(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  return %x : tensor<?x8xf32>
}

// -----

// Inside the function too, only the token dimension may be dynamic.
func.func @forward(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{result type 'tensor<?x?xf32>' has dynamic dimension 1; only dimension 0 (tokens) may be dynamic}}
  %y = "test.reshape"(%x) : (tensor<?x8xf32>) -> tensor<?x?xf32>
  return %x : tensor<?x8xf32>
}
