#include "runtime/artifact/ProgramCheck.h"

#include <string>
#include <unordered_set>

#include "common/Error.h"
#include "runtime/artifact/StepContracts.h"

namespace v4rt::artifact {
namespace {

using std::to_string;

[[noreturn]] void fail(const std::string &message) { throw v4c::Error(message); }

std::string quoted(const std::string &name) { return "\"" + name + "\""; }

const char *argKindName(ArgKind kind) {
  switch (kind) {
  case ArgKind::Arena: return "arena";
  case ArgKind::Weight: return "weight";
  case ArgKind::Cache: return "cache";
  case ArgKind::Input: return "input";
  case ArgKind::Output: return "output";
  }
  return "unknown";
}

void checkArg(const Program &program, const Bucket &bucket, const ArgRef &arg,
              const std::string &where) {
  uint64_t bytes = 0;
  try {
    bytes = arg.byteSize();
  } catch (const v4c::Error &error) {
    fail(where + ": " + error.what());
  }
  auto checkIndex = [&](size_t count) {
    if (arg.index >= count)
      fail(where + ": " + argKindName(arg.kind) + " index " + to_string(arg.index) +
           " is out of range (the program has " + to_string(count) + ")");
  };
  switch (arg.kind) {
  case ArgKind::Arena:
    // offset <= arenaBytes first, so arenaBytes - offset cannot wrap.
    if (arg.offset > bucket.arenaBytes || bytes > bucket.arenaBytes - arg.offset)
      fail(where + ": arena bytes [" + to_string(arg.offset) + ", +" + to_string(bytes) +
           ") exceed the bucket's arena of " + to_string(bucket.arenaBytes) + " bytes");
    return;
  case ArgKind::Weight:
    checkIndex(program.weights.size());
    if (bytes > program.weights[arg.index].size)
      fail(where + ": reads " + to_string(bytes) + " bytes of weight " +
           quoted(program.weights[arg.index].name) + ", which has only " +
           to_string(program.weights[arg.index].size));
    return;
  case ArgKind::Cache:
    checkIndex(program.caches.size());
    return;
  case ArgKind::Input:
    checkIndex(program.inputs.size());
    return;
  case ArgKind::Output:
    checkIndex(program.outputs.size());
    return;
  }
  fail(where + ": unknown argument kind " + to_string(static_cast<int>(arg.kind)));
}

// Integer attributes are model hyperparameters (dimensions, counts, rates,
// iterations) that kernels loop on; a value past this is damage, and a loop
// over it would run for hours (a sinkhorn_iters of 2^40 is a hang).
constexpr int64_t kMaxIntAttr = int64_t{1} << 20;

void checkAttrs(const Step &step, const std::string &where) {
  for (size_t i = 0; i < step.attrs.size(); ++i) {
    const Attr &attr = step.attrs[i];
    if (attr.name.empty())
      fail(where + ": attribute " + to_string(i) + " has an empty name");
    for (int64_t value : attr.ints)
      if (value < -kMaxIntAttr || value > kMaxIntAttr)
        fail(where + ": attribute " + quoted(attr.name) + " holds " + to_string(value) + ", outside [-" +
             to_string(kMaxIntAttr) + ", " + to_string(kMaxIntAttr) + "] (file corrupted?)");
    // Step::operandIndex turns these into positions in `ins`.
    if (attr.name == "operandSegmentSizes") {
      int64_t total = 0;
      for (int64_t size : attr.ints) {
        if (size < 0)
          fail(where + ": operandSegmentSizes holds a negative size " + to_string(size));
        total += size;
      }
      if (total != static_cast<int64_t>(step.ins.size()))
        fail(where + ": operandSegmentSizes add up to " + to_string(total) + " operands but the step has " +
             to_string(step.ins.size()) + " inputs");
    }
  }
}

void checkBucket(const Program &program, const Bucket &bucket) {
  const std::string name = "bucket " + quoted(bucket.name);
  if (bucket.kind != BucketKind::Prefill && bucket.kind != BucketKind::Decode)
    fail(name + ": unknown bucket kind " + to_string(static_cast<int>(bucket.kind)));
  if (bucket.batch < 1)
    fail(name + ": batch " + to_string(bucket.batch) + " must be at least 1");
  if (bucket.tokens < 0 || (bucket.kind == BucketKind::Prefill && bucket.tokens < 1))
    fail(name + ": tokens " + to_string(bucket.tokens) +
         (bucket.kind == BucketKind::Prefill ? " must be at least 1" : " must not be negative"));
  for (size_t s = 0; s < bucket.steps.size(); ++s) {
    const Step &step = bucket.steps[s];
    const std::string where = name + " step " + to_string(s);
    if (step.kernel >= program.kernels.size())
      fail(where + ": kernel index " + to_string(step.kernel) +
           " is out of range (the program has " + to_string(program.kernels.size()) +
           " kernels)");
    for (size_t i = 0; i < step.ins.size(); ++i)
      checkArg(program, bucket, step.ins[i], where + " input " + to_string(i));
    for (size_t i = 0; i < step.outs.size(); ++i)
      checkArg(program, bucket, step.outs[i], where + " output " + to_string(i));
    checkAttrs(step, where);
    for (int d = 0; d < 3; ++d)
      if (step.grid[d] == 0 || step.block[d] == 0)
        fail(where + ": launch dimensions grid (" + to_string(step.grid[0]) + ", " + to_string(step.grid[1]) +
             ", " + to_string(step.grid[2]) + ") block (" + to_string(step.block[0]) + ", " +
             to_string(step.block[1]) + ", " + to_string(step.block[2]) + ") must all be non-zero");
    // The CPU kernels index their buffers with the step's dims.
    if (program.target == "cpu")
      checkStepContract(program, bucket, s);
  }
}

// CUDA targets carry exactly one module with a cubin, and every kernel names
// an entry in it; cpu programs carry none.
void checkModules(const Program &program) {
  if (program.target == "cpu") {
    if (!program.modules.empty())
      fail("a cpu program must not carry device modules (it has " + to_string(program.modules.size()) + ")");
    return;
  }
  if (program.modules.size() != 1)
    fail("target " + quoted(program.target) + " needs exactly one device module, the program has " +
         to_string(program.modules.size()));
  for (size_t m = 0; m < program.modules.size(); ++m) {
    if (program.modules[m].binary.empty())
      fail("module " + to_string(m) + " has an empty cubin");
    if (program.modules[m].target != program.target)
      fail("module " + to_string(m) + " is compiled for " + quoted(program.modules[m].target) +
           " but the program's target is " + quoted(program.target));
  }
  for (size_t k = 0; k < program.kernels.size(); ++k)
    if (program.kernels[k].module >= program.modules.size())
      fail("kernel " + to_string(k) + " " + quoted(program.kernels[k].name) + ": module index " +
           to_string(program.kernels[k].module) + " is out of range (the program has " +
           to_string(program.modules.size()) + ")");
}

void checkCache(const CacheSlot &cache, size_t index) {
  const std::string name = "cache slot " + to_string(index) + " " + quoted(cache.name);
  if (cache.name.empty())
    fail(name + ": empty name");
  if (cache.layer < 0)
    fail(name + ": negative layer " + to_string(cache.layer));
  if (cache.width <= 0)
    fail(name + ": width " + to_string(cache.width) + " must be positive");
  if (cache.rate < 0)
    fail(name + ": rate " + to_string(cache.rate) + " must not be negative");
  switch (cache.kind) {
  case CacheKind::Window:
  case CacheKind::CompressState:
    if (cache.rows <= 0)
      fail(name + ": rows " + to_string(cache.rows) + " must be positive for a fixed-size cache");
    break;
  case CacheKind::Entries:
    if (cache.rows != 0)
      fail(name + ": an entries cache grows with the session, so rows must be 0, not " +
           to_string(cache.rows));
    if (cache.rate <= 0)
      fail(name + ": an entries cache needs a positive rate, not " + to_string(cache.rate));
    break;
  default:
    fail(name + ": unknown cache kind " + to_string(static_cast<int>(cache.kind)));
  }
  // Only an f8e4m3 row splits into e4m3 and bf16 (rope) channels.
  if (cache.dtype == DType::F8E4M3 ? (cache.ropeWidth < 0 || cache.ropeWidth >= cache.width)
                                   : cache.ropeWidth != 0)
    fail(name + ": rope width " + to_string(cache.ropeWidth) +
         (cache.dtype == DType::F8E4M3 ? " must be in [0, width)" : " is only allowed on an f8e4m3 cache"));
  // A fixed-size cache must be allocatable: rows * width * dtype fits in 64 bits.
  ArgRef rowBlock;
  rowBlock.dtype = cache.dtype;
  rowBlock.shape = {cache.kind == CacheKind::Entries ? 1 : cache.rows, cache.width};
  try {
    (void)rowBlock.byteSize();
  } catch (const v4c::Error &error) {
    fail(name + ": " + error.what());
  }
}

void checkIoSlots(const std::vector<IoSlot> &slots, const char *what) {
  std::unordered_set<std::string> seen;
  for (size_t i = 0; i < slots.size(); ++i) {
    const IoSlot &slot = slots[i];
    const std::string name = std::string(what) + " " + to_string(i) + " " + quoted(slot.name);
    if (slot.name.empty())
      fail(name + ": empty name");
    if (!seen.insert(slot.name).second)
      fail(name + ": duplicate name");
    if (slot.width < 1)
      fail(name + ": width " + to_string(slot.width) + " must be at least 1");
    (void)dtypeSize(slot.dtype); // rejects unknown dtype codes
  }
}

} // namespace

void checkProgram(const Program &program) {
  if (program.target.empty())
    fail("the program has no target");
  for (size_t k = 0; k < program.kernels.size(); ++k)
    if (program.kernels[k].name.empty())
      fail("kernel " + to_string(k) + " has an empty name");
  std::unordered_set<std::string> weightNames;
  for (const Weight &weight : program.weights) {
    if (weight.name.empty())
      fail("a weight has an empty name");
    if (!weightNames.insert(weight.name).second)
      fail("weight " + quoted(weight.name) + " appears twice");
  }
  for (size_t c = 0; c < program.caches.size(); ++c)
    checkCache(program.caches[c], c);
  checkIoSlots(program.inputs, "input");
  checkIoSlots(program.outputs, "output");
  checkModules(program);
  std::unordered_set<std::string> bucketNames;
  for (const Bucket &bucket : program.buckets) {
    if (bucket.name.empty())
      fail("a bucket has an empty name");
    if (!bucketNames.insert(bucket.name).second)
      fail("bucket " + quoted(bucket.name) + " appears twice");
    checkBucket(program, bucket);
  }
}

} // namespace v4rt::artifact
