// Operations of the `plan` dialect.
#ifndef V4C_PLAN_OPS_TD
#define V4C_PLAN_OPS_TD

include "PlanDialect.td"
include "PlanTypes.td"
include "mlir/IR/OpBase.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/IR/RegionKindInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

class Plan_Op<string mnemonic, list<Trait> traits = []> : Op<Plan_Dialect, mnemonic, traits>;

//===----------------------------------------------------------------------===//
// Module level
//===----------------------------------------------------------------------===//

def Plan_CacheSlotOp : Plan_Op<"cache_slot", [Symbol, HasParent<"::mlir::ModuleOp">]> {
  let summary = "the schema of one per-session cache";
  let description = [{
    Declares a cache every session owns; buckets refer to it with
    `plan.cache`. `kind` is `window` (a ring of `rows` rows), `compress_state`
    (`rows` = 2 x m) or `entries` (grows one row per `rate` tokens; `rows`
    is its capacity, 0 when unbounded). `element_type` is the row storage;
    an `f8E4M3FN` slot also has `rope_width`, its trailing bf16 channels
    (`!v4.cache<..., rope = r, f8E4M3FN>`).

    ```mlir
    plan.cache_slot @"layers.0.window" {kind = "window", layer = 0 : i64, rows = 8 : i64,
                                        width = 32 : i64, rate = 0 : i64, element_type = f32}
    plan.cache_slot @"layers.1.window" {kind = "window", layer = 1 : i64, rows = 8 : i64,
        width = 32 : i64, rate = 0 : i64, element_type = f8E4M3FN, rope_width = 4 : i64}
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, StrAttr:$kind, I64Attr:$layer, I64Attr:$rows,
                       I64Attr:$width, I64Attr:$rate, TypeAttr:$element_type,
                       OptionalAttr<I64Attr>:$rope_width);
  let assemblyFormat = "$sym_name attr-dict";
  let hasVerifier = 1;
}

def Plan_BucketOp : Plan_Op<"bucket", [Symbol, IsolatedFromAbove, HasParent<"::mlir::ModuleOp">,
                                       SingleBlockImplicitTerminator<"ReturnOp">]> {
  let summary = "one shape-specialised forward step";
  let description = [{
    A prefill chunk of `tokens` tokens of one session (`batch` = 1) or a decode
    step of `batch` sessions with one token each (`tokens` = `batch`). The body
    is the launch schedule in program order. `arena_bytes` (the planned arena)
    and `naive_bytes` (the sum of all allocations) are set by `v4-plan-memory`.

    ```mlir
    plan.bucket @prefill_64 attributes {kind = "prefill", tokens = 64 : i64, batch = 1 : i64} {
      %ids = plan.input "ids" : !plan.buffer<64xi32>
      %logits = plan.output "logits" : !plan.buffer<64x512xf32>
      %table = plan.weight @"model.embed_tokens.weight" : !plan.buffer<512x64xf32>
      ...
    }
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, StrAttr:$kind, I64Attr:$tokens, I64Attr:$batch,
                       OptionalAttr<I64Attr>:$arena_bytes, OptionalAttr<I64Attr>:$naive_bytes);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = "$sym_name attr-dict-with-keyword $body";
  let hasVerifier = 1;
  let skipDefaultBuilders = 1;
  let builders = [
    OpBuilder<(ins "::llvm::StringRef":$name, "::llvm::StringRef":$kind, "int64_t":$tokens,
                   "int64_t":$batch)>
  ];
  let extraClassDeclaration = [{
    ::mlir::Block &getBodyBlock() { return getBody().front(); }
  }];
}

def Plan_ReturnOp : Plan_Op<"return", [Pure, Terminator, HasParent<"BucketOp">]> {
  let summary = "ends a bucket";
  let description = [{
    Terminates the body of a `plan.bucket`; printed implicitly.

    ```mlir
    plan.return
    ```
  }];
  let assemblyFormat = "attr-dict";
}

//===----------------------------------------------------------------------===//
// Buffers inside a bucket
//===----------------------------------------------------------------------===//

def Plan_InputOp : Plan_Op<"input", [Pure, HasParent<"BucketOp">]> {
  let summary = "a per-step input of the bucket";
  let description = [{
    `"ids"` or `"positions"`: one i32 per token of the bucket.

    ```mlir
    %ids = plan.input "ids" : !plan.buffer<64xi32>
    ```
  }];
  let arguments = (ins StrAttr:$name);
  let results = (outs Plan_BufferType:$result);
  let assemblyFormat = "$name attr-dict `:` qualified(type($result))";
  let hasVerifier = 1;
}

def Plan_OutputOp : Plan_Op<"output", [HasParent<"BucketOp">]> {
  let summary = "a per-step output of the bucket";
  let description = [{
    `"logits"`: one row of vocabulary logits per token. A launch writes it.

    ```mlir
    %logits = plan.output "logits" : !plan.buffer<64x512xf32>
    ```
  }];
  let arguments = (ins StrAttr:$name);
  let results = (outs Plan_BufferType:$result);
  let assemblyFormat = "$name attr-dict `:` qualified(type($result))";
  let hasVerifier = 1;
}

def Plan_WeightOp : Plan_Op<"weight", [Pure, HasParent<"BucketOp">,
                                       DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "a read-only weight of the artifact";
  let description = [{
    Refers to a module-level weight declaration (`v4.global`); its shape and
    element type must match the declaration's `type`.

    ```mlir
    %w = plan.weight @"model.layers.0.attn.wq_a.weight" : !plan.buffer<32x64xf32>
    ```
  }];
  let arguments = (ins FlatSymbolRefAttr:$name);
  let results = (outs Plan_BufferType:$result);
  let assemblyFormat = "$name attr-dict `:` qualified(type($result))";
}

def Plan_CacheOp : Plan_Op<"cache", [Pure, HasParent<"BucketOp">,
                                     DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "the session's storage of a cache slot";
  let description = [{
    ```mlir
    %c = plan.cache @"layers.0.window" : !plan.cache
    ```
  }];
  let arguments = (ins FlatSymbolRefAttr:$slot);
  let results = (outs Plan_CacheType:$result);
  let assemblyFormat = "$slot attr-dict `:` qualified(type($result))";
}

def Plan_AllocOp : Plan_Op<"alloc", [HasParent<"BucketOp">]> {
  let summary = "an intermediate buffer in the bucket's arena";
  let description = [{
    `offset` (bytes from the arena start, a multiple of 64) is assigned by
    `v4-plan-memory`; the buffer must fit in the bucket's `arena_bytes`.

    ```mlir
    %a = plan.alloc : !plan.buffer<64x32xf32>
    %b = plan.alloc offset 8192 : !plan.buffer<64x32xf32>
    ```
  }];
  let arguments = (ins OptionalAttr<I64Attr>:$offset);
  let results = (outs Plan_BufferType:$result);
  let assemblyFormat = "(`offset` $offset^)? attr-dict `:` qualified(type($result))";
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    // Arena offsets are aligned so every kernel may use vector loads.
    static constexpr int64_t kAlignment = 64;
  }];
}

