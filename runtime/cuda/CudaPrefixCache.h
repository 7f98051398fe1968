// The CUDA backend's prefix cache: issue 5's tiers device memory ->
// host memory (pinned) -> a directory on disk, each with its own budget.
// The one place that stacks them, for v4run (CudaRunner) and v4bench-agent.
#pragma once

#include <memory>

#include "runtime/PrefixCache.h"
#include "runtime/cuda/PinnedPayloadAllocator.h"

namespace v4rt::cuda {

class CudaModel;

// Released pinned blocks kept for reuse: an eighth of the host budget, at
// least 64 MiB (pages are exported and demoted even without a host tier).
uint64_t pinnedRetainBytes(uint64_t hostBytes);

// A PrefixCache for `model`'s sessions: a "device" tier of `deviceTierBytes`
// (0: none) on top of the options' host tier, whose payloads are pinned
// (options.payloadAllocator, unless the caller set one), and disk tier. At
// least one tier must be enabled. Destroy it before the model (the device
// tier frees device memory).
std::unique_ptr<PrefixCache> makeCudaPrefixCache(const CudaModel &model, PrefixCacheOptions options,
                                                 uint64_t deviceTierBytes);

// The pinned allocator of a cache made by makeCudaPrefixCache; null otherwise.
const PinnedPayloadAllocator *pinnedAllocatorOf(const PrefixCache &cache);

} // namespace v4rt::cuda
