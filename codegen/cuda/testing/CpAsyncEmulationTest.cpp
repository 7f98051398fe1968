// The cp.async emulation (CpAsyncEmulation.h) through CpAsync.cuh's
// primitives: copies performed at the wait_group that retires their group,
// poison before, zero-fill, the errors a misuse raises, and a small
// cp.async -> wgmma pipeline whose mutations (wait_group N one too large, no
// barrier after the wait, no proxy fence, no zero-fill) each fail.
#include "codegen/cuda/testing/HostEmulation.h"

#include <v4cuda/CpAsync.cuh>
#include <v4cuda/DenseMath.cuh>
#include <v4cuda/Wgmma.cuh>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/Error.h"

namespace {

using bf16 = __nv_bfloat16;

// Runs `body` in one block of `threads` threads with `sharedBytes` of
// dynamic shared memory; returns the launch's error ("" when none).
template <class F> std::string launchError(unsigned threads, size_t sharedBytes, F body) {
  try {
    v4emu::launch(dim3(1), dim3(threads), sharedBytes, body);
  } catch (const v4c::Error &error) {
    return error.what();
  }
  return "";
}

// 16-byte aligned source rows: thread t's chunk holds bytes 16t + i.
struct alignas(16) Chunk16 {
  unsigned char bytes[16];
};
std::vector<Chunk16> sourceChunks(int count, int salt) {
  std::vector<Chunk16> chunks(count);
  for (int t = 0; t < count; ++t)
    for (int i = 0; i < 16; ++i)
      chunks[t].bytes[i] = static_cast<unsigned char>((t * 16 + i + salt) % 251);
  return chunks;
}

// Three groups per thread; each wait_group N lands exactly the older ones,
// reading the source at the wait (a source changed after issue is what lands).
TEST(CpAsyncEmulation, CopiesLandAtTheWaitThatRetiresTheirGroup) {
  constexpr int kThreads = 64;
  std::vector<Chunk16> first = sourceChunks(kThreads, 0), second = sourceChunks(kThreads, 7),
                       third = sourceChunks(kThreads, 13);
  std::vector<int> seen(kThreads * 4, -1); // per thread: byte 0 of each stage after each step
  const std::string error = launchError(kThreads, 3 * kThreads * 16, [&] {
    unsigned char *shared = v4cuda::denseSharedMemory();
    const unsigned t = threadIdx.x;
    unsigned char *stage[3] = {shared + 16 * t, shared + 16 * (kThreads + t), shared + 16 * (2 * kThreads + t)};
    v4cuda::cpAsync16(stage[0], &first[t], 16);
    v4cuda::cpAsyncCommitGroup();
    v4cuda::cpAsync16(stage[1], &second[t], 16);
    v4cuda::cpAsyncCommitGroup();
    v4cuda::cpAsync16(stage[2], &third[t], 16);
    v4cuda::cpAsyncCommitGroup();
    seen[4 * t] = stage[0][0]; // poisoned at issue
    first[t].bytes[0] = 200;   // before the wait: this is what lands
    v4cuda::cpAsyncWaitGroup<2>();
    seen[4 * t + 1] = stage[0][0];
    seen[4 * t + 2] = stage[1][0]; // still pending
    v4cuda::cpAsyncWaitGroup<0>();
    seen[4 * t + 3] = stage[2][0];
  });
  ASSERT_EQ(error, "");
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(seen[4 * t], 0xFF) << t;
    EXPECT_EQ(seen[4 * t + 1], 200) << t;
    EXPECT_EQ(seen[4 * t + 2], 0xFF) << t;
    EXPECT_EQ(seen[4 * t + 3], third[t].bytes[0]) << t;
  }
}

TEST(CpAsyncEmulation, SrcSizeBelowSixteenZeroFillsTheRest) {
  const std::vector<Chunk16> source = sourceChunks(3, 1);
  std::vector<unsigned char> landed(3 * 16);
  const std::string error = launchError(1, 3 * 16, [&] {
    unsigned char *shared = v4cuda::denseSharedMemory();
    v4cuda::cpAsync16(shared, &source[0], 0); // reads nothing
    v4cuda::cpAsync16(shared + 16, &source[1], 6);
    v4cuda::cpAsync16(shared + 32, &source[2], 16);
    v4cuda::cpAsyncCommitGroup();
    v4cuda::cpAsyncWaitGroup<0>();
    std::memcpy(landed.data(), shared, landed.size());
  });
  ASSERT_EQ(error, "");
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(landed[i], 0) << i;
    EXPECT_EQ(landed[16 + i], i < 6 ? source[1].bytes[i] : 0) << i;
    EXPECT_EQ(landed[32 + i], source[2].bytes[i]) << i;
  }
}

