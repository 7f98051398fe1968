// The contract between the CUDA code generator and the per-op kernel emitters.
//
// For a CUDA target, v4c turns every plan step into a call of an
// `extern "C" __global__` entry point in one generated translation unit
// (compiled by nvcc for exactly that target and embedded in the artifact).
// An emitter, one per op name, returns the entry's source: usually a thin
// wrapper that instantiates a kernel template of codegen/cuda/include/v4cuda/
// with the step's static shapes, dtypes and attributes baked in as constants.
//
// Entry ABI (what the runtime's cuLaunchKernel passes, in this order):
//   1. one pointer per `step.ins[i]`, then one per `step.outs[i]`, each the
//      device address of that argument (Arena: arena base + offset; Weight:
//      the weight's device copy; Cache: the session's slot storage; Input /
//      Output: the bucket's input / output buffer). Element type = ArgRef
//      dtype (cTypeName). A cache slot that is read and written appears in
//      both lists with the same address.
//      Batched decode (a Decode bucket with batch B > 1): each Cache argument
//      is instead `T* const*`, the device address of a table of B slot bases
//      (row r -> session r's slot, the layout below; rows >= dyn[0] may be
//      null), and row r of every token-major argument is session r's next
//      token at its own position (positions[r]), not a chunk. Kernels take
//      the table as v4cuda::RowSlots<T> (include/v4cuda/Cache.cuh).
//   2. `const int32_t *dyn`: device address of the step's dynamic values,
//      dyn[0] = tokens present in this run (<= the bucket's static tokens);
//      rows >= dyn[0] must not be written. (A device pointer, not a value, so a
//      captured CUDA graph replays with new token counts.)
//      dyn[1] = frozen tokens: Entries rows of windows ending at or below it
//      were restored from the prefix cache and are not rewritten (the
//      compressor still advances its state); 0 outside a restore.
//      dyn[2..15] = 0, reserved.
// Device cache layout (one slot, `CacheSlot` of the program):
//   Window:        [rows = W, width], the ring: position p lives in row p % W.
//   CompressState: [rows, width], the CPU reference's row meaning.
//   Entries:       [capacity, width], row w = entry w; capacity is chosen by
//                  the runtime (max context / rate); the rows valid for a
//                  token at position p are those the reference makes visible
//                  (w < (p + 1) / rate): no count is stored.
// Launch geometry is fixed per step at compile time (for the bucket's static
// tokens); kernels guard rows against dyn[0].
//
// Every module also holds the dummy-weight fill entry (include/v4cuda/DummyFill.cuh):
//   extern "C" __global__ void v4_fill_dummy(void* dst, uint64_t count, uint32_t dtype,
//       uint64_t seed, uint32_t weight_index, uint32_t recipe_kind, float scale, int32_t modulo)
// dst = the weight's device copy, count = its elements, dtype = v4rt::DType,
// seed = Program::dummySeed, weight_index = index in Program::weights,
// recipe_kind/scale/modulo = Weight::dummy (runtime/DummyWeights.h). Grid-stride:
// any grid; 256 threads x min(ceil(count / 256), 65535) blocks is the intent.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/artifact/Program.h"

