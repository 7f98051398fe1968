//===- V4Ops.td - ops of the v4 dialect --------------------*- tablegen -*-===//
//
// One op per row of docs/ops.md, with exactly its operand order, results and
// attribute names. Every op prints as
//   v4.op %a, %b {attrs} : (operand types) -> result types
// and is pure: decode state flows through !v4.cache values.
//
//===----------------------------------------------------------------------===//

#ifndef V4_OPS_TD
#define V4_OPS_TD

include "dialects/v4/V4Dialect.td"
include "dialects/v4/V4Types.td"
include "dialects/v4/V4Attrs.td"
include "dialects/v4/V4Traits.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

//===----------------------------------------------------------------------===//
// Type constraints
//===----------------------------------------------------------------------===//

// Token-major activation [T, C].
def V4_Activation : TensorRankOf<[F32, BF16], [2]>;
// Per-token integers: ids, positions.
def V4_IndexVector : TensorRankOf<[I32], [1]>;
// Integer matrices: expert ids, top-k indices, hash tables.
def V4_IndexMatrix : TensorRankOf<[I32], [2]>;
// Router weights are always f32.
def V4_F32Matrix : TensorRankOf<[F32], [2]>;

// A weight of the given rank: f32/bf16, or any element type when the tensor
// carries a #v4.quant encoding (its shape stays logical).
class V4_Weight<int rank> : Type<
    CPred<"::v4c::v4::isWeightTensor($_self, " # rank # ")">,
    rank # "-D weight tensor (f32 or bf16, or quantized with a #v4.quant encoding)",
    "::mlir::RankedTensorType">;

class V4_PureOp<string mnemonic, list<Trait> traits = []>
    : V4_Op<mnemonic, !listconcat([Pure], traits)> {
  let hasVerifier = 1;
  let assemblyFormat = [{
    operands attr-dict `:` functional-type(operands, results)
  }];
}

//===----------------------------------------------------------------------===//
// Weights
//===----------------------------------------------------------------------===//