// Copies a wait_group never retired: the uncommitted ones, and everything at exit.
TEST(CpAsyncEmulation, PendingCopiesAtExitFailNamingTheCallSite) {
  const std::vector<Chunk16> source = sourceChunks(2, 0);
  std::string error = launchError(32, 64, [&] {
    v4cuda::cpAsync16(v4cuda::denseSharedMemory() + 16, &source[1], 16); // never waited for
  });
  EXPECT_NE(error.find("exited with 1 cp.async copies pending"), std::string::npos) << error;
  EXPECT_NE(error.find("CpAsyncEmulationTest.cpp:"), std::string::npos) << error;
  EXPECT_NE(error.find("never committed"), std::string::npos) << error;
  std::vector<int> byte(1, -1);
  error = launchError(1, 64, [&] {
    unsigned char *shared = v4cuda::denseSharedMemory();
    v4cuda::cpAsync16(shared, &source[0], 16);
    v4cuda::cpAsyncWaitGroup<0>(); // waits for committed groups only
    byte[0] = shared[0];
    v4cuda::cpAsyncCommitGroup();
  });
  EXPECT_EQ(byte[0], 0xFF);
  EXPECT_NE(error.find("no cp.async.wait_group retired its group"), std::string::npos) << error;
}

TEST(CpAsyncEmulation, RejectsMisalignedAddressesBadSizesAndForeignDestinations) {
  const std::vector<Chunk16> source = sourceChunks(2, 0);
  const auto *bytes = reinterpret_cast<const unsigned char *>(source.data());
  EXPECT_NE(launchError(1, 64, [&] { v4cuda::cpAsync16(v4cuda::denseSharedMemory() + 8, bytes, 16); })
                .find("shared destination is not 16-byte aligned"),
            std::string::npos);
  EXPECT_NE(launchError(1, 64, [&] { v4cuda::cpAsync16(v4cuda::denseSharedMemory(), bytes + 4, 16); })
                .find("global source is not 16-byte aligned"),
            std::string::npos);
  EXPECT_NE(launchError(1, 64, [&] { v4cuda::cpAsync16(v4cuda::denseSharedMemory(), bytes, 17); })
                .find("src-size 17 is not in 0..16"),
            std::string::npos);
  EXPECT_NE(launchError(1, 64, [&] { v4cuda::cpAsync16(v4cuda::denseSharedMemory() + 64, bytes, 16); })
                .find("not inside the launch's 64 bytes"),
            std::string::npos);
  alignas(16) static unsigned char notShared[16];
  EXPECT_NE(launchError(1, 64, [&] { v4cuda::cpAsync16(notShared, bytes, 16); }).find("not in dynamic shared memory"),
            std::string::npos);
}

// ---- a cp.async -> wgmma pipeline and its mutations ---------------------------------

enum class Mutation { None, WaitTooShallow, NoBarrier, NoProxyFence, NoZeroFill };

// D[64 x 64] = A[64 x K] B[64 x K]^T, K = 180 in 3 steps of 64 (the last one
// ragged inside a chunk: 4 of its 8 elements), rows kLd = 192 apart whose
// tail (k >= 180) holds NaN. 3 stages, one step copied ahead (the tile's
// scheme, DenseWgmma.cuh), one warpgroup.
constexpr int kRows = 64, kLd = 192, kK = 180, kSteps = 3, kStages = 3;

float aValue(int m, int k) { return static_cast<float>((m * 3 + k * 5) % 7 - 3); }
float bValue(int n, int k) { return static_cast<float>((n * 5 + k * 3) % 9 - 4); }

std::vector<bf16> operandRows(float (*value)(int, int)) {
  std::vector<bf16> rows(kRows * kLd);
  for (int r = 0; r < kRows; ++r)
    for (int k = 0; k < kLd; ++k)
      rows[r * kLd + k] = __float2bfloat16_rn(k < kK ? value(r, k) : std::nanf(""));
  return rows;
}

template <Mutation M> std::string runPipeline(std::vector<float> &out) {
  const std::vector<bf16> a = operandRows(aValue), b = operandRows(bValue);
  out.assign(kRows * kRows, std::nanf(""));
  constexpr int kStageBytes = kRows * 128;
  return launchError(128, 1024 + 2 * kStages * kStageBytes, [&] {
    unsigned char *as = v4cuda::wgmmaAlignTile(v4cuda::denseSharedMemory()), *bs = as + kStages * kStageBytes;
    const auto fill = [&](int step) {
      for (int i = 0; i < 4; ++i) {
        const int chunk = static_cast<int>(threadIdx.x) + 128 * i, r = chunk / 8, c = chunk % 8, k = step * 64 + 8 * c;
        const int bytes = M == Mutation::NoZeroFill ? 16 : std::clamp((kK - k) * 2, 0, 16);
        const int offset = (step % kStages) * kStageBytes + v4cuda::wgmmaSwizzledOffset(r, c);
        v4cuda::cpAsync16(as + offset, &a[r * kLd + (bytes > 0 ? k : 0)], bytes);
        v4cuda::cpAsync16(bs + offset, &b[r * kLd + (bytes > 0 ? k : 0)], bytes);
      }
    };
    fill(0);
    v4cuda::cpAsyncCommitGroup();
    __syncthreads(); // every thread's first copies are issued (so a missing barrier below meets them)
    float acc[32] = {};
    for (int s = 0; s < kSteps; ++s) {
      v4cuda::cpAsyncWaitGroup<M == Mutation::WaitTooShallow ? 1 : 0>();
      if (M != Mutation::NoProxyFence)
        v4cuda::fenceProxyAsync();
      if (M != Mutation::NoBarrier)
        __syncthreads();
      v4cuda::wgmmaFence();
      for (int kk = 0; kk < 4; ++kk)
        v4cuda::wgmmaM64<64>(acc, v4cuda::wgmmaDescriptor(as + (s % kStages) * kStageBytes + 32 * kk),
                             v4cuda::wgmmaDescriptor(bs + (s % kStages) * kStageBytes + 32 * kk), s > 0 || kk > 0);
      v4cuda::wgmmaCommitGroup();
      if (s + 1 < kSteps)
        fill(s + 1);
      v4cuda::cpAsyncCommitGroup();
      v4cuda::wgmmaWaitGroup<1>(acc);
    }
    v4cuda::wgmmaWaitGroup<0>(acc);
    v4cuda::cpAsyncWaitGroup<0>();
    for (int i = 0; i < 32; ++i) {
      const v4cuda::WgmmaPosition p = v4cuda::wgmmaAccumulatorPosition(static_cast<int>(threadIdx.x), i);
      out[p.row * kRows + p.col] = acc[i];
    }
  });
}