namespace v4c::cuda {

struct LaunchDims {
  uint32_t grid[3] = {1, 1, 1};
  uint32_t block[3] = {1, 1, 1};
  uint32_t sharedBytes = 0; // dynamic shared memory
};

struct EmittedKernel {
  // Unique among the program's entries for a distinct source: the generator
  // deduplicates entries whose (entry, source) are equal, so name an entry
  // after everything that changes its source (op, dtypes, shapes, attrs).
  std::string entry;
  // The complete definition: `extern "C" __global__ void <entry>(<params>) {...}`
  // plus any `static __device__ const` tables it needs (e.g. inv_freq).
  std::string source;
  LaunchDims dims;
};

// Which tensor-core instructions the GEMM-path kernels (dense GEMMs, the
// grouped MoE GEMM) are emitted with: `v4c compile --tensor-cores`.
// Wmma: nvcuda::wmma (mma.sync), every CUDA target, the default.
// Wgmma: Hopper's warpgroup MMA (DenseLinear.cuh MMA = 2), sm_90a only; opt-in
// until a GPU run proves it (docs/cuda-compile.md).
enum class TensorCores { Wmma, Wgmma };

// Options of a CUDA target that change the emitted kernels, not the plan.
struct CudaTargetOptions {
  TensorCores tensorCores = TensorCores::Wmma;
};

// Read-only view of one step for an emitter.
class StepView {
public:
  StepView(const v4rt::Program &program, const v4rt::Bucket &bucket, const v4rt::Step &step,
           CudaTargetOptions targetOptions = {})
      : program(program), bucket(bucket), step(step), targetOptions(targetOptions) {}

  const v4rt::Program &program;
  const v4rt::Bucket &bucket;
  const v4rt::Step &step;
  const CudaTargetOptions targetOptions;
  bool wgmma() const { return targetOptions.tensorCores == TensorCores::Wgmma; }

  const std::string &opName() const;
  // Position in step.ins of ODS operand `operand` (operandSegmentSizes aware);
  // -1 when an optional operand is absent.
  int64_t operandIndex(int64_t operand) const;
  const v4rt::ArgRef &in(int64_t operand) const;   // throws if absent
  bool hasIn(int64_t operand) const { return operandIndex(operand) >= 0; }
  const v4rt::ArgRef &out(int64_t result) const;
  int64_t inDim(int64_t operand, int64_t dim) const;
  int64_t outDim(int64_t result, int64_t dim) const;
  int64_t attrInt(const char *name) const;
  double attrFloat(const char *name) const;
  bool attrBool(const char *name) const { return attrInt(name) != 0; }
  std::vector<double> attrFloats(const char *name) const;
  std::vector<int64_t> attrInts(const char *name) const;
  // The cache slot a Cache arg refers to (rows/width/rate/dtype).
  const v4rt::CacheSlot &cacheSlot(const v4rt::ArgRef &arg) const;
  // Static token count of the bucket (rows of token-major activations).
  int64_t bucketTokens() const;
  // A decode bucket of B > 1 sessions: each cache argument is a table of B
  // slot bases and each row its own session's token (the ABI above).
  bool perRowCaches() const;

  // The entry's parameter list per the ABI: "const float* in0, const __nv_bfloat16* in1,
  // ..., float* out0, ..., const int32_t* dyn". Inputs are named in<i>, outputs out<i>
  // (i = position in step.ins / step.outs). Inputs are __restrict__ unless an
  // output overwrites them (in-place arena bytes, a cache slot the step updates).
  // With perRowCaches(), cache arguments are slot tables: "const float* const* in4".
  std::string paramList() const;
};

// "float", "__nv_bfloat16", "int32_t", "__nv_fp8_e4m3", "uint8_t", "half", "int64_t".
const char *cTypeName(v4rt::DType dtype);
// A C++ literal that round-trips the double exactly ("1.0000000000000001e-06").
std::string floatLiteral(double value);
// "static __device__ const float <name>[N] = {...};"
std::string deviceFloatTable(const std::string &name, const std::vector<double> &values);
// Turns any text into a C identifier fragment (entry names).
std::string identifierFragment(const std::string &text);

using KernelEmitterFn = EmittedKernel (*)(const StepView &);
struct NamedEmitter {
  const char *op; // plan kernel name, e.g. "v4.linear"
  KernelEmitterFn fn;
};
// The emitter families (the generator searches them all):
std::vector<NamedEmitter> denseEmitters(); // dense, mHC, router, norm/swiglu fusions, fp8 linear
std::vector<NamedEmitter> stateEmitters(); // compressor, indexer, attention, cache, MoE
// nullptr when no emitter handles `op`.
KernelEmitterFn findEmitter(const std::string &op);

} // namespace v4c::cuda
