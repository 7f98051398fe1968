// Adapters from plan steps to the reference kernels. Operand numbering follows
// the v4 ops (docs/ops.md); the kernels themselves are in *Kernels.cpp.
#include "runtime/cpu/CpuKernels.h"

#include <cstring>
#include <unordered_map>

#include "common/Error.h"
#include "runtime/cpu/ReferenceKernels.h"

namespace v4rt {

const Attr &KernelArgs::attr(const char *name) const {
  for (const Attr &a : step_.attrs)
    if (a.name == name)
      return a;
  throw v4c::Error(std::string("kernel ") + "step is missing attribute '" + name + "'");
}

int64_t KernelArgs::attrInt(const char *name) const {
  const Attr &a = attr(name);
  if (!a.ints.empty())
    return a.ints[0];
  v4c::check(!a.floats.empty(), std::string("attribute '") + name + "' is not a number");
  return static_cast<int64_t>(a.floats[0]);
}

double KernelArgs::attrFloat(const char *name) const {
  const Attr &a = attr(name);
  if (!a.floats.empty())
    return a.floats[0];
  v4c::check(!a.ints.empty(), std::string("attribute '") + name + "' is not a number");
  return static_cast<double>(a.ints[0]);
}

const float *KernelArgs::attrFloats(const char *name) const {
  for (size_t i = 0; i < step_.attrs.size(); ++i)
    if (step_.attrs[i].name == name)
      return floatAttrs_[i].data();
  throw v4c::Error(std::string("kernel step is missing attribute '") + name + "'");
}

int64_t KernelArgs::operandIndex(int64_t operand) const { return step_.operandIndex(operand); }

namespace {
// Dim `dim` of `arg`; a step that does not have it is damage the program
// checks missed, reported as an error, not an out_of_range.
int64_t argDim(const std::vector<ArgRef> &args, int64_t index, int64_t dim, const char *what, int64_t number) {
  if (index < 0 || index >= static_cast<int64_t>(args.size()))
    throw v4c::Error(std::string("kernel step has no ") + what + " " + std::to_string(number) + " (it has " +
                     std::to_string(args.size()) + ")");
  const std::vector<int64_t> &shape = args[static_cast<size_t>(index)].shape;
  if (dim < 0 || dim >= static_cast<int64_t>(shape.size()))
    throw v4c::Error(std::string("kernel step ") + what + " " + std::to_string(number) + " has rank " +
                     std::to_string(shape.size()) + ", no dimension " + std::to_string(dim));
  return shape[static_cast<size_t>(dim)];
}
} // namespace

int64_t KernelArgs::inDim(int64_t operand, int64_t dim) const {
  return argDim(step_.ins, operandIndex(operand), dim, "operand", operand);
}
int64_t KernelArgs::outDim(int64_t result, int64_t dim) const {
  return argDim(step_.outs, result, dim, "result", result);
}

ref::RopeParams ropeParams(const KernelArgs &a) {
  ref::RopeParams p;
  p.headDim = a.attrInt("head_dim");
  p.ropeDim = a.attrInt("rope_dim");
  p.invFreq = a.attrFloats("inv_freq");
  p.scaling = a.attrFloat("scaling");
  return p;
}

ref::HyperParams hyperParams(const KernelArgs &a, int64_t D) {
  ref::HyperParams p;
  p.hc = a.attrInt("hc");
  p.D = D;
  p.normEps = a.attrFloat("norm_eps");
  p.hcEps = a.attrFloat("hc_eps");
  return p;
}

ref::CompressParams compressParams(const KernelArgs &a) {
  ref::CompressParams p;
  p.rate = a.attrInt("rate");
  p.headDim = a.attrInt("head_dim");
  p.overlap = a.attrBool("overlap");
  p.rope = ropeParams(a);
  p.rope.headDim = p.headDim;
  p.eps = a.attrFloat("eps");
  return p;
}

void checkExpertIds(const KernelArgs &a, const ref::MoeParams &p) {
  // Routers pick ids below their expert count; a program whose router and
  // MoE disagree on it (or a hash table holding a bad id) fails here.
  const int32_t *experts = a.in<int32_t>(2);
  for (int64_t i = 0; i < a.tokens * p.topK; ++i)
    if (experts[i] < 0 || experts[i] >= p.experts)
      throw v4c::Error("expert id " + std::to_string(experts[i]) + " is out of range (the MoE has " +
                       std::to_string(p.experts) + " experts)");
}

ref::MoeParams moeParams(const KernelArgs &a) {
  ref::MoeParams p;
  p.experts = a.inDim(3, 0);
  p.topK = a.inDim(1, 1);
  p.D = a.inDim(0, 1);
  p.I = a.inDim(3, 1) / 2;
  p.swigluLimit = a.attrFloat("swiglu_limit");
  return p;
}

namespace {

// Token ids index a table: one compare per token keeps a bad id an error.
void checkIds(const int32_t *ids, int64_t T, int64_t rows, const char *table) {
  for (int64_t t = 0; t < T; ++t)
    if (ids[t] < 0 || ids[t] >= rows)
      throw v4c::Error("token id " + std::to_string(ids[t]) + " is out of range for the " + table + " (" +
                       std::to_string(rows) + " rows)");
}

void embedKernel(const KernelArgs &a) {
  checkIds(a.in<int32_t>(0), a.tokens, a.inDim(1, 0), "embedding table");
  ref::embed(a.in<int32_t>(0), a.tokens, a.in<float>(1), a.inDim(1, 0), a.inDim(1, 1),
             a.out<float>(0));
}

void hcExpandKernel(const KernelArgs &a) {
  ref::hcExpand(a.in<float>(0), a.tokens, a.attrInt("hc"), a.inDim(0, 1), a.out<float>(0));
}

void hcPreKernel(const KernelArgs &a) {
  ref::HyperParams p = hyperParams(a, a.outDim(0, 1));
  p.sinkhornIters = a.attrInt("sinkhorn_iters");
  ref::hcPre(a.in<float>(0), a.tokens, a.in<float>(1), a.in<float>(2), a.in<float>(3), p,
             a.out<float>(0), a.out<float>(1), a.out<float>(2), a.pool);
}

void hcPostKernel(const KernelArgs &a) {
  ref::hcPost(a.in<float>(0), a.in<float>(1), a.in<float>(2), a.in<float>(3), a.tokens,
              a.attrInt("hc"), a.inDim(1, 1), a.out<float>(0));
}

void hcHeadKernel(const KernelArgs &a) {
  ref::hcHead(a.in<float>(0), a.tokens, a.in<float>(1), a.in<float>(2), a.in<float>(3),
              hyperParams(a, a.outDim(0, 1)), a.out<float>(0));
}

void rmsNormKernel(const KernelArgs &a) {
  ref::rmsNorm(a.in<float>(0), a.tokens, a.inDim(0, 1), a.attrInt("group"), a.in<float>(1),
               a.attrFloat("eps"), a.out<float>(0));
}

void linearKernel(const KernelArgs &a) {
  ref::linear(a.in<float>(0), a.tokens, a.inDim(0, 1), a.in<float>(1), a.inDim(1, 0),
              a.out<float>(0), a.pool);
}

void groupedLinearKernel(const KernelArgs &a) {
  const int64_t groups = a.attrInt("groups");
  ref::groupedLinear(a.in<float>(0), a.tokens, groups, a.inDim(0, 1) / groups, a.in<float>(1),
                     a.inDim(1, 0) / groups, a.out<float>(0), a.pool);
}

void ropeKernel(const KernelArgs &a) {
  ref::rope(a.in<float>(0), a.in<int32_t>(1), a.tokens, a.inDim(0, 1), ropeParams(a),
            a.attrBool("inverse"), a.out<float>(0));
}

void compressKernel(const KernelArgs &a) {
  ref::compress(a.in<float>(0), a.in<float>(1), a.tokens, a.in<float>(2), a.in<float>(3),
                a.in<int32_t>(4), compressParams(a), *a.in<CacheBuffer>(5),
                *a.in<CacheBuffer>(6));
}

void indexerTopKKernel(const KernelArgs &a) {
  ref::IndexerParams p;
  p.heads = a.attrInt("heads");
  p.headDim = a.attrInt("head_dim");
  p.topK = a.attrInt("top_k");
  p.rate = a.attrInt("rate");
  p.weightScale = a.attrFloat("weight_scale");
  p.scoreScale = a.attrFloat("score_scale");
  ref::indexerTopK(a.in<float>(0), a.in<float>(1), a.in<int32_t>(2), a.tokens,
                   *a.in<CacheBuffer>(3), p, a.out<int32_t>(0), a.pool);
}

void attentionKernel(const KernelArgs &a) {
  ref::AttentionParams p;
  p.numHeads = a.attrInt("num_heads");
  p.headDim = a.attrInt("head_dim");
  p.window = a.attrInt("window");
  p.rate = a.attrInt("rate");
  p.scale = a.attrFloat("scale");
  const int32_t *topk = a.in<int32_t>(6);
  if (topk)
    p.topKWidth = a.inDim(6, 1);
  ref::attention(a.in<float>(0), a.in<float>(1), a.in<float>(2), a.in<int32_t>(3), a.tokens,
                 *a.in<CacheBuffer>(4), a.in<CacheBuffer>(5), topk, p, a.out<float>(0), a.pool);
}

void cacheAppendKernel(const KernelArgs &a) {
  ref::cacheAppend(*a.in<CacheBuffer>(0), a.in<float>(1), a.in<int32_t>(2), a.tokens);
}

void routerKernel(const KernelArgs &a) {
  ref::RouterParams p;
  p.experts = a.inDim(1, 0);
  p.topK = a.attrInt("top_k");
  p.routedScaling = a.attrFloat("routed_scaling");
  ref::router(a.in<float>(0), a.tokens, a.inDim(0, 1), a.in<float>(1), a.in<float>(2), p,
              a.out<float>(0), a.out<int32_t>(1));
}

void hashRouterKernel(const KernelArgs &a) {
  checkIds(a.in<int32_t>(3), a.tokens, a.inDim(2, 0), "tid2eid table");
  ref::RouterParams p;
  p.experts = a.inDim(1, 0);
  p.topK = a.inDim(2, 1);
  p.routedScaling = a.attrFloat("routed_scaling");
  ref::hashRouter(a.in<float>(0), a.tokens, a.inDim(0, 1), a.in<float>(1), a.in<int32_t>(2),
                  a.inDim(2, 0), a.in<int32_t>(3), p, a.out<float>(0), a.out<int32_t>(1));
}

void moeKernel(const KernelArgs &a) {
  const ref::MoeParams p = moeParams(a);
  checkExpertIds(a, p);
  ref::moe(a.in<float>(0), a.tokens, a.in<float>(1), a.in<int32_t>(2), a.in<float>(3),
           a.in<float>(4), p, a.out<float>(0), a.pool);
}

void swigluKernel(const KernelArgs &a) {
  ref::swiglu(a.in<float>(0), a.in<float>(1), a.tokens * a.inDim(0, 1), a.attrFloat("limit"),
              a.out<float>(0));
}

void addKernel(const KernelArgs &a) {
  ref::add(a.in<float>(0), a.in<float>(1), a.tokens * a.inDim(0, 1), a.out<float>(0));
}

} // namespace

std::vector<NamedKernel> coreCpuKernels() {
  return {
      {"v4.embed", embedKernel},
      {"v4.hc_expand", hcExpandKernel},
      {"v4.hc_pre", hcPreKernel},
      {"v4.hc_post", hcPostKernel},
      {"v4.hc_head", hcHeadKernel},
      {"v4.rms_norm", rmsNormKernel},
      {"v4.linear", linearKernel},
      {"v4.grouped_linear", groupedLinearKernel},
      {"v4.rope", ropeKernel},
      {"v4.compress", compressKernel},
      {"v4.indexer_topk", indexerTopKKernel},
      {"v4.attention", attentionKernel},
      {"v4.cache_append", cacheAppendKernel},
      {"v4.router", routerKernel},
      {"v4.hash_router", hashRouterKernel},
      {"v4.moe", moeKernel},
      {"v4.swiglu", swigluKernel},
      {"v4.add", addKernel},
  };
}

CpuKernelFn findCpuKernel(const std::string &name) {
  static const std::unordered_map<std::string, CpuKernelFn> kernels = [] {
    std::unordered_map<std::string, CpuKernelFn> table;
    for (auto family : {coreCpuKernels, quantCpuKernels, fusedCpuKernels})
      for (const NamedKernel &kernel : family())
        table.emplace(kernel.name, kernel.fn);
    return table;
  }();
  auto it = kernels.find(name);
  return it == kernels.end() ? nullptr : it->second;
}

} // namespace v4rt
