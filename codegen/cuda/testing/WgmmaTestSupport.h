// Shared by the wgmma emulation tests (WgmmaEmulationTest.cpp,
// WgmmaE4m3EmulationTest.cpp): one warpgroup running one batch of
// mma_asyncs on an A (64 rows) and B (N rows) tile pair in dynamic shared
// memory, through Wgmma.cuh's primitives.
#pragma once

#include "codegen/cuda/testing/HostEmulation.h"

#include <v4cuda/DenseMath.cuh>
#include <v4cuda/Wgmma.cuh>

#include <algorithm>
#include <cmath>
#include <vector>

namespace v4emu::testing {

// A 1024-aligned A tile of 64 rows and a B tile of N rows, 128 bytes each.
template <int N> constexpr size_t kWgmmaPairBytes = 1024 + (64 + N) * 128;

// `store(as, bs)` fills the tiles; after fence.proxy.async and a barrier,
// `issue(acc, as, bs)` issues mmas into acc (preset to 1000, which an mma
// with accumulate = false ignores) between wgmma.fence and commit + wait 0.
// Returns every thread's N / 2 accumulators, thread-major.
template <int N, class Store, class Issue> std::vector<float> runWarpgroupMmas(Store store, Issue issue) {
  std::vector<float> out(128 * (N / 2), std::nanf(""));
  v4emu::launch(dim3(1), dim3(128), kWgmmaPairBytes<N>, [&] {
    unsigned char *as = v4cuda::wgmmaAlignTile(v4cuda::denseSharedMemory()), *bs = as + 64 * 128;
    store(as, bs);
    v4cuda::fenceProxyAsync();
    __syncthreads();
    float acc[N / 2];
    for (float &v : acc)
      v = 1000.0f;
    v4cuda::wgmmaFence();
    issue(acc, as, bs);
    v4cuda::wgmmaCommitGroup();
    v4cuda::wgmmaWaitGroup<0>(acc);
    std::copy(acc, acc + N / 2, out.begin() + threadIdx.x * (N / 2));
  });
  return out;
}

} // namespace v4emu::testing
