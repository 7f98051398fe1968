// The v4c passes: v4 model IR -> shape buckets -> plan launches -> arena plan.
#ifndef V4C_PASSES_TD
#define V4C_PASSES_TD

include "mlir/Pass/PassBase.td"

//===----------------------------------------------------------------------===//
// Fusion (docs/passes.md): each rewrite replaces a chain of v4 ops by one
// fused op of dialects/v4/V4FusedOps.td with exactly the chain's numerics.
// They run before v4-specialize, except v4-fuse-rope-append, which needs the
// static token count.
//===----------------------------------------------------------------------===//

def FuseCompressPass : Pass<"v4-fuse-compress", "mlir::ModuleOp"> {
  let summary = "fuses the compressor's kv and gate projections into v4.compress";
  let description = [{
    A `v4.compress` whose `kv` and `gate` are each the only use of a
    `v4.linear` of the same input `h` becomes one `v4.linear_compress` taking
    `h` and both weights: projection, pooling, norm and rope in one kernel.
    Does not fire when a projection has another user, the two projections read
    different inputs, or a weight is quantized.

    Before:
    ```mlir
    %kv = v4.linear %h, %wkv : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    %g = v4.linear %h, %wg : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    %s2, %e2 = v4.compress %kv, %g, %ape, %norm, %pos, %s, %e {...} : (...) -> (...)
    ```
    After:
    ```mlir
    %s2, %e2 = v4.linear_compress %h, %wkv, %wg, %ape, %norm, %pos, %s, %e {...} : (...) -> (...)
    ```
  }];
}

def FuseSwigluPass : Pass<"v4-fuse-swiglu", "mlir::ModuleOp"> {
  let summary = "fuses the SwiGLU clamp and activation into the gate/up matmuls' epilogue";
  let description = [{
    `v4.swiglu(v4.linear(h, gate_w), v4.linear(h, up_w))`, where each linear
    feeds only the swiglu, becomes `v4.linear_swiglu(h, gate_w, up_w)` (the
    shared expert). Does not fire when a projection result has another user,
    the projections read different inputs, or a weight is quantized.

    Before:
    ```mlir
    %g = v4.linear %h, %wg : (tensor<?x64xf32>, tensor<48x64xf32>) -> tensor<?x48xf32>
    %u = v4.linear %h, %wu : (tensor<?x64xf32>, tensor<48x64xf32>) -> tensor<?x48xf32>
    %a = v4.swiglu %g, %u {limit = 10.0 : f64} : (tensor<?x48xf32>, tensor<?x48xf32>) -> tensor<?x48xf32>
    ```
    After:
    ```mlir
    %a = v4.linear_swiglu %h, %wg, %wu {limit = 10.0 : f64}
        : (tensor<?x64xf32>, tensor<48x64xf32>, tensor<48x64xf32>) -> tensor<?x48xf32>
    ```
  }];
}

def FuseHyperConnectionsPass : Pass<"v4-fuse-hc", "mlir::ModuleOp"> {
  let summary = "fuses an mHC site's hc_post with the next site's hc_pre";
  let description = [{
    A `v4.hc_pre` whose streams `X` are the result of a `v4.hc_post` (same
    `hc`) becomes one `v4.hc_post_pre` returning the new streams and the
    pre outputs; other readers of the new streams (the next hc_post) read the
    fused op's first result. Does not fire when the streams are read before
    the hc_pre or the hc differs.

    Before:
    ```mlir
    %X2 = v4.hc_post %X, %y, %post, %comb {hc = 4 : i64} : (...) -> tensor<?x256xf32>
    %c, %p2, %m2 = v4.hc_pre %X2, %fn, %base, %scale {hc = 4 : i64, ...} : (...) -> (...)
    ```
    After:
    ```mlir
    %X2, %c, %p2, %m2 = v4.hc_post_pre %X, %y, %post, %comb, %fn, %base, %scale {hc = 4 : i64, ...}
        : (...) -> (...)
    ```
  }];
}

