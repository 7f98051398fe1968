// Bad bucket lists are errors on the module.
// RUN: v4-opt --v4-specialize="buckets=train:4" --verify-diagnostics %s
// RUN: v4-opt --v4-specialize="buckets=prefill:0" --verify-diagnostics %s
// RUN: not v4-opt --v4-specialize %s 2>&1 | FileCheck %s --check-prefix=NONE
// RUN: not v4-opt --v4-specialize="buckets=prefill:4,prefill:4" %s 2>&1 | FileCheck %s --check-prefix=TWICE

// NONE: error: v4-specialize needs at least one bucket; pass e.g. --v4-specialize=buckets=prefill:64,decode:1
// TWICE: error: v4-specialize: bucket 'prefill:4' is listed twice; list each once

// expected-error @+1 {{is not kind:size with kind prefill or decode and size > 0 (e.g. prefill:64)}}
module {
  func.func @forward(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
    return %x : tensor<?x8xf32>
  }
}
