// Binds a plan step (kernel name + args + attributes) to a reference kernel.
#pragma once

#include <string>
#include <vector>

#include "runtime/artifact/Program.h"
#include "runtime/cpu/CacheBuffer.h"
#include "runtime/cpu/ReferenceKernels.h"
#include "runtime/cpu/ThreadPool.h"

namespace v4rt {

// What a kernel sees at run time: resolved pointers for the step's ins and outs
// (cache args point at a CacheBuffer), the tokens present, and the attributes.
class KernelArgs {
public:
  KernelArgs(const Step &step, const std::vector<std::vector<float>> &floatAttrs)
      : step_(step), floatAttrs_(floatAttrs) {}

  int64_t tokens = 0;
  std::vector<void *> ins, outs;
  ThreadPool *pool = nullptr;

  const Step &step() const { return step_; }
  // Position in `ins` of ODS operand `operand` (operandSegmentSizes aware);
  // -1 when an optional operand is absent.
  int64_t operandIndex(int64_t operand) const;
  template <typename T> T *in(int64_t operand) const {
    const int64_t i = operandIndex(operand);
    return i < 0 ? nullptr : static_cast<T *>(ins[i]);
  }
  template <typename T> T *out(int64_t i) const { return static_cast<T *>(outs[i]); }
  // Dimension `dim` of ODS operand `operand`'s static shape.
  int64_t inDim(int64_t operand, int64_t dim) const;
  int64_t outDim(int64_t result, int64_t dim) const;
  int64_t attrInt(const char *name) const;
  double attrFloat(const char *name) const;
  bool attrBool(const char *name) const { return attrInt(name) != 0; }
  // A float-array attribute as f32 (prepared when the plan is bound).
  const float *attrFloats(const char *name) const;

private:
  const Attr &attr(const char *name) const;
  const Step &step_;
  const std::vector<std::vector<float>> &floatAttrs_;
};

using CpuKernelFn = void (*)(const KernelArgs &);

// Kernel parameters decoded from a step's attributes, shared by the core,
// fused and quantized kernel families.
ref::RopeParams ropeParams(const KernelArgs &a);       // head_dim, rope_dim, inv_freq, scaling
ref::HyperParams hyperParams(const KernelArgs &a, int64_t D); // hc, norm_eps, hc_eps
ref::CompressParams compressParams(const KernelArgs &a);      // rate, head_dim, overlap, rope, eps
// Operands h, weights [T, k], experts, gate_up [E, 2I, D], ... (v4.moe and v4.moe_fp4).
ref::MoeParams moeParams(const KernelArgs &a);
// Throws v4c::Error unless every expert id of the step's `experts` operand
// (operand 2, [tokens, topK]) is below p.experts.
void checkExpertIds(const KernelArgs &a, const ref::MoeParams &p);

// nullptr when this runtime has no CPU kernel of that name.
CpuKernelFn findCpuKernel(const std::string &name);

// Each family of kernels lists its adapters; findCpuKernel searches them all
// (the list of families is in CpuKernels.cpp).
struct NamedKernel {
  const char *name;
  CpuKernelFn fn;
};
std::vector<NamedKernel> coreCpuKernels(); // one per v4 op (docs/ops.md)
std::vector<NamedKernel> quantCpuKernels(); // v4.linear_fp8, v4.moe_fp4 (QuantKernels.cpp)
std::vector<NamedKernel> fusedCpuKernels(); // the fused ops of V4FusedOps.td (FusedKernels.cpp)

} // namespace v4rt