def FuseNormLinearPass : Pass<"v4-fuse-norm-linear", "mlir::ModuleOp"> {
  let summary = "fuses an RMS norm into the prologue of the linears that read it";
  let description = [{
    A `v4.rms_norm` whose every user is a `v4.linear` reading it as `x`
    becomes one `v4.norm_linear` with all those weights and one result per
    linear; the normed tensor is never written out. Weights defined after the
    norm are hoisted (a `v4.weight` has no operands). Does not fire when the
    norm result has any other user (router, rope, a fused op, ...) or a
    weight is quantized. Runs after the other fusions, whose fused ops may
    take the norm's place as the linears' consumer.

    Before:
    ```mlir
    %n = v4.rms_norm %x, %w {eps = 1.0e-06 : f64, group = 64 : i64} : (...) -> tensor<?x64xf32>
    %q = v4.linear %n, %wq : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
    %k = v4.linear %n, %wk : (tensor<?x64xf32>, tensor<16x64xf32>) -> tensor<?x16xf32>
    ```
    After:
    ```mlir
    %q, %k = v4.norm_linear %x norm %w weights %wq, %wk {eps = 1.0e-06 : f64, group = 64 : i64}
        : (...) -> (tensor<?x32xf32>, tensor<?x16xf32>)
    ```
  }];
}