// Small integers: exact in fp32 whatever the order.
int mismatches(const std::vector<float> &out) {
  int bad = 0;
  for (int m = 0; m < kRows; ++m)
    for (int n = 0; n < kRows; ++n) {
      float expected = 0.0f;
      for (int k = 0; k < kK; ++k)
        expected += aValue(m, k) * bValue(n, k);
      bad += !(out[m * kRows + n] == expected);
    }
  return bad;
}

TEST(CpAsyncEmulation, PipelineIntoWgmmaMatchesTheProduct) {
  std::vector<float> out;
  ASSERT_EQ(runPipeline<Mutation::None>(out), "");
  EXPECT_EQ(mismatches(out), 0);
}

TEST(CpAsyncEmulation, MutationWaitingForTooFewGroupsFails) {
  std::vector<float> out;
  const std::string error = runPipeline<Mutation::WaitTooShallow>(out);
  EXPECT_NE(error.find("wgmma.mma_async"), std::string::npos) << error;
  EXPECT_NE(error.find("that no cp.async.wait_group of that thread has retired"), std::string::npos) << error;
}

TEST(CpAsyncEmulation, MutationNoBarrierAfterTheWaitFails) {
  std::vector<float> out;
  const std::string error = runPipeline<Mutation::NoBarrier>(out);
  // Thread 0 meets thread 1's copies before thread 1 has even waited.
  EXPECT_NE(error.find("that no cp.async.wait_group of that thread has retired"), std::string::npos) << error;
  EXPECT_NE(error.find("missing __syncthreads"), std::string::npos) << error;
}

TEST(CpAsyncEmulation, MutationNoProxyFenceFails) {
  std::vector<float> out;
  const std::string error = runPipeline<Mutation::NoProxyFence>(out);
  EXPECT_NE(error.find("ran no fence.proxy.async between its cp.async.wait_group and the barrier"), std::string::npos)
      << error;
}

TEST(CpAsyncEmulation, MutationNoZeroFillGivesWrongValues) {
  std::vector<float> out;
  ASSERT_EQ(runPipeline<Mutation::NoZeroFill>(out), ""); // legal, but reads the rows' NaN tail
  EXPECT_EQ(mismatches(out), kRows * kRows);
}

// A copying thread sees its own copy after its wait; another thread, only
// after a barrier (a wgmma issued in between by warpgroup 1 fails).
TEST(CpAsyncEmulation, CopiesOfOneWarpgroupNeedABarrierBeforeTheOthersMma) {
  const std::vector<bf16> b = operandRows(bValue);
  const std::string error = launchError(256, 1024 + 2 * kRows * 128, [&] {
    unsigned char *tile = v4cuda::wgmmaAlignTile(v4cuda::denseSharedMemory());
    const int t = static_cast<int>(threadIdx.x);
    if (t < 128) // warpgroup 0 copies both operands, 8 chunks per thread
      for (int i = 0; i < 8; ++i) {
        const int chunk = t + 128 * i, r = chunk / 8 % kRows, c = chunk % 8;
        v4cuda::cpAsync16(tile + (chunk / 512) * kRows * 128 + v4cuda::wgmmaSwizzledOffset(r, c), &b[r * kLd + 8 * c],
                          16);
      }
    v4cuda::cpAsyncCommitGroup();
    v4cuda::cpAsyncWaitGroup<0>();
    v4cuda::fenceProxyAsync();
    if (t >= 128) { // warpgroup 1, without the barrier
      float acc[32] = {};
      v4cuda::wgmmaFence();
      v4cuda::wgmmaM64<64>(acc, v4cuda::wgmmaDescriptor(tile), v4cuda::wgmmaDescriptor(tile + kRows * 128), false);
      v4cuda::wgmmaCommitGroup();
      v4cuda::wgmmaWaitGroup<0>(acc);
    }
  });
  EXPECT_NE(error.find("with no __syncthreads since that thread's cp.async.wait_group"), std::string::npos) << error;
}

} // namespace
