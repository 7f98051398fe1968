// The executable content of an artifact as plain C++ values.
//
// The compiler fills a Program and hands it to ArtifactWriter; the runtime's
// ArtifactReader verifies the file and gives the same Program back (weights as
// views into the mmapped file). No LLVM/MLIR here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/DummyWeights.h"

namespace v4rt {

enum class DType : uint8_t { F32 = 0, BF16 = 1, F16 = 2, F8E4M3 = 3, I32 = 4, I64 = 5, U8 = 6 };
size_t dtypeSize(DType dtype);
const char *dtypeName(DType dtype);

// Where a kernel argument lives.
enum class ArgKind : uint8_t {
  Arena = 0,  // bytes [offset, offset + size) of the bucket's arena
  Weight = 1, // weights[index]
  Cache = 2,  // the session's cache slot caches[index]
  Input = 3,  // inputs[index] ("ids", "positions")
  Output = 4, // outputs[index] ("logits")
};

struct ArgRef {
  ArgKind kind = ArgKind::Arena;
  uint32_t index = 0;   // Weight / Cache / Input / Output
  uint64_t offset = 0;  // Arena: byte offset in the arena
  DType dtype = DType::F32;
  // Static shape for the bucket. Token-major activations have dim 0 = bucket
  // tokens; at run time the kernel processes only the first n rows.
  std::vector<int64_t> shape;
  uint64_t byteSize() const;
};

// A named attribute of a launch: integers, floats or a string.
struct Attr {
  std::string name;
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::string str;
};

struct Step {
  uint32_t kernel = 0; // index into Program::kernels
  std::vector<ArgRef> ins;
  std::vector<ArgRef> outs;
  std::vector<Attr> attrs;
  // CUDA targets: launch geometry of the step's kernel, fixed at compile time
  // for the bucket's static tokens (cpu: all 1 / 0, unused).
  uint32_t grid[3] = {1, 1, 1};
  uint32_t block[3] = {1, 1, 1};
  uint32_t sharedBytes = 0; // dynamic shared memory per block

  // Position in `ins` of the op's ODS operand `operand`, following the
  // "operandSegmentSizes" attribute of ops with optional operands; -1 when
  // that operand is absent.
  // (Inline: the CPU kernels use it without linking the artifact library.)
  int64_t operandIndex(int64_t operand) const {
    for (const Attr &a : attrs) {
      if (a.name != "operandSegmentSizes")
        continue;
      int64_t index = 0;
      for (int64_t i = 0; i < operand; ++i)
        index += a.ints.at(i);
      return a.ints.at(operand) == 0 ? -1 : index;
    }
    return operand < static_cast<int64_t>(ins.size()) ? operand : -1;
  }
};

enum class BucketKind : uint8_t { Prefill = 0, Decode = 1 };

// One specialised function: a chunk of up to `tokens` tokens of one session
// (prefill), or a decode step of up to `batch` sessions.
struct Bucket {
  std::string name;
  BucketKind kind = BucketKind::Prefill;
  int64_t tokens = 0;
  int64_t batch = 1;
  uint64_t arenaBytes = 0;
  uint64_t naiveBytes = 0; // sum of all intermediates (memory planner report)
  std::vector<Step> steps;
};

struct Kernel {
  std::string name;             // "v4.linear" (CPU builtin) or a generated entry
  std::vector<uint8_t> binary;  // unused (empty): cubins live in Program::modules
  uint32_t module = 0;          // CUDA targets: index into Program::modules holding entry `name`
};

// A compiled device module (CUDA: one cubin for the program's target) holding
// every generated entry plus `v4_fill_dummy`.
struct Module {
  std::string target;          // "sm_90a", ...; equals Program::target
  std::vector<uint8_t> binary; // the cubin (cuModuleLoadData input)
};

enum class CacheKind : uint8_t { Window = 0, CompressState = 1, Entries = 2 };

// Per-session state the plans read and write (see docs/ops.md cache types).
struct CacheSlot {
  std::string name; // "layers.3.window", "layers.3.entries", ...
  int32_t layer = 0;
  CacheKind kind = CacheKind::Window;
  int64_t rows = 0;   // fixed rows (Window, CompressState); 0 for Entries
  int64_t width = 0;  // elements per row
  int64_t rate = 0;   // Entries: one row per `rate` tokens
  DType dtype = DType::F32; // row storage: F32, BF16 or F8E4M3 (docs/quantization.md, "KV cache")
  // F8E4M3: the last ropeWidth channels of a row are bf16, the others e4m3
  // with one ue8m0 scale per 64 channels; 0 for other dtypes.
  int64_t ropeWidth = 0;
};

struct IoSlot {
  std::string name; // inputs: "ids", "positions"; outputs: "logits"
  DType dtype = DType::F32;
  int64_t width = 1; // elements per token (logits: vocab)
};

struct Weight {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t offset = 0;   // from the start of the file, 4096-aligned
  uint64_t size = 0;     // bytes
  uint64_t checksum = 0; // XXH3-64 of the bytes
  const uint8_t *data = nullptr; // reader: view into the mapped file; nullptr for a dummy weight
  // `--weights dummy`: kind != None means the file holds no bytes for this
  // weight (offset = 0, checksum = 0; size stays the logical byte count) and
  // the runtime fills it with runtime/DummyWeights.h from (Program::dummySeed,
  // this weight's index, recipe).
  DummyRecipe dummy;
  bool isDummy() const { return dummy.kind != DummyKind::None; }
};

struct Program {
  std::string target;         // "cpu", "sm_90a", ...
  std::string configJson;     // ModelConfig::toJson(), canonical
  std::string compileOptions; // JSON of the options v4c was run with
  std::vector<Bucket> buckets;
  std::vector<Kernel> kernels;
  std::vector<CacheSlot> caches;
  std::vector<IoSlot> inputs;
  std::vector<IoSlot> outputs;
  std::vector<Weight> weights;
  std::vector<Module> modules; // CUDA targets: exactly one; cpu: none
  uint64_t dummySeed = 0;      // seed of the dummy-weight generator (see Weight::dummy)
};

// Sessions per decode bucket (Bucket::batch of every Decode bucket), ascending, distinct.
std::vector<int64_t> decodeBatchSizes(const Program &program);

} // namespace v4rt
