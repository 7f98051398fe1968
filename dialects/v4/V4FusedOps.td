//===- V4FusedOps.td - fused ops made by the v4-fuse passes -*- tablegen -*-===//
//
// Each fused op is exactly the composition of the v4 ops it replaces (same
// numerics, same attributes), run as one kernel. The CPU kernels compose the
// reference functions of runtime/cpu/ReferenceKernels.h; a CUDA backend
// generates each as one kernel. Included from V4Ops.td.
//
//===----------------------------------------------------------------------===//

#ifndef V4_FUSED_OPS_TD
#define V4_FUSED_OPS_TD

def V4_NormLinearOp : V4_Op<"norm_linear", [Pure, AttrSizedOperandSegments]> {
  let summary = "RMS norm in the prologue of one or more linears of the normed input";
  let description = [{
    `x [T, K]`, optional `norm_w [G]`, weights `w_i [N_i, K]` -> results
    `y_i [T, N_i]` with `y_i = v4.linear(v4.rms_norm(x, norm_w), w_i)`;
    `group` and `eps` are those of the `v4.rms_norm`. The normed rows are
    computed once and feed every weight (made by `v4-fuse-norm-linear`).

    ```mlir
    %q, %kv = v4.norm_linear %h norm %nw weights %wq, %wkv {eps = 1.0e-06 : f64, group = 64 : i64}
        : (tensor<?x64xf32>, tensor<64xf32>, tensor<32x64xf32>, tensor<16x64xf32>)
        -> (tensor<?x32xf32>, tensor<?x16xf32>)
    ```
  }];
  let arguments = (ins V4_Activation:$x, Optional<V4_Weight<1>>:$norm_w,
                       Variadic<V4_Weight<2>>:$weights, I64Attr:$group, F64Attr:$eps);
  let results = (outs Variadic<V4_Activation>:$results);
  let assemblyFormat = [{
    $x (`norm` $norm_w^)? `weights` $weights attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def V4_LinearSwigluOp : V4_PureOp<"linear_swiglu"> {
  let summary = "gate and up projections with the clamped SwiGLU in their epilogue";
  let description = [{
    `h [T, D]`, `gate_w [I, D]`, `up_w [I, D]` -> `[T, I]`:
    `v4.swiglu(v4.linear(h, gate_w), v4.linear(h, up_w))` with the swiglu's
    `limit` (made by `v4-fuse-swiglu`).

    ```mlir
    %a = v4.linear_swiglu %h, %wg, %wu {limit = 10.0 : f64}
        : (tensor<?x64xf32>, tensor<48x64xf32>, tensor<48x64xf32>) -> tensor<?x48xf32>
    ```
  }];
  let arguments = (ins V4_Activation:$h, V4_Weight<2>:$gate_w, V4_Weight<2>:$up_w,
                       F64Attr:$limit);
  let results = (outs V4_Activation:$result);
}

def V4_HcPostPreOp : V4_PureOp<"hc_post_pre"> {
  let summary = "mHC: one site's exit followed by the next site's entry";
  let description = [{
    Operands `X [T, hc*D]`, `y [T, D]`, `post [T, hc]`, `comb [T, hc*hc]`
    (of `v4.hc_post`), then `fn`, `base`, `scale` (of the next `v4.hc_pre`);
    results `new_streams = v4.hc_post(X, y, post, comb)` and `collapsed`,
    `new_post`, `new_comb` = `v4.hc_pre(new_streams, fn, base, scale)`. Attributes
    are the hc_pre's (`hc` is shared). Made by `v4-fuse-hc`.

    ```mlir
    %X2, %c, %p2, %m2 = v4.hc_post_pre %X, %y, %post, %comb, %fn, %base, %scale
        {hc = 4 : i64, hc_eps = 1.0e-06 : f64, norm_eps = 1.0e-06 : f64, sinkhorn_iters = 20 : i64}
        : (tensor<?x256xf32>, tensor<?x64xf32>, tensor<?x4xf32>, tensor<?x16xf32>,
           tensor<24x256xf32>, tensor<24xf32>, tensor<3xf32>)
        -> (tensor<?x256xf32>, tensor<?x64xf32>, tensor<?x4xf32>, tensor<?x16xf32>)
    ```
  }];
  let arguments = (ins V4_Activation:$X, V4_Activation:$y, V4_Activation:$post,
                       V4_Activation:$comb, V4_Weight<2>:$fn, V4_Weight<1>:$base,
                       V4_Weight<1>:$scale, I64Attr:$hc, F64Attr:$norm_eps,
                       F64Attr:$hc_eps, I64Attr:$sinkhorn_iters);
  let results = (outs V4_Activation:$new_streams, V4_Activation:$collapsed,
                      V4_Activation:$new_post, V4_Activation:$new_comb);
}

def V4_RopeCacheAppendOp : V4_PureOp<"rope_cache_append", [V4_InPlaceElementwise]> {
  let summary = "rotary embedding of kv and its store into the window ring";
  let description = [{
    `window !v4.cache<window>`, `kv [T, hd]`, `positions [T] i32` ->
    `roped [T, hd]` = `v4.rope(kv, positions)` (the rope attributes, one
    head: `head_dim` = hd) and `new_window` =
    `v4.cache_append(window, roped, positions)`. Made by
    `v4-fuse-rope-append` for single-token chunks only, where storing before
    attention reads the window cannot overwrite a row it still needs.

    ```mlir
    %k, %win2 = v4.rope_cache_append %win, %kv, %pos
        {head_dim = 32 : i64, inv_freq = array<f32: 1.0, 0.1>, inverse = false,
         rope_dim = 4 : i64, scaling = 1.0 : f64}
        : (!v4.cache<window, rows = 8, width = 32, f32>, tensor<1x32xf32>, tensor<1xi32>)
        -> (tensor<1x32xf32>, !v4.cache<window, rows = 8, width = 32, f32>)
    ```
  }];
  let arguments = (ins V4_WindowCache:$window, V4_Activation:$kv,
                       V4_IndexVector:$positions, I64Attr:$head_dim, I64Attr:$rope_dim,
                       DenseF32ArrayAttr:$inv_freq, F64Attr:$scaling, BoolAttr:$inverse);
  let results = (outs V4_Activation:$roped, V4_WindowCache:$new_window);
}

def V4_LinearCompressOp : V4_PureOp<"linear_compress"> {
  let summary = "compressor with its kv and gate projections in the prologue";
  let description = [{
    `v4.compress(v4.linear(h, kv_w), v4.linear(h, gate_w), position_bias,
    norm_w, positions, state, entries)` for `h [T, D]`, `kv_w [Cin, D]`,
    `gate_w [Cin, D]`: projection, pooling, norm and rope in one kernel,
    with the compress attributes. Made by `v4-fuse-compress`.

    ```mlir
    %s2, %e2 = v4.linear_compress %h, %wkv, %wgate, %ape, %norm, %pos, %s, %e
        {eps = 1.0e-06 : f64, head_dim = 32 : i64, inv_freq = array<f32: 1.0, 0.1>,
         overlap = true, rate = 4 : i64, rope_dim = 4 : i64, scaling = 1.0 : f64}
        : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<4x64xf32>,
           tensor<32xf32>, tensor<?xi32>,
           !v4.cache<compress_state, rows = 8, width = 128, f32>,
           !v4.cache<entries, width = 32, rate = 4, f32>)
        -> (!v4.cache<compress_state, rows = 8, width = 128, f32>,
            !v4.cache<entries, width = 32, rate = 4, f32>)
    ```
  }];
  let arguments = (ins V4_Activation:$h, V4_Weight<2>:$kv_w, V4_Weight<2>:$gate_w,
                       V4_Weight<2>:$position_bias, V4_Weight<1>:$norm_w,
                       V4_IndexVector:$positions, V4_CompressStateCache:$state,
                       V4_EntriesCache:$entries,
                       I64Attr:$rate, I64Attr:$head_dim, BoolAttr:$overlap,
                       I64Attr:$rope_dim, DenseF32ArrayAttr:$inv_freq,
                       F64Attr:$scaling, F64Attr:$eps);
  let results = (outs V4_CompressStateCache:$new_state,
                      V4_EntriesCache:$new_entries);
}

#endif // V4_FUSED_OPS_TD
