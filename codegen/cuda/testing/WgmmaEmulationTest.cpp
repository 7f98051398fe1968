// The wgmma emulation (WgmmaEmulation.h) through Wgmma.cuh's primitives:
// the m64nNk16 accumulator fragment layout, the 128-byte swizzle and the k16
// advance along a swizzled row, execution deferred to wait_group, and the
// errors a misuse raises (each would be wrong results or a fault on the GPU).
#include "codegen/cuda/testing/HostEmulation.h"
#include "codegen/cuda/testing/WgmmaTestSupport.h"

#include <v4cuda/DenseMath.cuh>
#include <v4cuda/Wgmma.cuh>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/Error.h"

namespace {

using bf16 = __nv_bfloat16;
using v4cuda::wgmmaDescriptor;
using v4emu::testing::kWgmmaPairBytes;

// Small integers: every product and sum is exact in fp32, so the checks are
// exact whatever the summation order.
float aValue(int m, int k) { return static_cast<float>((m * 3 + k * 5) % 7 - 3); }
float aOther(int m, int k) { return static_cast<float>((m + k * 2) % 5 - 1); }
float bValue(int n, int k) { return static_cast<float>((n * 5 + k * 3) % 9 - 4); }

// The fragment layout as the PTX ISA draws it for m64nNk16 f32 (written out
// here, independently of wgmmaAccumulatorPosition): element 4j + q of thread
// t (warp w, lane l) is D[16w + l/4 + 8(q/2)][8j + 2(l%4) + q%2].
int fragmentRow(int t, int element) {
  const int w = t / 32, l = t % 32, q = element % 4;
  return 16 * w + l / 4 + 8 * (q / 2);
}
int fragmentCol(int t, int element) {
  const int l = t % 32, j = element / 4, q = element % 4;
  return 8 * j + 2 * (l % 4) + q % 2;
}

// Stores value(row, k), k < 64, of rows [0, rows) as a K-major tile of
// 128-byte swizzled rows at `tile`, 16-byte chunks spread over the threads.
template <class F> void storeTile(unsigned char *tile, int rows, F value) {
  for (int chunk = static_cast<int>(threadIdx.x); chunk < rows * 8; chunk += static_cast<int>(blockDim.x)) {
    const int r = chunk / 8, c = chunk % 8;
    bf16 packed[8];
    for (int q = 0; q < 8; ++q)
      packed[q] = __float2bfloat16_rn(value(r, 8 * c + q));
    std::memcpy(tile + v4cuda::wgmmaSwizzledOffset(r, c), packed, sizeof packed);
  }
}

template <class FA> float dot(FA a, int row, int col, int k0, int k1) {
  float sum = 0.0f;
  for (int k = k0; k < k1; ++k)
    sum += a(row, k) * bValue(col, k);
  return sum;
}


// One warpgroup, one m64nNk16 on the tile's first k16 slice; every thread's
// every accumulator element against the fragment layout.
template <int N> void expectFragmentLayout() {
  const std::vector<float> out = v4emu::testing::runWarpgroupMmas<N>(
      [](unsigned char *as, unsigned char *bs) {
        storeTile(as, 64, aValue);
        storeTile(bs, N, bValue);
      },
      [](float(&acc)[N / 2], unsigned char *as, unsigned char *bs) {
        v4cuda::wgmmaM64<N>(acc, wgmmaDescriptor(as), wgmmaDescriptor(bs), false);
      });
  int bad = 0;
  for (int t = 0; t < 128; ++t)
    for (int i = 0; i < N / 2; ++i) {
      const int row = fragmentRow(t, i), col = fragmentCol(t, i);
      const v4cuda::WgmmaPosition p = v4cuda::wgmmaAccumulatorPosition(t, i);
      ASSERT_EQ(p.row, row) << "thread " << t << " element " << i;
      ASSERT_EQ(p.col, col) << "thread " << t << " element " << i;
      const float expected = dot(aValue, row, col, 0, 16);
      if (out[t * (N / 2) + i] != expected && ++bad <= 5)
        ADD_FAILURE() << "N " << N << " thread " << t << " element " << i << " (D[" << row << "][" << col
                      << "]) = " << out[t * (N / 2) + i] << ", expected " << expected;
    }
}

TEST(WgmmaEmulation, AccumulatorFragmentFollowsThePtxLayoutN64) { expectFragmentLayout<64>(); }
TEST(WgmmaEmulation, AccumulatorFragmentFollowsThePtxLayoutN128) { expectFragmentLayout<128>(); }
TEST(WgmmaEmulation, AccumulatorFragmentFollowsThePtxLayoutN256) { expectFragmentLayout<256>(); }

// The four k16 slices of a 64-wide swizzled row: the descriptor start
// advances 32 bytes per slice, chained mmas accumulate.
TEST(WgmmaEmulation, KAdvanceWalksTheSwizzledRow) {
  constexpr int N = 64;
  std::vector<float> out(128 * (N / 2)), firstSlices(128 * (N / 2));
  v4emu::launch(dim3(1), dim3(128), kWgmmaPairBytes<N>, [&] {
    unsigned char *as = v4cuda::wgmmaAlignTile(v4cuda::denseSharedMemory()), *bs = as + 64 * 128;
    storeTile(as, 64, aValue);
    storeTile(bs, N, bValue);
    v4cuda::fenceProxyAsync();
    __syncthreads();
    float acc[N / 2], partial[N / 2];
    v4cuda::wgmmaFence();
    for (int kk = 0; kk < 4; ++kk)
      v4cuda::wgmmaM64<N>(acc, wgmmaDescriptor(as + 32 * kk), wgmmaDescriptor(bs + 32 * kk), kk > 0);
    // Slices 1 and 2 alone, on other accumulators: 32 and 64 bytes in.
    v4cuda::wgmmaM64<N>(partial, wgmmaDescriptor(as + 32), wgmmaDescriptor(bs + 32), false);
    v4cuda::wgmmaM64<N>(partial, wgmmaDescriptor(as + 64), wgmmaDescriptor(bs + 64), true);
    v4cuda::wgmmaCommitGroup();
    v4cuda::wgmmaWaitGroup<0>(acc);
    std::copy(acc, acc + N / 2, out.begin() + threadIdx.x * (N / 2));
    std::copy(partial, partial + N / 2, firstSlices.begin() + threadIdx.x * (N / 2));
  });
  for (int t = 0; t < 128; ++t)
    for (int i = 0; i < N / 2; ++i) {
      const int row = fragmentRow(t, i), col = fragmentCol(t, i);
      ASSERT_EQ(out[t * (N / 2) + i], dot(aValue, row, col, 0, 64)) << "thread " << t << " element " << i;
      ASSERT_EQ(firstSlices[t * (N / 2) + i], dot(aValue, row, col, 16, 48)) << "thread " << t << " element " << i;
    }
}

// An mma reads shared memory when it completes, not when it is issued: a
// stage overwritten before the wait is what it computes with (the bug a
// kernel must avoid shows up here as on the GPU).
TEST(WgmmaEmulation, ExecutionIsDeferredToTheWaitThatRetiresIt) {
  constexpr int N = 64;
  std::vector<float> out(128 * (N / 2)), retired(128 * (N / 2));
  v4emu::launch(dim3(1), dim3(128), kWgmmaPairBytes<N>, [&] {
    unsigned char *as = v4cuda::wgmmaAlignTile(v4cuda::denseSharedMemory()), *bs = as + 64 * 128;
    storeTile(as, 64, aValue);
    storeTile(bs, N, bValue);
    __syncthreads();
    float acc[N / 2], early[N / 2];
    v4cuda::wgmmaFence();
    v4cuda::wgmmaM64<N>(early, wgmmaDescriptor(as), wgmmaDescriptor(bs), false);
    v4cuda::wgmmaCommitGroup();
    v4cuda::wgmmaM64<N>(acc, wgmmaDescriptor(as), wgmmaDescriptor(bs), false);
    v4cuda::wgmmaCommitGroup();
    v4cuda::wgmmaWaitGroup<1>(early); // retires the first group only
    __syncthreads();
    storeTile(as, 64, aOther); // too early for the second mma
    __syncthreads();
    v4cuda::wgmmaWaitGroup<0>(acc);
    std::copy(acc, acc + N / 2, out.begin() + threadIdx.x * (N / 2));
    std::copy(early, early + N / 2, retired.begin() + threadIdx.x * (N / 2));
  });
  for (int t = 0; t < 128; ++t)
    for (int i = 0; i < N / 2; ++i) {
      const int row = fragmentRow(t, i), col = fragmentCol(t, i);
      ASSERT_EQ(retired[t * (N / 2) + i], dot(aValue, row, col, 0, 16)) << "thread " << t << " element " << i;
      ASSERT_EQ(out[t * (N / 2) + i], dot(aOther, row, col, 0, 16)) << "thread " << t << " element " << i;
    }
}

// The message of the launch's error ("" if none).
std::string launchError(unsigned threads, size_t sharedBytes, const std::function<void()> &body) {
  try {
    v4emu::launch(dim3(1), dim3(threads), sharedBytes, body);
  } catch (const v4c::Error &error) {
    return error.what();
  }
  return "";
}

// A warpgroup's m64n64k16 with `misuse` run between its issue and its wait.
std::string errorOfMisuse(const std::function<void(float (&)[32])> &misuse) {
  return launchError(128, kWgmmaPairBytes<64>, [&] {
    unsigned char *as = v4cuda::wgmmaAlignTile(v4cuda::denseSharedMemory()), *bs = as + 64 * 128;
    storeTile(as, 64, aValue);
    storeTile(bs, 64, bValue);
    __syncthreads();
    float acc[32] = {};
    v4cuda::wgmmaFence();
    v4cuda::wgmmaM64<64>(acc, wgmmaDescriptor(as), wgmmaDescriptor(bs), true);
    misuse(acc);
    v4cuda::wgmmaCommitGroup();
    v4cuda::wgmmaWaitGroup<0>(acc);
  });
}

TEST(WgmmaEmulation, AccumulatorsArePoisonedUntilTheWait) {
  std::vector<float> seen(128);
  EXPECT_EQ(errorOfMisuse([&](float(&acc)[32]) { seen[threadIdx.x] = acc[5]; }), "");
  for (float v : seen)
    EXPECT_TRUE(std::isnan(v)) << v;
  const std::string written = errorOfMisuse([](float(&acc)[32]) { acc[3] = 0.0f; });
  EXPECT_NE(written.find("were written before this wait retired it"), std::string::npos) << written;
  EXPECT_NE(written.find("WgmmaEmulationTest.cpp"), std::string::npos) << written;
}

TEST(WgmmaEmulation, CallsMustBeWarpgroupUniform) {
  const std::string skipped = errorOfMisuse([](float(&)[32]) {
    if (threadIdx.x == 7)
      v4cuda::wgmmaCommitGroup();
  });
  EXPECT_NE(skipped.find("must be warpgroup-uniform"), std::string::npos) << skipped;
  const std::string descriptors = launchError(128, kWgmmaPairBytes<64>, [] {
    unsigned char *as = v4cuda::wgmmaAlignTile(v4cuda::denseSharedMemory()), *bs = as + 64 * 128;
    float acc[32] = {};
    v4cuda::wgmmaFence();
    v4cuda::wgmmaM64<64>(acc, wgmmaDescriptor(threadIdx.x == 70 ? as + 32 : as), wgmmaDescriptor(bs), false);
    v4cuda::wgmmaCommitGroup();
    v4cuda::wgmmaWaitGroup<0>();
  });
  EXPECT_NE(descriptors.find("must be warpgroup-uniform"), std::string::npos) << descriptors;
  const std::string incomplete = launchError(96, kWgmmaPairBytes<64>, [] { v4cuda::wgmmaFence(); });
  EXPECT_NE(incomplete.find("is incomplete"), std::string::npos) << incomplete;
}

TEST(WgmmaEmulation, MisusedDescriptorsAndOrderingFailTheLaunch) {
  // No fence before the mma.
  const std::string unfenced = launchError(128, kWgmmaPairBytes<64>, [] {
    unsigned char *as = v4cuda::wgmmaAlignTile(v4cuda::denseSharedMemory()), *bs = as + 64 * 128;
    float acc[32] = {};
    v4cuda::wgmmaM64<64>(acc, wgmmaDescriptor(as), wgmmaDescriptor(bs), false);
  });
  EXPECT_NE(unfenced.find("no wgmma.fence"), std::string::npos) << unfenced;
  // The tile not rounded up to 1024: dynamic shared memory starts 384 bytes
  // into a swizzle period, so the swizzle would not match the stores.
  const std::string unaligned = launchError(128, kWgmmaPairBytes<64>, [] {
    unsigned char *as = v4cuda::denseSharedMemory(), *bs = as + 64 * 128;
    float acc[32] = {};
    v4cuda::wgmmaFence();
    v4cuda::wgmmaM64<64>(acc, wgmmaDescriptor(as), wgmmaDescriptor(bs), false);
  });
  EXPECT_NE(unaligned.find("of its 1024-byte swizzle period"), std::string::npos) << unaligned;
  // A k offset that leaves the 128-byte row.
  const std::string pastRow = launchError(128, kWgmmaPairBytes<64>, [] {
    unsigned char *as = v4cuda::wgmmaAlignTile(v4cuda::denseSharedMemory()), *bs = as + 64 * 128;
    float acc[32] = {};
    v4cuda::wgmmaFence();
    v4cuda::wgmmaM64<64>(acc, wgmmaDescriptor(as + 112), wgmmaDescriptor(bs), false);
  });
  EXPECT_NE(pastRow.find("of its 1024-byte swizzle period"), std::string::npos) << pastRow;
  // B's 64 rows past the launch's dynamic shared bytes.
  const std::string outside = launchError(128, 1024 + 64 * 128, [] {
    unsigned char *as = v4cuda::wgmmaAlignTile(v4cuda::denseSharedMemory()), *bs = as + 64 * 128;
    float acc[32] = {};
    v4cuda::wgmmaFence();
    v4cuda::wgmmaM64<64>(acc, wgmmaDescriptor(as), wgmmaDescriptor(bs), false);
  });
  EXPECT_NE(outside.find("outside the launch's dynamic shared memory"), std::string::npos) << outside;
  // Another swizzle mode (64B: 2 in bits 62-63).
  const std::string swizzle = launchError(128, kWgmmaPairBytes<64>, [] {
    unsigned char *as = v4cuda::wgmmaAlignTile(v4cuda::denseSharedMemory()), *bs = as + 64 * 128;
    float acc[32] = {};
    v4cuda::wgmmaFence();
    const uint64_t a = wgmmaDescriptor(as), b = wgmmaDescriptor(bs);
    v4cuda::wgmmaM64<64>(acc, (a & ~(uint64_t(3) << 62)) | (uint64_t(2) << 62), b, false);
  });
  EXPECT_NE(swizzle.find("swizzle mode 2"), std::string::npos) << swizzle;
  // Issued and committed, never waited for.
  const std::string unretired = launchError(128, kWgmmaPairBytes<64>, [] {
    unsigned char *as = v4cuda::wgmmaAlignTile(v4cuda::denseSharedMemory()), *bs = as + 64 * 128;
    float acc[32] = {};
    v4cuda::wgmmaFence();
    v4cuda::wgmmaM64<64>(acc, wgmmaDescriptor(as), wgmmaDescriptor(bs), false);
    v4cuda::wgmmaCommitGroup();
  });
  EXPECT_NE(unretired.find("was never retired"), std::string::npos) << unretired;
  // An operand outside dynamic shared memory.
  const std::string local = launchError(128, kWgmmaPairBytes<64>, [] {
    static unsigned char notShared[2048];
    (void)wgmmaDescriptor(notShared);
  });
  EXPECT_NE(local.find("not in dynamic shared memory"), std::string::npos) << local;
}

} // namespace
