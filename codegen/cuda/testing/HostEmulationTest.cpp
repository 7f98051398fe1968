// The CUDA host emulation itself (HostEmulation.h): built-in variables, block
// and warp primitives, atomics, dynamic shared memory fill and guard, wmma,
// and the errors it raises where the GPU would fault.
#include "codegen/cuda/testing/HostEmulation.h"

#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/Error.h"

namespace {

TEST(HostEmulation, ThreeDimensionalBlocksAndGridsCoverEveryThreadOnce) {
  const dim3 grid(3, 2, 2), block(4, 3, 2);
  std::vector<int> hits(3 * 2 * 2 * 4 * 3 * 2, 0);
  v4emu::launch(grid, block, 0, [&] {
    const unsigned blockId = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    const unsigned thread = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    atomicAdd(&hits[blockId * 24 + thread], 1);
  });
  for (int h : hits)
    EXPECT_EQ(h, 1);
}

TEST(HostEmulation, WarpShufflesBallotAndBlockVotes) {
  // 80 threads: two full warps and a partial one of 16 lanes.
  std::vector<float> xorSum(80), down(80), broadcast(80);
  std::vector<unsigned> ballots(80);
  std::vector<int> counts(80), ors(80), ands(80);
  v4emu::launch(dim3(1), dim3(80), 0, [&] {
    const int t = threadIdx.x;
    float v = static_cast<float>(t);
    for (int offset = 8; offset > 0; offset >>= 1) // sums within 16-lane segments
      v += __shfl_xor_sync(0xffffffffu, v, offset, 16);
    xorSum[t] = v;
    down[t] = __shfl_down_sync(0xffffffffu, static_cast<float>(t), 3);
    broadcast[t] = __shfl_sync(0xffffffffu, static_cast<float>(t) * 2.0f, 5);
    ballots[t] = __ballot_sync(0xffffffffu, t % 3 == 0);
    counts[t] = __syncthreads_count(t % 2 == 0);
    ors[t] = __syncthreads_or(t == 79);
    ands[t] = __syncthreads_and(t < 79);
  });
  for (int t = 0; t < 80; ++t) {
    const int segment = t / 16 * 16;
    EXPECT_EQ(xorSum[t], static_cast<float>(16 * segment + 120)) << t;
    const int lane = t % 32;
    if (t < 64 || lane + 3 < 16) // the partial warp's lanes 16..31 do not exist
      EXPECT_EQ(down[t], static_cast<float>(lane + 3 < 32 ? t + 3 : t)) << t;
    EXPECT_EQ(broadcast[t], static_cast<float>((t / 32 * 32 + 5) * 2)) << t;
    unsigned expected = 0;
    for (int l = 0; l < (t < 64 ? 32 : 16); ++l)
      if ((t / 32 * 32 + l) % 3 == 0)
        expected |= 1u << l;
    EXPECT_EQ(ballots[t], expected) << t;
    EXPECT_EQ(counts[t], 40);
    EXPECT_EQ(ors[t], 1);
    EXPECT_EQ(ands[t], 0);
  }
}

TEST(HostEmulation, ExitedThreadsLeaveTheBarriers) {
  std::vector<float> out(64, 0.0f);
  v4emu::launch(dim3(2), dim3(64), 0, [&] {
    if (threadIdx.x >= 40)
      return; // part of the second warp leaves before the barrier and the shuffle
    __syncthreads();
    const float v = __shfl_xor_sync(0xffffffffu, 1.0f, 1);
    if (blockIdx.x == 1)
      out[threadIdx.x] = v;
  });
  for (int t = 0; t < 40; ++t)
    EXPECT_EQ(out[t], 1.0f);
}

TEST(HostEmulation, WarpsExchangeWhileOtherWarpsWaitAtTheBlockBarrier) {
  // Warp 0 reduces with shuffles while warps 1..3 already wait at
  // __syncthreads; then every thread reads warp 0's sum.
  std::vector<float> seen(128, 0.0f);
  v4emu::launch(dim3(2), dim3(128), 0, [&] {
    __shared__ float total;
    if (threadIdx.x < 32) {
      float v = static_cast<float>(threadIdx.x + blockIdx.x);
      for (int offset = 16; offset > 0; offset >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, offset);
      if (threadIdx.x == 0)
        total = v;
    }
    __syncthreads();
    if (blockIdx.x == 1)
      seen[threadIdx.x] = total;
  });
  for (int t = 0; t < 128; ++t)
    EXPECT_EQ(seen[t], 496.0f + 32.0f) << t;
}

TEST(HostEmulation, DivergentBarriersFailNamingWhereThreadsWait) {
  // Half a warp at a shuffle, the other half at __syncthreads: a hang (or
  // undefined) on the GPU, an error naming both call sites here.
  try {
    v4emu::launch(dim3(1), dim3(32), 0, [] {
      if (threadIdx.x < 16)
        (void)__shfl_xor_sync(0xffffffffu, 1.0f, 1);
      else
        __syncthreads();
    });
    FAIL() << "a deadlocked block must throw";
  } catch (const v4c::Error &e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("deadlock in block (0,0,0)"), std::string::npos) << message;
    EXPECT_NE(message.find("threads 0-15 wait at __shfl_xor_sync at"), std::string::npos) << message;
    EXPECT_NE(message.find("threads 16-31 wait at __syncthreads at"), std::string::npos) << message;
    EXPECT_NE(message.find("HostEmulationTest.cpp"), std::string::npos) << message;
  }
  // Two warps at two different __syncthreads calls.
  try {
    v4emu::launch(dim3(1), dim3(64), 0, [] {
      if (threadIdx.x < 32)
        __syncthreads();
      else
        __syncthreads();
    });
    FAIL() << "divergent __syncthreads must throw";
  } catch (const v4c::Error &e) {
    EXPECT_NE(std::string(e.what()).find("divergent block barriers"), std::string::npos) << e.what();
  }
  // The emulation is usable again after a deadlock.
  int after = 0;
  v4emu::launch(dim3(1), dim3(32), 0, [&] {
    __syncthreads();
    if (threadIdx.x == 0)
      after = 1;
  });
  EXPECT_EQ(after, 1);
}