def FuseRopeAppendPass : Pass<"v4-fuse-rope-append", "mlir::ModuleOp"> {
  let summary = "fuses the kv rope with the window-cache append for single-token chunks";
  let description = [{
    `v4.cache_append(win, v4.rope(kv, pos), pos)` with a one-token kv of one
    head becomes `v4.rope_cache_append(win, kv, pos)` at the rope, returning
    the roped kv (for attention) and the new window; attentions reading the
    old window (same positions) read the new one. Only for one token per
    session (so it runs after v4-specialize): T = 1, or any decode bucket
    (`decode:B` rows are B sessions' single tokens, each with its own window);
    a prefill chunk of T > 1 tokens would overwrite ring rows its own
    attention still reads. Does not fire for prefill T != 1 or dynamic T,
    multi-head ropes, different positions, or when something other than
    attention reads the old window.

    Before (decode):
    ```mlir
    %k = v4.rope %kv, %pos {...} : (tensor<1x32xf32>, tensor<1xi32>) -> tensor<1x32xf32>
    %o = v4.attention %q, %k, %sinks, %pos, %win {...} : (...) -> tensor<1x64xf32>
    %win2 = v4.cache_append %win, %k, %pos : (...) -> !v4.cache<window, rows = 8, width = 32, f32>
    ```
    After:
    ```mlir
    %k, %win2 = v4.rope_cache_append %win, %kv, %pos {...} : (...) -> (tensor<1x32xf32>, !v4.cache<...>)
    %o = v4.attention %q, %k, %sinks, %pos, %win2 {...} : (...) -> tensor<1x64xf32>
    ```
  }];
}

def KvCacheDtypePass : Pass<"v4-kv-cache-dtype", "mlir::ModuleOp"> {
  let summary = "sets the storage format of the KV caches: fp32, bf16 or fp8 (e4m3 + bf16 rope)";
  let description = [{
    Retypes every window and entries cache of each function (arguments, the
    ops' updated versions and the returned values) to the element type of
    `dtype`: `bf16`, or `fp8` = `f8E4M3FN` with `rope = rope_dim` (the last
    rope_dim channels, from the v4.rope / v4.compress that makes the rows,
    stay bf16). Indexer keys (entries read by v4.indexer_topk) get `rope = 0`:
    all channels e4m3. Compressor state stays f32. `dtype=fp32` changes
    nothing. The ops still compute in f32; the kernels round each row they
    store (docs/quantization.md, "KV cache"). Run it before the fusions.

    Before (`--v4-kv-cache-dtype=dtype=fp8`):
    ```mlir
    func.func @forward(%ids: tensor<?xi32>, %pos: tensor<?xi32>,
        %w: !v4.cache<window, rows = 8, width = 32, f32> {v4.cache_name = "layers.0.window", v4.layer = 0 : i64})
        -> (tensor<?x512xf32>, !v4.cache<window, rows = 8, width = 32, f32>) {
      %kv = v4.rope %x, %pos {rope_dim = 4 : i64, ...} : (...) -> tensor<?x32xf32>
      %w2 = v4.cache_append %w, %kv, %pos : (...) -> !v4.cache<window, rows = 8, width = 32, f32>
    ```
    After:
    ```mlir
    func.func @forward(..., %w: !v4.cache<window, rows = 8, width = 32, rope = 4, f8E4M3FN> {...})
        -> (tensor<?x512xf32>, !v4.cache<window, rows = 8, width = 32, rope = 4, f8E4M3FN>) {
      %w2 = v4.cache_append %w, %kv, %pos : (...) -> !v4.cache<window, rows = 8, width = 32, rope = 4, f8E4M3FN>
    ```
  }];
  let options = [
    Option<"dtype", "dtype", "std::string", /*default=*/"\"fp32\"",
           "KV cache storage: fp32 | bf16 | fp8 (e4m3 per 64-channel ue8m0 group, bf16 rope channels)">
  ];
}

def CastPrecisionPass : Pass<"v4-cast-precision", "mlir::ModuleOp"> {
  let summary = "stores weights and activations in bf16 (CUDA --precision bf16 / fp8), keeping tiny critical tensors f32";
  let description = [{
    With `precision=bf16`, every unencoded f32 tensor becomes bf16: weight
    globals and their `v4.weight` reads, op results, tensor arguments.
    Kernels still compute in fp32 (they load and store through bf16). Stays
    f32: a returned `v4.linear` / `v4.norm_linear` result (the logits: the
    head widens bf16 x to f32), the router's gate/bias weights and its weights result, mHC
    fn/base/scale weights and the post/comb mixes of `v4.hc_pre` /
    `v4.hc_post_pre`, attention sinks and the compressor's position_bias.
    Integer tensors, i8 scales and `#v4.quant` weights are untouched; caches
    are set by `v4-kv-cache-dtype`. `precision=fp32` changes nothing. Run it
    after `v4-quantize` and before the fusions.

    Before (`--v4-cast-precision=precision=bf16`):
    ```mlir
    v4.global @"model.norm.weight" : tensor<256xf32>
    v4.global @"lm_head.weight" : tensor<512x256xf32>
    func.func @forward(%x: tensor<?x256xf32>) -> tensor<?x512xf32> {
      %nw = v4.weight @"model.norm.weight" : tensor<256xf32>
      %h = v4.rms_norm %x, %nw {eps = 1.0e-6 : f64, group = 256 : i64} : (...) -> tensor<?x256xf32>
      %w = v4.weight @"lm_head.weight" : tensor<512x256xf32>
      %logits = v4.linear %h, %w : (tensor<?x256xf32>, tensor<512x256xf32>) -> tensor<?x512xf32>
      return %logits : tensor<?x512xf32>
    }
    ```
    After:
    ```mlir
    v4.global @"model.norm.weight" : tensor<256xbf16>
    v4.global @"lm_head.weight" : tensor<512x256xbf16>
    func.func @forward(%x: tensor<?x256xbf16>) -> tensor<?x512xf32> {
      %nw = v4.weight @"model.norm.weight" : tensor<256xbf16>
      %h = v4.rms_norm %x, %nw {...} : (...) -> tensor<?x256xbf16>
      %w = v4.weight @"lm_head.weight" : tensor<512x256xbf16>
      %logits = v4.linear %h, %w : (tensor<?x256xbf16>, tensor<512x256xbf16>) -> tensor<?x512xf32>
      return %logits : tensor<?x512xf32>
    }
    ```
  }];
  let options = [
    Option<"precision", "precision", "std::string", /*default=*/"\"bf16\"",
           "storage of weights and activations: fp32 (no change) | bf16">
  ];
}

def QuantizePass : Pass<"v4-quantize", "mlir::ModuleOp"> {
  let summary = "block-quantizes dense linears to fp8 (e4m3) and routed experts to fp4 (e2m1)";
  let description = [{
    With `precision=fp8`, every `v4.linear` whose weight DeepSeek releases in
    FP8 (all but `lm_head`, the compressor/indexer kv and gate projections and
    the indexer's `weights_proj`; a weight also read by another op stays
    too) becomes `v4.linear_fp8` on an e4m3 weight with 128x128 ue8m0 blocks.
    With `experts=fp4`, each `v4.moe` becomes `v4.moe_fp4` on e2m1 experts
    with 1x32 ue8m0 blocks. Each quantized global `@W` changes type and gets
    a scale global `@"W.scale"` (one i8 exponent byte per block); both carry
    `v4.quant_source = "W"` and `v4.quant_part = "data" | "scale"`, which
    tell the driver to fill them by quantizing checkpoint tensor W
    (runtime/cpu/Quantization.h) or by copying its stored FP8 bytes and scales.
    `precision=fp32|bf16` and `experts=same` leave the respective ops alone.

    Before (`--v4-quantize=precision=fp8`):
    ```mlir
    v4.global @"model.layers.0.self_attn.q_a_proj.weight" : tensor<192x256xf32>
    %w = v4.weight @"model.layers.0.self_attn.q_a_proj.weight" : tensor<192x256xf32>
    %y = v4.linear %x, %w : (tensor<?x256xf32>, tensor<192x256xf32>) -> tensor<?x192xf32>
    ```
    After:
    ```mlir
    v4.global @"model.layers.0.self_attn.q_a_proj.weight"
        {v4.quant_part = "data", v4.quant_source = "model.layers.0.self_attn.q_a_proj.weight"}
        : tensor<192x256xf8E4M3FN, #v4.quant<fp8_e4m3, block = [128, 128], scale = ue8m0>>
    v4.global @"model.layers.0.self_attn.q_a_proj.weight.scale"
        {v4.quant_part = "scale", v4.quant_source = "model.layers.0.self_attn.q_a_proj.weight"}
        : tensor<2x2xi8>
    %w = v4.weight @"model.layers.0.self_attn.q_a_proj.weight" : tensor<192x256xf8E4M3FN, #v4.quant<...>>
    %s = v4.weight @"model.layers.0.self_attn.q_a_proj.weight.scale" : tensor<2x2xi8>
    %y = v4.linear_fp8 %x, %w, %s {block = array<i64: 128, 128>} : (...) -> tensor<?x192xf32>
    ```
  }];
  let options = [
    Option<"precision", "precision", "std::string", /*default=*/"\"fp8\"",
           "dense linears: fp32 | bf16 (left unquantized) or fp8 (e4m3, 128x128 blocks)">,
    Option<"experts", "experts", "std::string", /*default=*/"\"same\"",
           "routed experts: same (as they are) or fp4 (e2m1, 1x32 blocks)">
  ];
}

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
    writer) to the last launch that reads it. In place: when a launch has
    `in_place` inputs (its v4 op is `V4_InPlaceElementwise`) and one of them
    is an arena buffer of exactly outs[0]'s type whose last reader is this
    launch, outs[0] takes that buffer's bytes (the first such input wins;
    chains of in-place launches share one range). Then ranges are placed
    largest first, each at the best-fitting 64-byte aligned gap among the
    already placed ranges whose lifetimes overlap its own, so buffers that
    are never live together share bytes. Sets each alloc's `offset`, and the
    bucket's `arena_bytes` (the planned size), `naive_bytes` (one private
    range per alloc), `peak_live_bytes` (the most bytes live during one
    launch, an in-place pair counted once) and `written_in_place` (how many
    buffers took the bytes of an input).

    Before:
    ```mlir
    plan.bucket @prefill_4 attributes {batch = 1 : i64, kind = "prefill", tokens = 4 : i64} {
      %a = plan.alloc : !plan.buffer<4x8xf32>
      plan.launch "v4.embed"(...) -> (%a : !plan.buffer<4x8xf32>) {params = {}}
      %b = plan.alloc : !plan.buffer<4x8xf32>
      plan.launch "v4.linear"(%a, %w : ...) -> (%b : !plan.buffer<4x8xf32>) {params = {}}
      %c = plan.alloc : !plan.buffer<4x8xf32>
      plan.launch "v4.linear"(%b, %w : ...) -> (%c : !plan.buffer<4x8xf32>) {params = {}}
      %d = plan.alloc : !plan.buffer<4x8xf32>
      plan.launch "v4.rms_norm"(%c : ...) -> (%d : !plan.buffer<4x8xf32>)
          {in_place = array<i64: 0>, params = {...}}
      ...
    }
    ```
    After (%a is dead when %c is written, so they share offset 0; the norm
    writes %d over %c, its last reader; the linears have no `in_place`):
    ```mlir
    plan.bucket @prefill_4 attributes {arena_bytes = 256 : i64, batch = 1 : i64, kind = "prefill",
                                       naive_bytes = 512 : i64, peak_live_bytes = 256 : i64,
                                       tokens = 4 : i64, written_in_place = 1 : i64} {
      %a = plan.alloc offset 0 : !plan.buffer<4x8xf32>
      %b = plan.alloc offset 128 : !plan.buffer<4x8xf32>
      %c = plan.alloc offset 0 : !plan.buffer<4x8xf32>
      %d = plan.alloc offset 0 : !plan.buffer<4x8xf32>
      ...
    }
    ```
  }];
}

#endif // V4C_PASSES_TD
