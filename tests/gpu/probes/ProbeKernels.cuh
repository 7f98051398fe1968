// The primitive probes' kernels (v4probe-primitives): one small body per
// fact of Wgmma.cuh / CpAsync.cuh, written once and compiled twice: by nvcc
// for sm_90a (ProbeDevice.cu, the device half) and by the host compiler
// under the host emulation (ProbeEmulated.cpp), so the two halves run the
// SAME code and a difference is the emulation's reading of the PTX ISA.
// Include after HostEmulation.h (emulated) or alone (nvcc).
#pragma once

#include <stdint.h>

#include <v4cuda/CpAsync.cuh>
#include <v4cuda/DenseLinear.cuh>
#include <v4cuda/MoeWgmma.cuh>
#include <v4cuda/Quant.cuh>
#include <v4cuda/Wgmma.cuh>

#include "tests/gpu/probes/ProbeShapes.h"

// The two halves' copies of these bodies get different symbols (they are
// different code: device vs emulated primitives), so the linker can never
// pick one half's function for the other.
#if defined(V4EMU_HOST_EMULATION)
#define V4PROBE_HALF emulated_half
#else
#define V4PROBE_HALF device_half
#endif

namespace v4probe {
inline namespace V4PROBE_HALF {

// The shared address of `p` (in dynamic shared memory), as the swizzle sees it.
__device__ __forceinline__ uint32_t sharedAddressOf(const void *p) {
#if defined(V4EMU_HOST_EMULATION)
  return v4emu::wgmma::sharedAddress(p, std::source_location::current());
#elif defined(__CUDA_ARCH__)
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
#else
  return 0;
#endif
}

// Copies `rows` operand rows of 128 bytes from global [rows][128] into the
// K-major 128-byte-swizzled layout at `tile` (facts 1-2 of Wgmma.cuh): row r
// at tile + r * 128, its 16-byte chunk c at chunk c ^ ((address of the row
// >> 7) & 7), i.e. the XOR anchored on the SHARED address (for a 1024-aligned
// tile, wgmmaSwizzledOffset). CP_ASYNC: through cp.async (16-byte copies,
// waited for, then fence.proxy.async: CpAsync.cuh facts 2-4), else plain
// 16-byte stores (+ the same proxy fence). Ends with a barrier.
template <bool CP_ASYNC>
__device__ __forceinline__ void loadSwizzled(unsigned char *tile, const unsigned char *global, int rows) {
  const uint32_t base = sharedAddressOf(tile);
  for (int i = threadIdx.x; i < rows * 8; i += blockDim.x) {
    const int r = i / 8, c = i % 8;
    const uint32_t rowAddress = base + static_cast<uint32_t>(r) * kRowBytes;
    unsigned char *dst = tile + r * kRowBytes + ((c ^ ((rowAddress >> 7) & 7)) << 4);
    const unsigned char *src = global + r * kRowBytes + c * 16;
    if constexpr (CP_ASYNC)
      v4cuda::cpAsync16(dst, src, 16);
    else
      *reinterpret_cast<uint4 *>(dst) = *reinterpret_cast<const uint4 *>(src);
  }
  if constexpr (CP_ASYNC) {
    v4cuda::cpAsyncCommitGroup();
    v4cuda::cpAsyncWaitGroup<0>();
  }
  v4cuda::fenceProxyAsync();
  __syncthreads();
}

template <int N, bool E4M3>
__device__ __forceinline__ void mmaSlice(float (&acc)[N / 2], const unsigned char *a, const unsigned char *b, int slice,
                                         bool accumulate) {
  const uint64_t descA = v4cuda::wgmmaDescriptor(a + slice * kSliceBytes);
  const uint64_t descB = v4cuda::wgmmaDescriptor(b + slice * kSliceBytes);
  if constexpr (E4M3)
    v4cuda::wgmmaM64E4m3<N>(acc, descA, descB, accumulate);
  else
    v4cuda::wgmmaM64<N>(acc, descA, descB, accumulate);
}

template <int N> __device__ __forceinline__ void storeFragment(const float (&acc)[N / 2], float *out) {
  for (int i = 0; i < N / 2; ++i)
    out[threadIdx.x * (N / 2) + i] = acc[i];
}

// One warpgroup (128 threads): A [64 x 128 bytes] and B [N x 128 bytes]
// into shared tiles at a 1024-aligned shared address + startOffset, then
// the mma(s) of `mode` (ProbeShapes.h); writes the raw accumulator fragments
// (thread t's element i at out[t * N / 2 + i]; kWaitGroup: two fragments).
template <int N, bool E4M3, bool CP_ASYNC>
__device__ void wgmmaProbe(const unsigned char *a, const unsigned char *b, float *out, int slice, int mode,
                           int startOffset) {
  unsigned char *tileA = v4cuda::wgmmaAlignTile(v4cuda::denseSharedMemory()) + startOffset;
  unsigned char *tileB = tileA + kRowsA * kRowBytes;
  loadSwizzled<CP_ASYNC>(tileA, a, kRowsA);
  loadSwizzled<CP_ASYNC>(tileB, b, N);
  float acc[N / 2];
  const float preset = mode == kOverwrite ? kOverwriteSentinel : mode == kAccumulate ? kAccumulateBase : 0.0f;
  for (int i = 0; i < N / 2; ++i)
    acc[i] = preset;
  if (mode == kWaitGroup) {
    // Two groups; wait_group 1 must retire the first (and may leave the second).
    float second[N / 2];
    for (int i = 0; i < N / 2; ++i)
      second[i] = 0.0f;
    v4cuda::wgmmaFence();
    mmaSlice<N, E4M3>(acc, tileA, tileB, 0, false);
    v4cuda::wgmmaCommitGroup();
    mmaSlice<N, E4M3>(second, tileA, tileB, 1, false);
    v4cuda::wgmmaCommitGroup();
    v4cuda::wgmmaWaitGroup<1>(acc);
    storeFragment<N>(acc, out);
    v4cuda::wgmmaWaitGroup<0>(second);
    storeFragment<N>(second, out + kWgmmaThreadsProbe * (N / 2));
    return;
  }
  v4cuda::wgmmaFence();
  if (mode == kChain) {
    for (int s = 0; s < kSlices; ++s)
      mmaSlice<N, E4M3>(acc, tileA, tileB, s, s > 0);
  } else {
    mmaSlice<N, E4M3>(acc, tileA, tileB, slice, mode == kAccumulate);
  }
  v4cuda::wgmmaCommitGroup();
  v4cuda::wgmmaWaitGroup<0>(acc);
  storeFragment<N>(acc, out);
}

// cp.async zero-fill (CpAsync.cuh fact 1) and visibility to other threads
// after wait_group + barrier (fact 3): thread t pre-fills its 16 shared
// bytes with kPoisonByte, copies the first t % 17 bytes of its src chunk,
// waits; after a barrier thread t stores thread (t + 1) % 128's chunk.
__device__ void cpAsyncZeroFillProbe(const unsigned char *src, unsigned char *out) {
  unsigned char *shared = v4cuda::denseSharedMemory();
  const int t = threadIdx.x;
  for (int i = 0; i < 16; ++i)
    shared[t * 16 + i] = kPoisonByte;
  __syncthreads();
  v4cuda::cpAsync16(shared + t * 16, src + t * 16, zeroFillSourceBytes(t));
  v4cuda::cpAsyncCommitGroup();
  v4cuda::cpAsyncWaitGroup<0>();
  __syncthreads();
  const int from = (t + 1) % kCpAsyncThreads;
  *reinterpret_cast<uint4 *>(out + t * 16) = *reinterpret_cast<const uint4 *>(shared + from * 16);
}

// cp.async groups (fact 2): an empty group, then three one-copy groups;
// wait_group 2 must have completed the empty group and the first copy,
// wait_group 1 the second, wait_group 0 the third. Each thread reads its own
// chunks (issuing-thread visibility) right after the wait that retires them.
__device__ void cpAsyncGroupsProbe(const unsigned char *src, unsigned char *out) {
  unsigned char *shared = v4cuda::denseSharedMemory();
  const int t = threadIdx.x;
  v4cuda::cpAsyncCommitGroup(); // empty: completes at once
  for (int g = 0; g < 3; ++g) {
    v4cuda::cpAsync16(shared + (g * kCpAsyncThreads + t) * 16, src + (g * kCpAsyncThreads + t) * 16, 16);
    v4cuda::cpAsyncCommitGroup();
  }
  auto take = [&](int g) {
    *reinterpret_cast<uint4 *>(out + (g * kCpAsyncThreads + t) * 16) =
        *reinterpret_cast<const uint4 *>(shared + (g * kCpAsyncThreads + t) * 16);
  };
  v4cuda::cpAsyncWaitGroup<2>();
  take(0);
  v4cuda::cpAsyncWaitGroup<1>();
  take(1);
  v4cuda::cpAsyncWaitGroup<0>();
  take(2);
}

// The dense tiles at their probe shapes (ProbeShapes.h), as the drivers
// (DenseLinear.cuh matmulGemm, MMA = 2) run them.
__device__ __forceinline__ void denseBf16TileProbe(const __nv_bfloat16 *x, const __nv_bfloat16 *w, float *y,
                                                   const int32_t *dyn) {
  v4cuda::linearGemm<__nv_bfloat16, __nv_bfloat16, float, kDenseK, kDenseN, kDenseBM, kDenseBN, 2>(x, w, y, dyn);
}
__device__ __forceinline__ void fp8TileProbe(const __nv_bfloat16 *x, const __nv_fp8_e4m3 *w, const uint8_t *scales,
                                             float *y, const int32_t *dyn) {
  v4cuda::linearFp8Gemm<__nv_bfloat16, float, kDenseK, kDenseN, kFp8BlockRows, kFp8Group, kDenseBM, kDenseBN, 2>(
      x, w, scales, y, dyn);
}

// The grouped MoE GEMM as the `--tensor-cores wgmma` entry runs it
// (StateEmitters.cpp): grid moeMmaBlocks, kMoeMmaThreads, moeWgmmaSharedBytes.
constexpr int kMoeMaxTiles = v4cuda::moeMmaMaxTiles(kMoeT, kMoeK, kMoeE);
constexpr int kMoeBlocks = v4cuda::moeMmaBlocks(kMoeT, kMoeK, kMoeE, kMoeD, kMoeI);
constexpr size_t kMoeSharedBytes = v4cuda::moeWgmmaSharedBytes(kMoeD, false);
__device__ __forceinline__ void moeTileProbe(const __nv_bfloat16 *h, const float *routeWeights, const int32_t *experts,
                                             const __nv_bfloat16 *gateUp, const __nv_bfloat16 *down, float *out,
                                             v4cuda::MoeMmaScratch scratch, const int32_t *dyn) {
  const v4cuda::MoeShape shape{kMoeE, kMoeK, kMoeD, kMoeI, kMoeLimit};
  v4cuda::moeGroupedWgmma<false>(h, routeWeights, experts, v4cuda::state::DenseExpertRows<__nv_bfloat16>{gateUp, kMoeD},
                                 v4cuda::state::DenseExpertRows<__nv_bfloat16>{down, kMoeI}, out, shape, kMoeMaxTiles,
                                 scratch, dyn);
}

template <class A> constexpr size_t denseTileSharedBytes() {
  return v4cuda::gemmWgmmaTileBytes<kDenseBM, kDenseBN>() + kDenseBM * A::kTableBytesPerRow;
}
constexpr size_t kDenseBf16SharedBytes = denseTileSharedBytes<v4cuda::PlainRows<__nv_bfloat16, kDenseK, 0>>();
constexpr size_t kFp8SharedBytes = v4cuda::gemmWgmmaFp8TileBytes<kDenseBM, kDenseBN>() +
                                   kDenseBM * v4cuda::QuantRows<__nv_bfloat16, kDenseK, kFp8Group>::kTableBytesPerRow;

// Calls f.template run<N, E4M3, CP_ASYNC>() for a probe case's (n, e4m3,
// cpAsync); the instantiations both halves build.
template <class F> bool dispatchWgmma(const WgmmaCase &c, F &f) {
  if (c.cpAsync)
    return !c.e4m3 && c.n == 64 ? (f.template run<64, false, true>(), true) : false;
  switch (c.n * 2 + (c.e4m3 ? 1 : 0)) {
  case 128: f.template run<64, false, false>(); return true;
  case 256: f.template run<128, false, false>(); return true;
  case 512: f.template run<256, false, false>(); return true;
  case 129: f.template run<64, true, false>(); return true;
  case 257: f.template run<128, true, false>(); return true;
  case 513: f.template run<256, true, false>(); return true;
  default: return false;
  }
}

} // namespace V4PROBE_HALF
} // namespace v4probe
