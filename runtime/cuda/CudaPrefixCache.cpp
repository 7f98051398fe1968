#include "runtime/cuda/CudaPrefixCache.h"

#include <algorithm>

#include "common/Error.h"
#include "runtime/cuda/CudaModel.h"
#include "runtime/cuda/DeviceTier.h"

namespace v4rt::cuda {

uint64_t pinnedRetainBytes(uint64_t hostBytes) { return std::max<uint64_t>(hostBytes / 8, 64ull << 20); }

std::unique_ptr<PrefixCache> makeCudaPrefixCache(const CudaModel &model, PrefixCacheOptions options,
                                                 uint64_t deviceTierBytes) {
  v4c::check(deviceTierBytes > 0 || options.hostBytes > 0 || !options.directory.empty(),
             "the KV cache has no tier: give a device or host budget or a cache directory");
  if (!options.payloadAllocator)
    options.payloadAllocator =
        std::make_shared<PinnedPayloadAllocator>(model.device(), pinnedRetainBytes(options.hostBytes));
  std::unique_ptr<kvcache::PageTier> deviceTier;
  if (deviceTierBytes > 0)
    deviceTier =
        std::make_unique<DeviceTier>(model.device(), model.stream(), deviceTierBytes, options.payloadAllocator);
  return std::make_unique<PrefixCache>(model.identity(), model.program().caches, options, std::move(deviceTier));
}

const PinnedPayloadAllocator *pinnedAllocatorOf(const PrefixCache &cache) {
  return dynamic_cast<const PinnedPayloadAllocator *>(cache.payloadAllocator().get());
}

} // namespace v4rt::cuda