def V4_GlobalOp : V4_Op<"global", [Symbol]> {
  let summary = "declares one weight of the checkpoint";
  let description = [{
    Module-level declaration of a checkpoint tensor, named by its checkpoint
    name. `v4.weight` ops refer to it by symbol. The type is a ranked tensor
    of f32, bf16 or i32 (hash tables), or a quantized tensor with a
    `#v4.quant` encoding.

    ```mlir
    v4.global @"model.layers.0.attn.wq_a.weight" : tensor<32x64xf32>
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, TypeAttrOf<AnyRankedTensor>:$type);
  let assemblyFormat = "$sym_name attr-dict `:` $type";
  let hasVerifier = 1;
}

def V4_WeightOp : V4_Op<"weight",
    [Pure, DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "the value of a weight declared by v4.global";
  let description = [{
    Reads the weight `name`; its type must equal the type of the `v4.global`
    it refers to.

    ```mlir
    %w = v4.weight @"model.layers.0.attn.wq_a.weight" : tensor<32x64xf32>
    ```
  }];
  let arguments = (ins FlatSymbolRefAttr:$name);
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$name attr-dict `:` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Embedding and mHC (hyper-connections)
//===----------------------------------------------------------------------===//

def V4_EmbedOp : V4_PureOp<"embed"> {
  let summary = "row lookup of token ids in an embedding table";
  let description = [{
    `result[t] = table[ids[t]]`: `ids [T] i32`, `table [V, D]` -> `[T, D]`.

    ```mlir
    %x = v4.embed %ids, %table : (tensor<?xi32>, tensor<1000x64xf32>) -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins V4_IndexVector:$ids, V4_Weight<2>:$table);
  let results = (outs V4_Activation:$result);
}

def V4_HcExpandOp : V4_PureOp<"hc_expand"> {
  let summary = "stacks hc copies of the residual";
  let description = [{
    `x [T, D]` -> `[T, hc*D]`: stream c holds channels `[c*D, (c+1)*D)`, all
    equal to x.

    ```mlir
    %X = v4.hc_expand %x {hc = 4 : i64} : (tensor<?x64xf32>) -> tensor<?x256xf32>
    ```
  }];
  let arguments = (ins V4_Activation:$x, I64Attr:$hc);
  let results = (outs V4_Activation:$result);
}

def V4_HcPreOp : V4_PureOp<"hc_pre"> {
  let summary = "mHC site entry: pre/post/comb mixing weights and the collapsed input";
  let description = [{
    Operands `X [T, hc*D]`, `fn [(2+hc)*hc, hc*D]`, `base [(2+hc)*hc]`,
    `scale [3]`; results `collapsed [T, D]`, `post [T, hc]`,
    `comb [T, hc*hc]`. With `f = rms(X)` (over all hc*D values, eps =
    `norm_eps`) and `mix = fn f`: `pre = sigmoid(mix_pre*scale0 + base_pre) +
    hc_eps`, `post = 2*sigmoid(mix_post*scale1 + base_post)`, `comb` =
    row-softmax of `mix_comb*scale2 + base_comb` plus `hc_eps`, divided by
    its column sums (+ hc_eps), then `sinkhorn_iters - 1` rounds of row and
    column normalization (V4-MODEL.md step 2); `comb[j*hc + c]` = C[j, c].
    `collapsed = sum_j pre_j X_j` (not normed).

    ```mlir
    %c, %post, %comb = v4.hc_pre %X, %fn, %base, %scale
        {hc = 4 : i64, hc_eps = 1.0e-06 : f64, norm_eps = 1.0e-06 : f64, sinkhorn_iters = 20 : i64}
        : (tensor<?x256xf32>, tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
        -> (tensor<?x64xf32>, tensor<?x4xf32>, tensor<?x16xf32>)
    ```
  }];
  let arguments = (ins V4_Activation:$X, V4_Weight<2>:$fn, V4_Weight<1>:$base,
                       V4_Weight<1>:$scale, I64Attr:$hc, F64Attr:$norm_eps,
                       F64Attr:$hc_eps, I64Attr:$sinkhorn_iters);
  let results = (outs V4_Activation:$collapsed, V4_Activation:$post,
                      V4_Activation:$comb);
}

def V4_HcPostOp : V4_PureOp<"hc_post"> {
  let summary = "mHC site exit: writes the sublayer output back into the streams";
  let description = [{
    `X'_c = post_c * y + sum_j comb[j*hc + c] * X_j` for `X [T, hc*D]`,
    `y [T, D]`, `post [T, hc]`, `comb [T, hc*hc]` -> `[T, hc*D]`.

    ```mlir
    %X2 = v4.hc_post %X, %y, %post, %comb {hc = 4 : i64}
        : (tensor<?x256xf32>, tensor<?x64xf32>, tensor<?x4xf32>, tensor<?x16xf32>) -> tensor<?x256xf32>
    ```
  }];
  let arguments = (ins V4_Activation:$X, V4_Activation:$y, V4_Activation:$post,
                       V4_Activation:$comb, I64Attr:$hc);
  let results = (outs V4_Activation:$result);
}

def V4_HcHeadOp : V4_PureOp<"hc_head"> {
  let summary = "final mHC collapse of the streams before the head";
  let description = [{
    `X [T, hc*D]`, `fn [hc, hc*D]`, `base [hc]`, `scale [1]` -> `[T, D]`:
    `pre = sigmoid((fn rms(X))*scale + base) + hc_eps`, result
    `sum_j pre_j X_j` (not normed).

    ```mlir
    %h = v4.hc_head %X, %fn, %base, %scale {hc = 4 : i64, hc_eps = 1.0e-06 : f64, norm_eps = 1.0e-06 : f64}
        : (tensor<?x256xf32>, tensor<4x256xf32>, tensor<4xf32>, tensor<1xf32>) -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins V4_Activation:$X, V4_Weight<2>:$fn, V4_Weight<1>:$base,
                       V4_Weight<1>:$scale, I64Attr:$hc, F64Attr:$norm_eps,
                       F64Attr:$hc_eps);
  let results = (outs V4_Activation:$result);
}

//===----------------------------------------------------------------------===//
// Norm and projections
//===----------------------------------------------------------------------===//

def V4_RmsNormOp : V4_Op<"rms_norm", [Pure, V4_InPlaceElementwise]> {
  // One optional operand needs no operandSegmentSizes: w is present iff the
  // op has two operands (ODS allows the segments trait only for two or more).
  let summary = "RMS norm over contiguous channel groups, optionally weighted";
  let description = [{
    `x [T, C]`, optional `w [G]` -> `[T, C]`. Each contiguous group of
    `group` (G, C % G == 0) channels becomes `x * rsqrt(mean(x^2) + eps)`,
    times `w` when present (per-head norms use G = head_dim).

    ```mlir
    %n = v4.rms_norm %x, %w {eps = 1.0e-06 : f64, group = 64 : i64}
        : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    %q = v4.rms_norm %x {eps = 1.0e-06 : f64, group = 16 : i64}
        : (tensor<?x64xf32>) -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins V4_Activation:$x, Optional<V4_Weight<1>>:$w,
                       I64Attr:$group, F64Attr:$eps);
  let results = (outs V4_Activation:$result);
  let assemblyFormat = [{
    $x (`,` $w^)? attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def V4_LinearOp : V4_PureOp<"linear"> {
  let summary = "matrix product with a transposed weight";
  let description = [{
    `y = x w^T` for `x [T, K]`, `w [N, K]` -> `[T, N]`.

    ```mlir
    %y = v4.linear %x, %w : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
    ```
  }];
  let arguments = (ins V4_Activation:$x, V4_Weight<2>:$w);
  let results = (outs V4_Activation:$result);
}

def V4_GroupedLinearOp : V4_PureOp<"grouped_linear"> {
  let summary = "block-diagonal matrix product (grouped output projection)";
  let description = [{
    `x [T, G*Kg]`, `w [G*R, Kg]` -> `[T, G*R]` with G = `groups`; group g
    computes `y[:, gR:(g+1)R] = x[:, gKg:(g+1)Kg] w[gR:(g+1)R]^T`.

    ```mlir
    %y = v4.grouped_linear %o, %w {groups = 2 : i64}
        : (tensor<?x128xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
    ```
  }];
  let arguments = (ins V4_Activation:$x, V4_Weight<2>:$w, I64Attr:$groups);
  let results = (outs V4_Activation:$result);
}

def V4_RopeOp : V4_PureOp<"rope", [V4_InPlaceElementwise]> {
  let summary = "rotary embedding of the last rope_dim channels of each head";
  let description = [{
    `x [T, H*hd]`, `positions [T] i32` -> `[T, H*hd]`. Per head of
    `head_dim` channels, the LAST `rope_dim` channels form interleaved pairs
    `(2i, 2i+1)` rotated by `pos * inv_freq[i]` (angle negated when
    `inverse`); cos and sin are multiplied by `scaling`. The first
    `head_dim - rope_dim` channels pass through.

    ```mlir
    %r = v4.rope %x, %pos {head_dim = 32 : i64, inv_freq = array<f32: 1.0, 0.1>,
                           inverse = false, rope_dim = 4 : i64, scaling = 1.0 : f64}
        : (tensor<?x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins V4_Activation:$x, V4_IndexVector:$positions,
                       I64Attr:$head_dim, I64Attr:$rope_dim,
                       DenseF32ArrayAttr:$inv_freq, F64Attr:$scaling,
                       BoolAttr:$inverse);
  let results = (outs V4_Activation:$result);
}

//===----------------------------------------------------------------------===//
// Attention: compressor, indexer, attention, window cache
//===----------------------------------------------------------------------===//

def V4_CompressOp : V4_PureOp<"compress"> {
  let summary = "compressor: appends one entry per window completed in this chunk";
  let description = [{
    Operands `kv [T, Cin]`, `gate [T, Cin]`, `position_bias [m, Cin]`,
    `norm_w [C]`, `positions [T] i32`, `state !v4.cache<compress_state>`
    (rows = 2m, width = 2*Cin), `entries !v4.cache<entries>` (width = C,
    rate = m); results the updated `state` and `entries`. `overlap` selects
    CSA (Cin = 2C, an entry pools the a-halves of the previous window and the
    b-halves of its own) or HCA (Cin = C). Each window completed in this chunk
    appends `rope(rmsw(pool; norm_w), w*m)` (V4-MODEL.md "Compressor").

    ```mlir
    %s2, %e2 = v4.compress %kv, %gate, %ape, %norm, %pos, %s, %e
        {eps = 1.0e-06 : f64, head_dim = 32 : i64, inv_freq = array<f32: 1.0, 0.1>,
         overlap = true, rate = 4 : i64, rope_dim = 4 : i64, scaling = 1.0 : f64}
        : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<4x64xf32>, tensor<32xf32>, tensor<?xi32>,
           !v4.cache<compress_state, rows = 8, width = 128, f32>,
           !v4.cache<entries, width = 32, rate = 4, f32>)
        -> (!v4.cache<compress_state, rows = 8, width = 128, f32>,
            !v4.cache<entries, width = 32, rate = 4, f32>)
    ```
  }];
  let arguments = (ins V4_Activation:$kv, V4_Activation:$gate,
                       V4_Weight<2>:$position_bias, V4_Weight<1>:$norm_w,
                       V4_IndexVector:$positions, V4_CompressStateCache:$state,
                       V4_EntriesCache:$entries,
                       I64Attr:$rate, I64Attr:$head_dim, BoolAttr:$overlap,
                       I64Attr:$rope_dim, DenseF32ArrayAttr:$inv_freq,
                       F64Attr:$scaling, F64Attr:$eps);
  let results = (outs V4_CompressStateCache:$new_state,
                      V4_EntriesCache:$new_entries);
}

def V4_IndexerTopkOp : V4_PureOp<"indexer_topk"> {
  let summary = "lightning indexer: top-k compressed entries per token";
  let description = [{
    `q [T, nI*dI]`, `weights [T, nI]`, `positions [T] i32`,
    `keys !v4.cache<entries>` -> `[T, K] i32`.
    `score(p, w) = sum_h weights[h]*weight_scale * relu(q_h . k_w) * score_scale`
    over visible entries `w < (p+1)/m`; the `top_k` best (ties: lower w),
    padded with -1.

    ```mlir
    %idx = v4.indexer_topk %qi, %wi, %pos, %keys
        {head_dim = 16 : i64, heads = 2 : i64, rate = 4 : i64, score_scale = 0.25 : f64,
         top_k = 8 : i64, weight_scale = 0.7071 : f64}
        : (tensor<?x32xf32>, tensor<?x2xf32>, tensor<?xi32>, !v4.cache<entries, width = 16, rate = 4, f32>)
        -> tensor<?x8xi32>
    ```
  }];
  let arguments = (ins V4_Activation:$q, V4_Activation:$weights,
                       V4_IndexVector:$positions, V4_EntriesCache:$keys,
                       I64Attr:$heads, I64Attr:$head_dim, I64Attr:$top_k,
                       I64Attr:$rate, F64Attr:$weight_scale, F64Attr:$score_scale);
  let results = (outs V4_IndexMatrix:$result);
}

def V4_AttentionOp : V4_Op<"attention", [Pure, AttrSizedOperandSegments]> {
  let summary = "attention over the sliding window and compressed entries, with sinks";
  let description = [{
    `q [T, nh*hd]`, `kv [T, hd]` (key = value), `sinks [nh]`,
    `positions [T] i32`, the window cache (`window_cache`,
    `!v4.cache<window>` with W rows of width hd), optional
    `entries !v4.cache<entries>` (present iff `rate` > 0) and optional
    `topk [T, K] i32` (CSA: only those entries) -> `[T, nh*hd]`.
    Candidates for position p: window positions p-W+1..p (older ones from the
    cache, this chunk's from `kv`) plus visible entries; per-head softmax of
    `scale * q.k` with one extra sink logit that takes mass but adds no value.

    ```mlir
    %o = v4.attention %q, %kv, %sinks, %pos, %win entries %e topk %idx
        {head_dim = 32 : i64, num_heads = 2 : i64, rate = 4 : i64, scale = 0.1767 : f64, window = 8 : i64}
        : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<2xf32>, tensor<?xi32>,
           !v4.cache<window, rows = 8, width = 32, f32>,
           !v4.cache<entries, width = 32, rate = 4, f32>, tensor<?x8xi32>) -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins V4_Activation:$q, V4_Activation:$kv, V4_Weight<1>:$sinks,
                       V4_IndexVector:$positions, V4_WindowCache:$window_cache,
                       Optional<V4_EntriesCache>:$entries,
                       Optional<V4_IndexMatrix>:$topk,
                       I64Attr:$num_heads, I64Attr:$head_dim, I64Attr:$window,
                       I64Attr:$rate, F64Attr:$scale);
  let results = (outs V4_Activation:$result);
  let assemblyFormat = [{
    $q `,` $kv `,` $sinks `,` $positions `,` $window_cache
    (`entries` $entries^)? (`topk` $topk^)?
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def V4_CacheAppendOp : V4_PureOp<"cache_append"> {
  let summary = "stores this chunk's kv rows into the sliding-window ring";
  let description = [{
    `window !v4.cache<window>`, `kv [T, hd]`, `positions [T] i32` -> the
    updated window: row `pos mod W` holds the kv of position pos.

    ```mlir
    %win2 = v4.cache_append %win, %kv, %pos
        : (!v4.cache<window, rows = 8, width = 32, f32>, tensor<?x32xf32>, tensor<?xi32>)
        -> !v4.cache<window, rows = 8, width = 32, f32>
    ```
  }];
  let arguments = (ins V4_WindowCache:$window, V4_Activation:$kv,
                       V4_IndexVector:$positions);
  let results = (outs V4_WindowCache:$new_window);
}

//===----------------------------------------------------------------------===//
// Mixture of experts
//===----------------------------------------------------------------------===//

def V4_RouterOp : V4_PureOp<"router"> {
  let summary = "score-based expert routing (sqrt-softplus scores, biased top-k)";
  let description = [{
    `h [T, D]`, `gate [E, D]`, `bias [E]` -> `weights [T, k] f32`,
    `experts [T, k] i32` with k = `top_k`. `s = sqrt(softplus(gate h))`;
    experts = top-k of `s + bias` (ties: lower e);
    `w = s[e] / (sum s[e] + 1e-20) * routed_scaling`.

    ```mlir
    %w, %ex = v4.router %h, %gate, %bias {routed_scaling = 1.5 : f64, top_k = 2 : i64}
        : (tensor<?x64xf32>, tensor<8x64xf32>, tensor<8xf32>) -> (tensor<?x2xf32>, tensor<?x2xi32>)
    ```
  }];
  let arguments = (ins V4_Activation:$h, V4_Weight<2>:$gate, V4_Weight<1>:$bias,
                       I64Attr:$top_k, F64Attr:$routed_scaling);
  let results = (outs V4_F32Matrix:$weights, V4_IndexMatrix:$experts);
}

def V4_HashRouterOp : V4_PureOp<"hash_router"> {
  let summary = "expert routing by a frozen token-id table";
  let description = [{
    `h [T, D]`, `gate [E, D]`, `tid2eid [V, k] i32`, `ids [T] i32` ->
    `weights [T, k] f32`, `experts [T, k] i32`: experts = `tid2eid[id]`,
    weights as in `v4.router`.

    ```mlir
    %w, %ex = v4.hash_router %h, %gate, %tid2eid, %ids {routed_scaling = 1.5 : f64}
        : (tensor<?x64xf32>, tensor<8x64xf32>, tensor<1000x2xi32>, tensor<?xi32>)
        -> (tensor<?x2xf32>, tensor<?x2xi32>)
    ```
  }];
  let arguments = (ins V4_Activation:$h, V4_Weight<2>:$gate,
                       V4_IndexMatrix:$tid2eid, V4_IndexVector:$ids,
                       F64Attr:$routed_scaling);
  let results = (outs V4_F32Matrix:$weights, V4_IndexMatrix:$experts);
}

def V4_MoeOp : V4_PureOp<"moe"> {
  let summary = "weighted sum of the selected experts' clamped SwiGLU MLPs";
  let description = [{
    `h [T, D]`, `weights [T, k]`, `experts [T, k] i32`,
    `gate_up [E, 2I, D]`, `down [E, D, I]` -> `[T, D]`:
    `sum_e w_e * down_e (silu(min(g, L)) * clamp(u, -L, L))` with
    `[g; u] = gate_up_e h` (g first) and L = `swiglu_limit`.

    ```mlir
    %m = v4.moe %h, %w, %ex, %gate_up, %down {swiglu_limit = 10.0 : f64}
        : (tensor<?x64xf32>, tensor<?x2xf32>, tensor<?x2xi32>, tensor<8x96x64xf32>, tensor<8x64x48xf32>)
        -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins V4_Activation:$h, V4_Activation:$weights,
                       V4_IndexMatrix:$experts, V4_Weight<3>:$gate_up,
                       V4_Weight<3>:$down, F64Attr:$swiglu_limit);
  let results = (outs V4_Activation:$result);
}

def V4_SwigluOp : V4_PureOp<"swiglu", [V4_InPlaceElementwise]> {
  let summary = "clamped SwiGLU activation";
  let description = [{
    `gate [T, I]`, `up [T, I]` -> `silu(min(g, L)) * clamp(u, -L, L)` with
    L = `limit`.

    ```mlir
    %a = v4.swiglu %g, %u {limit = 10.0 : f64} : (tensor<?x48xf32>, tensor<?x48xf32>) -> tensor<?x48xf32>
    ```
  }];
  let arguments = (ins V4_Activation:$gate, V4_Activation:$up, F64Attr:$limit);
  let results = (outs V4_Activation:$result);
}

def V4_AddOp : V4_PureOp<"add", [V4_InPlaceElementwise]> {
  let summary = "elementwise sum";
  let description = [{
    `a [T, C]`, `b [T, C]` -> `a + b`.

    ```mlir
    %s = v4.add %a, %b : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins V4_Activation:$a, V4_Activation:$b);
  let results = (outs V4_Activation:$result);
}

// Fused ops made by the v4-fuse-* passes.
include "dialects/v4/V4FusedOps.td"
// Ops on block-quantized weights made by v4-quantize.
include "dialects/v4/V4QuantOps.td"

#endif // V4_OPS_TD
