// The CPU reference kernels: the single definition of every v4 op's numerics
// (docs/ops.md). The CPU backend runs them, the tests check against them, and
// the CUDA kernels are verified against them. All activations are token-major
// f32 rows; `T` is the number of tokens actually present (not the bucket size).
#pragma once

#include <cstdint>

#include "runtime/cpu/CacheBuffer.h"
#include "runtime/cpu/ThreadPool.h"

namespace v4rt::ref {

// ---- dense ----------------------------------------------------------------
void embed(const int32_t *ids, int64_t T, const float *table, int64_t vocab, int64_t D, float *out);
void add(const float *a, const float *b, int64_t count, float *out);
// y[T, N] = x[T, K] w[N, K]^T
void linear(const float *x, int64_t T, int64_t K, const float *w, int64_t N, float *out,
            ThreadPool *pool);
// x [T, G*Kg], w [G*R, Kg] -> y [T, G*R]; group g uses rows [gR, (g+1)R) of w.
void groupedLinear(const float *x, int64_t T, int64_t groups, int64_t Kg, const float *w,
                   int64_t R, float *out, ThreadPool *pool);
// Each contiguous group of `group` channels: x * rsqrt(mean(x^2) + eps) [* w].
void rmsNorm(const float *x, int64_t T, int64_t C, int64_t group, const float *w, double eps,
             float *out);
// silu(min(g, L)) * clamp(u, -L, L)
void swiglu(const float *gate, const float *up, int64_t count, double limit, float *out);

// ---- rotary ---------------------------------------------------------------
struct RopeParams {
  int64_t headDim = 0;
  int64_t ropeDim = 0;          // rotated channels: the LAST ropeDim of each head
  const float *invFreq = nullptr; // ropeDim / 2 entries
  double scaling = 1.0;         // cos/sin multiplier
};
// Rotates one head vector in place at `position` (angle negated if inverse).
void ropeVector(float *v, int64_t position, const RopeParams &p, bool inverse);
void rope(const float *x, const int32_t *positions, int64_t T, int64_t C, const RopeParams &p,
          bool inverse, float *out);

// ---- mHC (manifold-constrained hyper-connections) ---------------------------
struct HyperParams {
  int64_t hc = 0;
  int64_t D = 0;
  double normEps = 1e-6;
  double hcEps = 1e-6;
  int64_t sinkhornIters = 1;
};
void hcExpand(const float *x, int64_t T, int64_t hc, int64_t D, float *out);
// collapsed [T, D] = sum_j pre_j X_j; post [T, hc]; comb [T, hc*hc] (row j, column c).
void hcPre(const float *X, int64_t T, const float *fn, const float *base, const float *scale,
           const HyperParams &p, float *collapsed, float *post, float *comb, ThreadPool *pool);
// X'_c = post_c * y + sum_j comb[j, c] X_j
void hcPost(const float *X, const float *y, const float *post, const float *comb, int64_t T,
            int64_t hc, int64_t D, float *out);
void hcHead(const float *X, int64_t T, const float *fn, const float *base, const float *scale,
            const HyperParams &p, float *out);

// ---- attention state ------------------------------------------------------
struct CompressParams {
  int64_t rate = 0;    // m: tokens per entry
  int64_t headDim = 0; // C: channels of an entry
  bool overlap = false; // CSA: entry w pools window w-1's first halves and window w's second halves
  RopeParams rope;      // applied at position w*m (rope.headDim == headDim)
  double eps = 1e-6;
};
// Feeds T tokens (consecutive positions) into the compressor. state: 2m rows of
// [kv | gate + position_bias] (rows [0,m) the last complete window, [m,2m) the
// pending one); each window completed here appends one row to `entries`.
void compress(const float *kv, const float *gate, int64_t T, const float *positionBias,
              const float *normWeight, const int32_t *positions, const CompressParams &p,
              CacheBuffer &state, CacheBuffer &entries);

struct IndexerParams {
  int64_t heads = 0;
  int64_t headDim = 0;
  int64_t topK = 0;
  int64_t rate = 0;
  double weightScale = 1.0;
  double scoreScale = 1.0;
};
// out [T, topK]: per token the visible entries (w < (p+1)/m) with the highest
// score (ties: lower index first), padded with -1.
void indexerTopK(const float *q, const float *weights, const int32_t *positions, int64_t T,
                 const CacheBuffer &keys, const IndexerParams &p, int32_t *out, ThreadPool *pool);

struct AttentionParams {
  int64_t numHeads = 0;
  int64_t headDim = 0;
  int64_t window = 0; // W
  int64_t rate = 0;   // 0: sliding only
  double scale = 1.0;
  int64_t topKWidth = 0; // columns of `topk` when given
};
// Window candidates p-W+1..p come from `windowCache` (positions before this
// chunk, ring slot pos % W) and from `kv` (this chunk, rounded to the window's
// storage format as cacheAppend will store it). Every cache row is stored
// through storeCacheRow (CacheStorage.h): bf16/fp8 slots hold rounded rows.
void attention(const float *q, const float *kv, const float *sinks, const int32_t *positions,
               int64_t T, const CacheBuffer &windowCache, const CacheBuffer *entries,
               const int32_t *topk, const AttentionParams &p, float *out, ThreadPool *pool);
void cacheAppend(CacheBuffer &windowCache, const float *kv, const int32_t *positions, int64_t T);

// ---- mixture of experts ---------------------------------------------------
struct RouterParams {
  int64_t experts = 0;
  int64_t topK = 0;
  double routedScaling = 1.0;
};
// scores = sqrt(softplus(gate h)); selection by top-k of scores + bias.
void router(const float *h, int64_t T, int64_t D, const float *gate, const float *bias,
            const RouterParams &p, float *weights, int32_t *experts);
void hashRouter(const float *h, int64_t T, int64_t D, const float *gate, const int32_t *tid2eid,
                int64_t vocab, const int32_t *ids, const RouterParams &p, float *weights,
                int32_t *experts);
struct MoeParams {
  int64_t experts = 0;
  int64_t topK = 0;
  int64_t D = 0;
  int64_t I = 0;
  double swigluLimit = 0.0;
};
void moe(const float *h, int64_t T, const float *weights, const int32_t *experts,
         const float *gateUp, const float *down, const MoeParams &p, float *out, ThreadPool *pool);

} // namespace v4rt::ref