// Each call puts 4 KiB on the fiber's stack until the guard page stops it.
int deepRecursion(int depth) {
  volatile char frame[4096];
  frame[0] = static_cast<char>(depth);
  return depth > 0 ? deepRecursion(depth - 1) + frame[0] : frame[0];
}

TEST(HostEmulation, FiberStackOverflowIsReported) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(v4emu::launch(dim3(1), dim3(2), 0, [] { (void)deepRecursion(1 << 20); }),
               "CUDA thread \\(0,0,0\\) of block \\(0,0,0\\) overflowed its [0-9]+ KiB fiber stack");
}

TEST(HostEmulation, AtomicsSerialiseAcrossThreadsAndBlocks) {
  float sum = 0.0f;
  int maximum = -1, exchanged = 0;
  unsigned cas = 0;
  v4emu::launch(dim3(4), dim3(128), 0, [&] {
    const int t = blockIdx.x * 128 + threadIdx.x;
    atomicAdd(&sum, 1.0f);
    atomicMax(&maximum, t);
    atomicExch(&exchanged, 7);
    unsigned seen = atomicCAS(&cas, 0u, 1u);
    while (seen != 0u && atomicCAS(&cas, seen, seen + 1) != seen)
      seen = cas;
  });
  EXPECT_EQ(sum, 512.0f);
  EXPECT_EQ(maximum, 511);
  EXPECT_EQ(exchanged, 7);
  EXPECT_EQ(cas, 512u);
}

