// CPU kernels of the fused v4 ops (dialects/v4/V4FusedOps.td). Each runs as
// one launch but is exactly the composition of the reference functions of the
// ops it replaces, so fused and unfused programs give bit-identical results;
// the intermediates live in per-thread scratch instead of arena buffers.
#include <vector>

#include "runtime/cpu/CpuKernels.h"
#include "runtime/cpu/ReferenceKernels.h"

namespace v4rt {
namespace {

// Scratch rows reused across launches of this thread (kernels run one at a
// time per session; the pool threads never touch these).
float *scratch(std::vector<float> &buffer, int64_t count) {
  if (static_cast<int64_t>(buffer.size()) < count)
    buffer.resize(static_cast<size_t>(count));
  return buffer.data();
}

// v4.norm_linear: x, optional norm_w, weights... -> one result per weight.
void normLinearKernel(const KernelArgs &a) {
  thread_local std::vector<float> normedRows;
  const int64_t K = a.inDim(0, 1);
  float *normed = scratch(normedRows, a.tokens * K);
  ref::rmsNorm(a.in<float>(0), a.tokens, K, a.attrInt("group"), a.in<float>(1),
               a.attrFloat("eps"), normed);
  const int64_t firstWeight = a.operandIndex(2);
  for (size_t i = 0; i < a.outs.size(); ++i) {
    const int64_t N = a.step().ins.at(firstWeight + i).shape.at(0);
    ref::linear(normed, a.tokens, K, static_cast<const float *>(a.ins.at(firstWeight + i)), N,
                a.out<float>(i), a.pool);
  }
}

// v4.linear_swiglu: h, gate_w, up_w -> swiglu(h gate_w^T, h up_w^T).
void linearSwigluKernel(const KernelArgs &a) {
  thread_local std::vector<float> gateRows, upRows;
  const int64_t D = a.inDim(0, 1), I = a.inDim(1, 0);
  float *gate = scratch(gateRows, a.tokens * I);
  float *up = scratch(upRows, a.tokens * I);
  ref::linear(a.in<float>(0), a.tokens, D, a.in<float>(1), I, gate, a.pool);
  ref::linear(a.in<float>(0), a.tokens, D, a.in<float>(2), I, up, a.pool);
  ref::swiglu(gate, up, a.tokens * I, a.attrFloat("limit"), a.out<float>(0));
}

// v4.hc_post_pre: the new streams are a result anyway, so hc_pre reads them
// straight from that output.
void hcPostPreKernel(const KernelArgs &a) {
  const int64_t hc = a.attrInt("hc"), D = a.inDim(1, 1);
  float *streams = a.out<float>(0);
  ref::hcPost(a.in<float>(0), a.in<float>(1), a.in<float>(2), a.in<float>(3), a.tokens, hc, D,
              streams);
  ref::HyperParams p = hyperParams(a, D);
  p.sinkhornIters = a.attrInt("sinkhorn_iters");
  ref::hcPre(streams, a.tokens, a.in<float>(4), a.in<float>(5), a.in<float>(6), p,
             a.out<float>(1), a.out<float>(2), a.out<float>(3), a.pool);
}

// v4.rope_cache_append: window, kv, positions -> roped kv, window (in place).
void ropeCacheAppendKernel(const KernelArgs &a) {
  float *roped = a.out<float>(0);
  ref::rope(a.in<float>(1), a.in<int32_t>(2), a.tokens, a.inDim(1, 1), ropeParams(a),
            a.attrBool("inverse"), roped);
  ref::cacheAppend(*a.in<CacheBuffer>(0), roped, a.in<int32_t>(2), a.tokens);
}

// v4.linear_compress: h, kv_w, gate_w, position_bias, norm_w, positions, state, entries.
void linearCompressKernel(const KernelArgs &a) {
  thread_local std::vector<float> kvRows, gateRows;
  const int64_t D = a.inDim(0, 1), Cin = a.inDim(1, 0);
  float *kv = scratch(kvRows, a.tokens * Cin);
  float *gate = scratch(gateRows, a.tokens * Cin);
  ref::linear(a.in<float>(0), a.tokens, D, a.in<float>(1), Cin, kv, a.pool);
  ref::linear(a.in<float>(0), a.tokens, D, a.in<float>(2), Cin, gate, a.pool);
  ref::compress(kv, gate, a.tokens, a.in<float>(3), a.in<float>(4), a.in<int32_t>(5),
                compressParams(a),
                *a.in<CacheBuffer>(6), *a.in<CacheBuffer>(7));
}

} // namespace

std::vector<NamedKernel> fusedCpuKernels() {
  return {
      {"v4.norm_linear", normLinearKernel},
      {"v4.linear_swiglu", linearSwigluKernel},
      {"v4.hc_post_pre", hcPostPreKernel},
      {"v4.rope_cache_append", ropeCacheAppendKernel},
      {"v4.linear_compress", linearCompressKernel},
  };
}

} // namespace v4rt
