// The wgmma emulation's e4m3 form (m64nNk32.f32.e4m3.e4m3) through
// Wgmma.cuh's wgmmaM64E4m3: the accumulator fragment layout, the k32 advance
// along a 128-byte swizzled row of codes (4 slices = one 128-wide group),
// every e4m3 code decoded as runtime/cpu/Quantization decodes it, NaN
// propagation, and the uniformity check telling the forms apart.
#include "codegen/cuda/testing/HostEmulation.h"
#include "codegen/cuda/testing/WgmmaTestSupport.h"

#include <v4cuda/DenseMath.cuh>
#include <v4cuda/Wgmma.cuh>

#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/Error.h"
#include "runtime/cpu/Quantization.h"

namespace {

using v4cuda::wgmmaDescriptor;
using v4emu::testing::kWgmmaPairBytes;
namespace quant = v4rt::quant;

// Small integers and halves, exact in e4m3: every product and sum below is
// exact in fp32, so the checks are exact whatever the summation order.
float aValue(int m, int k) { return static_cast<float>((m * 3 + k * 5) % 9 - 4) * 0.5f; }
float bValue(int n, int k) { return static_cast<float>((n * 5 + k * 7) % 11 - 5); }

// The PTX ISA's fragment of m64nNk32 f32 (as m64nNk16's; written out here,
// independently of wgmmaAccumulatorPosition).
int fragmentRow(int t, int element) { return 16 * (t / 32) + (t % 32) / 4 + 8 * ((element % 4) / 2); }
int fragmentCol(int t, int element) { return 8 * (element / 4) + 2 * (t % 32 % 4) + element % 2; }

// Stores the codes code(row, k), k < 128, of rows [0, rows) as a K-major tile
// of 128-byte swizzled rows at `tile`, 16-byte chunks spread over the threads.
template <class F> void storeCodes(unsigned char *tile, int rows, F code) {
  for (int chunk = static_cast<int>(threadIdx.x); chunk < rows * 8; chunk += static_cast<int>(blockDim.x)) {
    const int r = chunk / 8, c = chunk % 8;
    unsigned char packed[16];
    for (int q = 0; q < 16; ++q)
      packed[q] = code(r, 16 * c + q);
    std::memcpy(tile + v4cuda::wgmmaSwizzledOffset(r, c), packed, sizeof packed);
  }
}
// e4m3 codes of the integer-valued operands.
unsigned char aCode(int m, int k) { return quant::encodeE4M3(aValue(m, k)); }
unsigned char bCode(int n, int k) { return quant::encodeE4M3(bValue(n, k)); }

float dot(int row, int col, int k0, int k1) {
  float sum = 0.0f;
  for (int k = k0; k < k1; ++k)
    sum += aValue(row, k) * bValue(col, k);
  return sum;
}

// One m64nNk32 on the tiles' first k32 slice, accumulate = false.
template <int N> void singleMma(float (&acc)[N / 2], unsigned char *as, unsigned char *bs) {
  v4cuda::wgmmaM64E4m3<N>(acc, wgmmaDescriptor(as), wgmmaDescriptor(bs), false);
}

// One warpgroup: D = A * B over k slices [first, first + slices) of the
// row (each k32 slice 32 bytes on), accumulate chained; every element of
// every thread against the layout.
template <int N> void expectE4m3Product(int firstSlice, int slices) {
  const std::vector<float> out = v4emu::testing::runWarpgroupMmas<N>(
      [](unsigned char *as, unsigned char *bs) {
        storeCodes(as, 64, aCode);
        storeCodes(bs, N, bCode);
      },
      [&](float(&acc)[N / 2], unsigned char *as, unsigned char *bs) {
        for (int s = firstSlice; s < firstSlice + slices; ++s) // the first ignores acc's 1000s
          v4cuda::wgmmaM64E4m3<N>(acc, wgmmaDescriptor(as + 32 * s), wgmmaDescriptor(bs + 32 * s), s > firstSlice);
      });
  int bad = 0;
  for (int t = 0; t < 128; ++t)
    for (int i = 0; i < N / 2; ++i) {
      const int row = fragmentRow(t, i), col = fragmentCol(t, i);
      const v4cuda::WgmmaPosition p = v4cuda::wgmmaAccumulatorPosition(t, i);
      ASSERT_EQ(p.row, row);
      ASSERT_EQ(p.col, col);
      const float expected = dot(row, col, 32 * firstSlice, 32 * (firstSlice + slices));
      if (out[t * (N / 2) + i] != expected && ++bad <= 5)
        ADD_FAILURE() << "N " << N << " slices " << firstSlice << ".." << firstSlice + slices - 1 << " thread " << t
                      << " element " << i << " (D[" << row << "][" << col << "]) = " << out[t * (N / 2) + i]
                      << ", expected " << expected;
    }
  EXPECT_EQ(bad, 0);
}

TEST(WgmmaE4m3Emulation, FragmentFollowsThePtxLayoutN32) { expectE4m3Product<32>(0, 1); }
TEST(WgmmaE4m3Emulation, FragmentFollowsThePtxLayoutN64) { expectE4m3Product<64>(0, 1); }
TEST(WgmmaE4m3Emulation, FragmentFollowsThePtxLayoutN128) { expectE4m3Product<128>(0, 1); }
TEST(WgmmaE4m3Emulation, FragmentFollowsThePtxLayoutN256) { expectE4m3Product<256>(0, 1); }

// A k32 slice is 32 bytes of the swizzled row: slices 1 and 2 alone, and
// all four (one 128-wide group, what DenseWgmmaFp8.cuh issues per stage).
TEST(WgmmaE4m3Emulation, K32SlicesWalkTheSwizzledRow) {
  expectE4m3Product<64>(1, 2);
  expectE4m3Product<128>(0, 4);
}

// A known small product: D[m][n] = A[m][n % 32] (B picks one k per column),
// so the 64 x 32 codes of A come back decoded: all 254 non-NaN codes, each
// as runtime/cpu/Quantization's decodeE4M3 (the CPU spec) gives it.
TEST(WgmmaE4m3Emulation, EveryCodeDecodesAsTheCpuSpec) {
  constexpr int N = 64;
  auto code = [](int m, int k) -> unsigned char {
    const int c = (m * 32 + k) % 256;
    return c == 0x7F || c == 0xFF ? 0 : static_cast<unsigned char>(c); // NaN codes: below
  };
  const unsigned char one = quant::encodeE4M3(1.0f);
  const std::vector<float> out = v4emu::testing::runWarpgroupMmas<N>(
      [&](unsigned char *as, unsigned char *bs) {
        storeCodes(as, 64, code);
        storeCodes(bs, N, [&](int n, int k) -> unsigned char { return k == n % 32 ? one : 0; });
      },
      singleMma<N>);
  std::vector<bool> seen(256, false);
  for (int t = 0; t < 128; ++t)
    for (int i = 0; i < N / 2; ++i) {
      const int row = fragmentRow(t, i), col = fragmentCol(t, i);
      const unsigned char c = code(row, col % 32);
      seen[c] = true;
      ASSERT_EQ(out[t * (N / 2) + i], quant::decodeE4M3(c))
          << "code " << int(c) << " at D[" << row << "][" << col << "]";
    }
  int distinct = 0;
  for (bool s : seen)
    distinct += s;
  EXPECT_EQ(distinct, 254); // every code but the two NaNs
}

// A NaN code (0x7F, 0xFF) poisons its row's dot products; the others stay exact.
TEST(WgmmaE4m3Emulation, NanCodesPropagate) {
  constexpr int N = 32;
  const std::vector<float> out = v4emu::testing::runWarpgroupMmas<N>(
      [](unsigned char *as, unsigned char *bs) {
        storeCodes(as, 64, [](int m, int k) -> unsigned char {
          return m == 5 && k == 9 ? 0x7F : m == 40 && k == 0 ? 0xFF : aCode(m, k);
        });
        storeCodes(bs, N, bCode);
      },
      singleMma<N>);
  for (int t = 0; t < 128; ++t)
    for (int i = 0; i < N / 2; ++i) {
      const int row = fragmentRow(t, i), col = fragmentCol(t, i);
      if (row == 5 || row == 40)
        EXPECT_TRUE(std::isnan(out[t * (N / 2) + i])) << "D[" << row << "][" << col << "]";
      else
        EXPECT_EQ(out[t * (N / 2) + i], dot(row, col, 0, 32)) << "D[" << row << "][" << col << "]";
    }
}

// The e4m3 and bf16 forms are different calls: a thread that issues the
// other form breaks warpgroup uniformity (a different instruction on the GPU).
TEST(WgmmaE4m3Emulation, MixedFormsAreNotUniform) {
  std::string error;
  try {
    v4emu::launch(dim3(1), dim3(128), kWgmmaPairBytes<64>, [] {
      unsigned char *as = v4cuda::wgmmaAlignTile(v4cuda::denseSharedMemory()), *bs = as + 64 * 128;
      float acc[32] = {};
      v4cuda::wgmmaFence();
      if (threadIdx.x == 17)
        v4cuda::wgmmaM64<64>(acc, wgmmaDescriptor(as), wgmmaDescriptor(bs), false);
      else
        v4cuda::wgmmaM64E4m3<64>(acc, wgmmaDescriptor(as), wgmmaDescriptor(bs), false);
      v4cuda::wgmmaCommitGroup();
      v4cuda::wgmmaWaitGroup<0>(acc);
    });
  } catch (const v4c::Error &e) {
    error = e.what();
  }
  EXPECT_NE(error.find("must be warpgroup-uniform"), std::string::npos) << error;
  EXPECT_NE(error.find("e4m3 n64"), std::string::npos) << error;
}

} // namespace
