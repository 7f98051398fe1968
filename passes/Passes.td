// The v4c passes: v4 model IR -> shape buckets -> plan launches -> arena plan.
#ifndef V4C_PASSES_TD
#define V4C_PASSES_TD

include "mlir/Pass/PassBase.td"

def SpecializePass : Pass<"v4-specialize", "mlir::ModuleOp"> {
  let summary = "clones @forward once per shape bucket with a static token count";
  let description = [{
    For each bucket `prefill:T` or `decode:B` of the `buckets` option, clones
    `@forward` into `@prefill_T` / `@decode_B` and replaces every dynamic
    (token) dimension by the bucket's token count (a decode step runs one token
    for each of B sessions, so T = B). The bucket is recorded in a
    `v4.bucket = {kind, tokens, batch}` attribute; `@forward` is erased.
    Only dimension 0 of a tensor may be dynamic.

    Before (`--v4-specialize=buckets=prefill:64,decode:1`):
    ```mlir
    func.func @forward(%ids: tensor<?xi32>, ...) -> (tensor<?x512xf32>, ...) {
      %x = v4.embed %ids, %table : (tensor<?xi32>, tensor<512x64xf32>) -> tensor<?x64xf32>
      ...
    }
    ```
    After:
    ```mlir
    func.func @prefill_64(%ids: tensor<64xi32>, ...) -> (tensor<64x512xf32>, ...)
        attributes {v4.bucket = {batch = 1 : i64, kind = "prefill", tokens = 64 : i64}} {
      %x = v4.embed %ids, %table : (tensor<64xi32>, tensor<512x64xf32>) -> tensor<64x64xf32>
      ...
    }
    func.func @decode_1(%ids: tensor<1xi32>, ...) -> (tensor<1x512xf32>, ...)
        attributes {v4.bucket = {batch = 1 : i64, kind = "decode", tokens = 1 : i64}} { ... }
    ```
  }];
  let options = [
    ListOption<"buckets", "buckets", "std::string",
               "shape buckets as kind:size, e.g. prefill:64,decode:1 (decode size = sessions)">
  ];
}

def LowerToPlanPass : Pass<"v4-lower-to-plan", "mlir::ModuleOp"> {
  let summary = "turns each specialised function into a plan.bucket of kernel launches";
  let description = [{
    Each function carrying `v4.bucket` becomes a `plan.bucket` of the same
    name. The `ids`/`positions` arguments become `plan.input`s, each cache
    argument a `plan.cache` of a module-level `plan.cache_slot` (created once
    from the cache type and the `v4.cache_name`/`v4.layer` argument
    attributes, shared by all buckets), `v4.weight` a `plan.weight`, and every
    other op one `plan.launch` named after the op, with the op's attributes as
    `params`. Tensor results get a `plan.alloc`, except the logits (operand 0
    of `func.return`), which are written to `plan.output "logits"`; a cache
    result is written in place to its cache operand's slot, so each cache
    version must be read by nothing after the op that updates it.
    `v4.global`s stay: they are the weight table.

    Before:
    ```mlir
    func.func @decode_1(%ids: tensor<1xi32>, %pos: tensor<1xi32>,
                        %win: !v4.cache<window, rows = 8, width = 32, f32>
                          {v4.cache_name = "layers.0.window", v4.layer = 0 : i64})
        -> (tensor<1x512xf32>, !v4.cache<window, rows = 8, width = 32, f32>)
        attributes {v4.bucket = {batch = 1 : i64, kind = "decode", tokens = 1 : i64}} {
      %t = v4.weight @"model.embed.weight" : tensor<512x32xf32>
      %x = v4.embed %ids, %t : (tensor<1xi32>, tensor<512x32xf32>) -> tensor<1x32xf32>
      %w2 = v4.cache_append %win, %x, %pos : (...) -> !v4.cache<window, rows = 8, width = 32, f32>
      %l = v4.linear %x, %t : (tensor<1x32xf32>, tensor<512x32xf32>) -> tensor<1x512xf32>
      return %l, %w2 : ...
    }
    ```
    After:
    ```mlir
    plan.cache_slot @layers.0.window {element_type = f32, kind = "window", layer = 0 : i64,
                                      rate = 0 : i64, rows = 8 : i64, width = 32 : i64}
    plan.bucket @decode_1 attributes {batch = 1 : i64, kind = "decode", tokens = 1 : i64} {
      %ids = plan.input "ids" : !plan.buffer<1xi32>
      %pos = plan.input "positions" : !plan.buffer<1xi32>
      %c = plan.cache @layers.0.window : !plan.cache
      %logits = plan.output "logits" : !plan.buffer<1x512xf32>
      %t = plan.weight @model.embed.weight : !plan.buffer<512x32xf32>
      %x = plan.alloc : !plan.buffer<1x32xf32>
      plan.launch "v4.embed"(%ids, %t : ...) -> (%x : !plan.buffer<1x32xf32>) {params = {}}
      plan.launch "v4.cache_append"(%c, %x, %pos : ...) -> (%c : !plan.cache) {params = {}}
      plan.launch "v4.linear"(%x, %t : ...) -> (%logits : !plan.buffer<1x512xf32>) {params = {}}
    }
    ```
  }];
  let dependentDialects = ["v4c::plan::PlanDialect"];
}

def PlanMemoryPass : Pass<"v4-plan-memory", "mlir::ModuleOp"> {
  let summary = "assigns arena offsets to every plan.alloc from buffer lifetimes";
  let description = [{
    Per bucket, a buffer is live from the first launch that uses it (its
    writer) to the last launch that reads it. Buffers are placed largest
    first, each at the best-fitting 64-byte aligned gap among the already
    placed buffers whose lifetimes overlap its own, so buffers that are never
    live together share bytes. Sets each alloc's `offset`, and the bucket's
    `arena_bytes` (the planned size) and `naive_bytes` (one private range per
    alloc) so the saving is visible in the IR.

    Before:
    ```mlir
    plan.bucket @prefill_4 attributes {batch = 1 : i64, kind = "prefill", tokens = 4 : i64} {
      %a = plan.alloc : !plan.buffer<4x8xf32>
      plan.launch "v4.embed"(...) -> (%a : !plan.buffer<4x8xf32>) {params = {}}
      %b = plan.alloc : !plan.buffer<4x8xf32>
      plan.launch "v4.rms_norm"(%a : ...) -> (%b : !plan.buffer<4x8xf32>) {params = {...}}
      %c = plan.alloc : !plan.buffer<4x8xf32>
      plan.launch "v4.rms_norm"(%b : ...) -> (%c : !plan.buffer<4x8xf32>) {params = {...}}
      ...
    }
    ```
    After (%a is dead when %c is written, so they share offset 0):
    ```mlir
    plan.bucket @prefill_4 attributes {arena_bytes = 256 : i64, batch = 1 : i64, kind = "prefill",
                                       naive_bytes = 384 : i64, tokens = 4 : i64} {
      %a = plan.alloc offset 0 : !plan.buffer<4x8xf32>
      %b = plan.alloc offset 128 : !plan.buffer<4x8xf32>
      %c = plan.alloc offset 0 : !plan.buffer<4x8xf32>
      ...
    }
    ```
  }];
}

#endif // V4C_PASSES_TD