def Plan_LaunchOp : Plan_Op<"launch", [HasParent<"BucketOp">, AttrSizedOperandSegments]> {
  let summary = "runs one kernel";
  let description = [{
    Runs `kernel` (a v4 op name such as `"v4.linear"` for the CPU builtins, or
    a generated entry point) reading `ins` and writing `outs`. `params` are
    the kernel's compile-time parameters (the v4 op's attributes).
    `in_place` (optional, set by `v4-lower-to-plan` from the v4 op's
    `V4_InPlaceElementwise` trait) lists the `ins` that `outs[0]` may be
    written over: the kernel is correct when `outs[0]` occupies exactly that
    input's bytes. `v4-plan-memory` uses it only for an input of the same
    type whose last reader is this launch.

    ```mlir
    plan.launch "v4.linear"(%x, %w : !plan.buffer<64x64xf32>, !plan.buffer<32x64xf32>)
        -> (%y : !plan.buffer<64x32xf32>) {params = {}}
    plan.launch "v4.add"(%y, %z : !plan.buffer<64x32xf32>, !plan.buffer<64x32xf32>)
        -> (%s : !plan.buffer<64x32xf32>) {in_place = array<i64: 0, 1>, params = {}}
    ```
  }];
  let arguments = (ins StrAttr:$kernel, Variadic<Plan_AnyBuffer>:$ins, Variadic<Plan_AnyBuffer>:$outs,
                       DictionaryAttr:$params, OptionalAttr<DenseI64ArrayAttr>:$in_place);
  let assemblyFormat = [{
    $kernel `(` ($ins^ `:` type($ins))? `)` `->` `(` $outs `:` type($outs) `)` attr-dict
  }];
  let builders = [
    // A launch that may not write over any input.
    OpBuilder<(ins "::llvm::StringRef":$kernel, "::mlir::ValueRange":$ins, "::mlir::ValueRange":$outs,
                   "::mlir::DictionaryAttr":$params), [{
      build($_builder, $_state, kernel, ins, outs, params, ::mlir::DenseI64ArrayAttr());
    }]>
  ];
  let hasVerifier = 1;
}

#endif // V4C_PLAN_OPS_TD