TEST(HostEmulation, DynamicSharedMemoryIsNaNFilledPerBlockAndGuarded) {
  std::vector<int> unwrittenWasNaN(3, 0);
  v4emu::launch(dim3(3), dim3(32), 256, [&] {
    float *shared = reinterpret_cast<float *>(v4cuda::v4cudaDenseShared);
    __syncthreads();
    if (threadIdx.x == 0)
      unwrittenWasNaN[blockIdx.x] = std::isnan(shared[63]) && std::isnan(shared[threadIdx.x]);
    __syncthreads();
    shared[threadIdx.x] = 1.0f; // written by every block: the next one must see NaN again
  });
  for (int b = 0; b < 3; ++b)
    EXPECT_EQ(unwrittenWasNaN[b], 1) << "block " << b;
  EXPECT_THROW(v4emu::launch(dim3(1), dim3(32), 64,
                             [&] { reinterpret_cast<float *>(v4cuda::moeShared)[16 + threadIdx.x] = 0.0f; }),
               v4c::Error);
  EXPECT_THROW(v4emu::launch(dim3(1), dim3(32), v4emu::kDynamicSharedCapacity + 1, [] {}), v4c::Error);
  EXPECT_THROW(v4emu::launch(dim3(1), dim3(2048), 0, [] {}), v4c::Error);
  EXPECT_THROW(v4emu::launch(dim3(1, 70000), dim3(32), 0, [] {}), v4c::Error);
}

TEST(HostEmulation, StaticSharedArraysAreOnePerBlock) {
  std::vector<int> sums(2);
  v4emu::launch(dim3(2), dim3(64), 0, [&] {
    __shared__ int partial[64];
    partial[threadIdx.x] = static_cast<int>(threadIdx.x + blockIdx.x);
    __syncthreads();
    if (threadIdx.x == 0)
      sums[blockIdx.x] = std::accumulate(partial, partial + 64, 0);
  });
  EXPECT_EQ(sums[0], 2016);
  EXPECT_EQ(sums[1], 2016 + 64);
}

TEST(HostEmulation, WmmaTilesComputeTheMatrixProduct) {
  using namespace nvcuda;
  // A [16 x 32] row-major, B [32 x 16] given as its transpose (col_major), in bf16.
  alignas(32) __nv_bfloat16 a[16 * 32], bT[16 * 32]; // tiles need 256-bit alignment
  std::vector<float> expected(16 * 16, 0.0f);
  for (int i = 0; i < 16 * 32; ++i) {
    a[i] = __float2bfloat16_rn(static_cast<float>((i * 7) % 13) - 6.0f);
    bT[i] = __float2bfloat16_rn(static_cast<float>((i * 5) % 11) - 5.0f);
  }
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j)
      for (int k = 0; k < 32; ++k)
        expected[i * 16 + j] += __bfloat162float(a[i * 32 + k]) * __bfloat162float(bT[j * 32 + k]);
  alignas(32) float out[16 * 16];
  std::fill(out, out + 256, -1.0f);
  v4emu::launch(dim3(1), dim3(32), 0, [&] {
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    wmma::fill_fragment(acc, 0.0f);
    for (int k = 0; k < 32; k += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> af;
      wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> bf;
      wmma::load_matrix_sync(af, a + k, 32);
      wmma::load_matrix_sync(bf, bT + k, 32);
      wmma::mma_sync(acc, af, bf, acc);
    }
    wmma::store_matrix_sync(out, acc, 16, wmma::mem_row_major);
  });
  for (int i = 0; i < 256; ++i)
    EXPECT_EQ(out[i], expected[i]) << i; // small integers: exact in any order
  // A tile pointer off 256-bit alignment faults on the GPU.
  EXPECT_THROW(v4emu::launch(dim3(1), dim3(32), 0,
                             [&] {
                               wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> af;
                               wmma::load_matrix_sync(af, a + 8, 32);
                             }),
               v4c::Error);
}

TEST(HostEmulation, MisalignedVectorLoadsFail) {
  alignas(16) float data[12] = {};
  EXPECT_THROW(v4emu::launch(dim3(1), dim3(1), 0,
                             [&] { (void)__ldg(reinterpret_cast<const uint4 *>(data + 1)); }),
               v4c::Error);
  v4emu::launch(dim3(1), dim3(1), 0, [&] { (void)__ldg(reinterpret_cast<const uint4 *>(data + 4)); });
}

} // namespace
