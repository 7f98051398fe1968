// Host-side bookkeeping of the CUDA backend that needs no device: the entry
// ABI's parameter values of a step (codegen/cuda/KernelEmitter.h, "Entry
// ABI") and the device size of each cache slot. Kept apart from the driver so
// it is unit-tested on machines without a GPU.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/artifact/Program.h"

namespace v4rt::cuda {

// Device addresses of everything a bucket's steps can refer to.
struct ArgAddresses {
  uint64_t arena = 0;
  uint64_t arenaBytes = 0;
  std::vector<uint64_t> weights; // Program::weights order
  std::vector<uint64_t> caches;  // Program::caches order (the session's slots)
  std::vector<uint64_t> inputs;  // Program::inputs order (the bucket's buffers)
  std::vector<uint64_t> outputs; // Program::outputs order
  uint64_t dyn = 0;
};

// The address one argument resolves to; throws v4c::Error naming `where` when
// its index or arena range is out of bounds.
uint64_t argumentAddress(const ArgRef &arg, const ArgAddresses &addresses, const std::string &where);

// The entry's parameter values in ABI order: step.ins, step.outs, then dyn.
std::vector<uint64_t> stepParams(const Step &step, const ArgAddresses &addresses, const std::string &where);

// Rows of a slot's device storage: Window / CompressState: slot.rows;
// Entries: ceil(maxContext / rate). Bytes: rows x the row size of the slot's
// format (runtime/cpu/CacheStorage.h: f32, bf16, or fp8 rows).
int64_t cacheSlotRows(const CacheSlot &slot, int64_t maxContext);
uint64_t cacheSlotBytes(const CacheSlot &slot, int64_t maxContext);

// The context a GPU session supports: the config's max_position_embeddings,
// capped by `requested` when that is > 0 (a request above the config's limit
// is an error).
int64_t sessionMaxContext(const Program &program, int64_t requested);

// "bucket prefill_64 step 12 v4_linear_f32_64x128 (v4.linear)": how errors
// name a launch.
std::string describeStep(const Program &program, const Bucket &bucket, size_t stepIndex);

} // namespace v4rt::cuda
