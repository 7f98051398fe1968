// An unknown dtype is an error that names the choices.
// RUN: not v4-opt --v4-kv-cache-dtype=dtype=int4 %s 2>&1 | FileCheck %s
// CHECK: v4-kv-cache-dtype: unknown dtype 'int4'; use fp32, bf16 or fp8
func.func @forward() {
  return
}
