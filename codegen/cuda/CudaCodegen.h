// The CUDA code generator: Program (from programFromPlan) -> one translation
// unit of kernel entries -> nvcc -> a cubin embedded in the Program.
//
// For every step of every bucket the emitter registered for the step's op
// (findEmitter) returns an entry; entries are deduplicated by name, the
// kernel table is rewritten to one Kernel per distinct entry (module 0), and
// each step gets its launch geometry. The translation unit is
//   #include <v4cuda/All.cuh>      (every kernel family + v4_fill_dummy)
//   <each distinct entry's source, once>
// compiled with nvcc for exactly the target. The headers are embedded in the
// v4c binary (EmbeddedHeaders) and written next to the .cu, so an installed
// v4c needs no source tree.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "codegen/cuda/KernelEmitter.h"
#include "runtime/artifact/Program.h"

namespace v4c::cuda {

// "sm_80", "sm_89", "sm_90a", "sm_100a".
const std::vector<std::string> &cudaTargets();
bool isCudaTarget(const std::string &target);
// "cpu, sm_80, sm_89, sm_90a, sm_100a" (for error messages).
std::string validTargetList();
// nvcc flags selecting exactly `target`: "-gencode=arch=compute_90a,code=sm_90a".
std::string gencodeFlag(const std::string &target);

// `--tensor-cores`: "wmma" | "wgmma" <-> TensorCores. parseTensorCores throws
// v4c::Error naming the valid values.
const char *tensorCoresName(TensorCores tensorCores);
TensorCores parseTensorCores(const std::string &name);
// Throws v4c::Error (one line) when `target` cannot run `options`: wgmma needs
// sm_90a (the warpgroup MMA is Hopper's; sm_100a has tcgen05 instead).
void checkTargetOptions(const std::string &target, const CudaTargetOptions &options);
// Most dynamic shared memory one block may opt in to on `target` (bytes):
// 227 KiB on sm_90a / sm_100a, 163 KiB on sm_80, 99 KiB on sm_89.
int64_t sharedOptinLimit(const std::string &target);

// nvcc: $V4C_NVCC, $CUDA_HOME/bin/nvcc, /usr/local/cuda/bin/nvcc, then PATH.
// Throws v4c::Error naming every place it looked when none is executable.
std::string findNvcc();

// A header compiled into v4c (codegen/cuda/include/v4cuda/*.cuh and
// runtime/DummyWeights.h), by include path ("v4cuda/Common.cuh").
struct EmbeddedHeader {
  const char *path;
  const char *text;
};
const std::vector<EmbeddedHeader> &embeddedHeaders(); // generated at build time

// The generated source of a program, before nvcc.
struct GeneratedModule {
  std::string translationUnit;
  std::vector<EmittedKernel> kernels; // distinct entries, in first-use order
  // stepKernel[b][s]: index in `kernels` of bucket b's step s.
  std::vector<std::vector<uint32_t>> stepKernel;
  std::vector<std::vector<LaunchDims>> stepDims; // launch geometry per step, same indexing
};

// Runs the emitters over every step. Throws v4c::Error for an op without an
// emitter (naming the op and the first bucket/step using it), an emitter that
// throws (with the step prefixed), or two different sources under one entry.
// `lookup` finds an op's emitter (findEmitter; tests pass their own).
// `target` reaches every emitter as StepView::targetOptions.
using EmitterLookup = KernelEmitterFn (*)(const std::string &op);
GeneratedModule generateModule(const v4rt::Program &program, EmitterLookup lookup = findEmitter,
                               const CudaTargetOptions &target = {});

struct CudaCompileOptions {
  std::string nvcc;           // empty: findNvcc()
  std::string keepSourceDir;  // non-empty: write kernels.cu + headers here and keep them
  CudaTargetOptions target;   // --tensor-cores (checked against Program::target)
};

// Writes the headers and `translationUnit` to a directory, runs nvcc for
// `target` and returns the cubin. On failure the error shows nvcc's first
// stderr lines and the directory holding the source (kept for debugging).
std::vector<uint8_t> compileCubin(const std::string &translationUnit, const std::string &target,
                                  const CudaCompileOptions &options);

// Names of the global functions (kernel entries) a cubin exports, read from
// its ELF symbol table. Throws v4c::Error when the bytes are not an ELF64 file.
std::vector<std::string> cubinEntryNames(const std::vector<uint8_t> &cubin);

// generateModule + compileCubin (then checks that the cubin exports every
// entry and v4_fill_dummy, so a mangled name fails here, not on the GPU),
// then rewrites `program` for its CUDA target:
// kernels = one per distinct entry (module 0), steps' kernel index and launch
// dims, modules = {the cubin}.
void compileProgramForCuda(v4rt::Program &program, const CudaCompileOptions &options);

} // namespace v4c::cuda
