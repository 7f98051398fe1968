// Bad bucket lists are errors on the module.
// RUN: v4-opt --v4-specialize="buckets=train:4" --verify-diagnostics %s
// RUN: v4-opt --v4-specialize="buckets=prefill:0" --verify-diagnostics %s

// expected-error @+1 {{is not kind:size with kind prefill or decode and size > 0 (e.g. prefill:64)}}
module {
  func.func @forward(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
    return %x : tensor<?x8xf32>
  }
}
