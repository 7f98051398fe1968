// Hopper (sm_90a) warpgroup MMA primitives: wgmma.mma_async m64nNk16 with
// bf16 operands (and m64nNk32 with e4m3 operands, at the end) from shared
// memory (matrix descriptors, K-major, 128-byte swizzle) into fp32
// accumulator registers, and the fences and group waits around it. Device code only for sm_90a (__CUDA_ARCH_FEAT_SM90_ALL); any
// other device arch fails to compile the primitives it instantiates. Under
// the host emulation (testing/HostEmulation.h, which defines
// V4EMU_HOST_EMULATION) they run testing/WgmmaEmulation.h's model.
//
// Facts the host emulation assumes (PTX ISA "Asynchronous Warpgroup Level
// Matrix" sections), for the first GPU session to confirm (tests/gpu checks
// compare the wgmma GEMM with the CPU reference; a wrong fact shows there):
// 1. Descriptor: start address >> 4 in bits 0-13, leading byte offset >> 4
//    in 16-29 (unused for K-major 128B-swizzled operands whose k16 slice
//    stays in one 128-byte row; we write 1), stride byte offset >> 4 in
//    32-45 (1024: the distance between 8-row groups), base offset 0 in
//    49-51, swizzle mode in 62-63 (1 = 128B).
// 2. K-major 128B swizzle: element (row r, k) of an operand is at
//    start + (r / 8) * SBO + (r % 8) * 128 + 2k, and then address bits [4:6]
//    are XORed with bits [7:9] of the SHARED address (so tiles sit at
//    1024-byte aligned shared addresses, and advancing k by 16 within the
//    64-element row adds 32 bytes to the start address).
// 3. B (N x K, K-major, "weight rows") needs no transpose: imm-trans-b = 0,
//    and likewise A (M x K): imm-trans-a = 0.
// 4. Accumulator fragment of m64nNk16 f32: thread t of the warpgroup (warp
//    w = t / 32, lane l = t % 32) holds in element 4j + q (j < N / 8, q < 4)
//    D[16w + l/4 + 8*(q/2)][8j + 2*(l%4) + (q%2)].
// 5. scale-d = 0 (the predicate) ignores the accumulators' previous values.
// 6. mma_async reads shared memory asynchronously: a stage may be rewritten
//    only after every warpgroup's wait_group retired the mmas reading it.
#pragma once

#include <stdint.h>

#if defined(V4EMU_HOST_EMULATION)
// The emulation's primitives take the kernel's call site, for their errors
// (V4EmuSite: HostEmulation.h's, as the barriers take it).
#define V4_WGMMA_SITE_ONLY V4EmuSite where = V4EmuSite::current()
#define V4_WGMMA_SITE , V4_WGMMA_SITE_ONLY
#else
#define V4_WGMMA_SITE_ONLY
#define V4_WGMMA_SITE
#endif

namespace v4cuda {

constexpr int kWgmmaThreads = 128;    // one warpgroup: 4 consecutive warps
constexpr int kWgmmaRowBytes = 128;   // one K-major tile row: the 128-byte swizzle's width
constexpr int kWgmmaTileK = 64;       // bf16 elements of a tile row
constexpr int kWgmmaTileAlign = 1024; // the 128-byte swizzle's period (8 rows)

template <int N> constexpr bool kWgmmaUnsupported = false;
#define V4_WGMMA_NEEDS_SM90A(N)                                                                                        \
  static_assert(kWgmmaUnsupported<N>, "wgmma needs sm_90a (compile with -gencode=arch=compute_90a,code=sm_90a)")

// Byte offset, from a 1024-aligned tile base, of the 16-byte chunk `chunk`
// (k elements 8 * chunk .. + 7) of tile row `row`: rows of 128 bytes, the
// chunk index XORed with row % 8 (fact 2 above, for a 1024-aligned base).
__host__ __device__ constexpr int wgmmaSwizzledOffset(int row, int chunk) {
  return row * kWgmmaRowBytes + ((chunk ^ (row & 7)) << 4);
}

// Where accumulator element i of thread t (0..127) of the warpgroup lives
// in the 64 x N tile (fact 4).
struct WgmmaPosition {
  int row, col;
};
__host__ __device__ constexpr WgmmaPosition wgmmaAccumulatorPosition(int t, int i) {
  return {16 * (t / 32) + (t % 32) / 4 + 8 * ((i % 4) / 2), 8 * (i / 4) + 2 * (t % 4) + (i % 2)};
}

// Encodes a descriptor from a shared address (fact 1).
__host__ __device__ constexpr uint64_t wgmmaDescriptorFromAddress(uint32_t sharedAddress) {
  return uint64_t((sharedAddress & 0x3ffff) >> 4) | (uint64_t(1) << 16) | (uint64_t(1024 >> 4) << 32) |
         (uint64_t(1) << 62);
}

// The mma_async accumulator operands of an m64nN form: the N / 2 registers
// "%0, ..., %(N/2 - 1)" of the PTX and their "+f"(d[i]) constraints, 16 per piece.
#define V4_WGMMA_REGS_0 "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15"
#define V4_WGMMA_REGS_1 "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
#define V4_WGMMA_REGS_2 "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47"
#define V4_WGMMA_REGS_3 "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
#define V4_WGMMA_REGS_4 "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79"
#define V4_WGMMA_REGS_5 "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95"
#define V4_WGMMA_REGS_6 "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111"
#define V4_WGMMA_REGS_7 "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127"
#define V4_WGMMA_REGS_N32 V4_WGMMA_REGS_0
#define V4_WGMMA_REGS_N64 V4_WGMMA_REGS_N32 ", " V4_WGMMA_REGS_1
#define V4_WGMMA_REGS_N128 V4_WGMMA_REGS_N64 ", " V4_WGMMA_REGS_2 ", " V4_WGMMA_REGS_3
#define V4_WGMMA_REGS_N256                                                                                             \
  V4_WGMMA_REGS_N128 ", " V4_WGMMA_REGS_4 ", " V4_WGMMA_REGS_5 ", " V4_WGMMA_REGS_6 ", " V4_WGMMA_REGS_7
#define V4_WGMMA_ACC_8(i)                                                                                              \
  "+f"(d[(i) + 0]), "+f"(d[(i) + 1]), "+f"(d[(i) + 2]), "+f"(d[(i) + 3]), "+f"(d[(i) + 4]), "+f"(d[(i) + 5]),             \
      "+f"(d[(i) + 6]), "+f"(d[(i) + 7])
#define V4_WGMMA_ACC_N32 V4_WGMMA_ACC_8(0), V4_WGMMA_ACC_8(8)
#define V4_WGMMA_ACC_N64 V4_WGMMA_ACC_N32, V4_WGMMA_ACC_8(16), V4_WGMMA_ACC_8(24)
#define V4_WGMMA_ACC_N128 V4_WGMMA_ACC_N64, V4_WGMMA_ACC_8(32), V4_WGMMA_ACC_8(40), V4_WGMMA_ACC_8(48), V4_WGMMA_ACC_8(56)
#define V4_WGMMA_ACC_N256                                                                                              \
  V4_WGMMA_ACC_N128, V4_WGMMA_ACC_8(64), V4_WGMMA_ACC_8(72), V4_WGMMA_ACC_8(80), V4_WGMMA_ACC_8(88), V4_WGMMA_ACC_8(96),  \
      V4_WGMMA_ACC_8(104), V4_WGMMA_ACC_8(112), V4_WGMMA_ACC_8(120)
// One specialization Function<N>: "{setp p from scale-d; Instruction {acc},
// descA, descB, p, Scales;}" with descA, descB, scale-d the operands after
// the accumulators (%DescA = N / 2, as the static_assert checks).
#define V4_WGMMA_FORM(Function, N, Instruction, Scales, DescA, DescB, ScaleD)                                      \
  template <> __device__ __forceinline__ void Function<N>(float(&d)[N / 2], uint64_t a, uint64_t b, int scaleD) {   \
    static_assert(DescA == N / 2 && DescB == DescA + 1 && ScaleD == DescA + 2, "operand numbering of " #N);     \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %" #ScaleD ", 0;\n" Instruction " {" V4_WGMMA_REGS_N##N      \
                 "}, %" #DescA ", %" #DescB ", p, " Scales ";\n}\n"                                               \
                 : V4_WGMMA_ACC_N##N                                                                           \
                 : "l"(a), "l"(b), "r"(scaleD));                                                               \
  }

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL) && !defined(V4EMU_HOST_EMULATION)
template <int N> __device__ __forceinline__ void wgmmaM64Device(float (&)[N / 2], uint64_t, uint64_t, int) {
  static_assert(kWgmmaUnsupported<N>, "wgmmaM64: N must be 32, 64, 128 or 256 (add its form to Wgmma.cuh)");
}
// Generated (one form per N): D (+)= A * B, scale-d from the predicate,
// scale-a = scale-b = 1, no transposes (fact 3).
V4_WGMMA_FORM(wgmmaM64Device, 32, "wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16", "1, 1, 0, 0", 16, 17, 18)
V4_WGMMA_FORM(wgmmaM64Device, 64, "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16", "1, 1, 0, 0", 32, 33, 34)
V4_WGMMA_FORM(wgmmaM64Device, 128, "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16", "1, 1, 0, 0", 64, 65, 66)
V4_WGMMA_FORM(wgmmaM64Device, 256, "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16", "1, 1, 0, 0", 128, 129, 130)
#endif

// `shared` rounded up to the next 1024-byte shared address (the kernels'
// dynamic shared memory is only 128-byte aligned). Use this, not pointer
// arithmetic: the emulation's shared addresses differ from its pointers.
template <class T> __device__ __forceinline__ T *wgmmaAlignTile(T *shared V4_WGMMA_SITE) {
#if defined(V4EMU_HOST_EMULATION)
  return static_cast<T *>(v4emu::wgmma::alignShared(shared, kWgmmaTileAlign, where));
#elif defined(__CUDA_ARCH__)
  const uint32_t address = static_cast<uint32_t>(__cvta_generic_to_shared(shared));
  const uint32_t pad = (kWgmmaTileAlign - address % kWgmmaTileAlign) % kWgmmaTileAlign;
  return reinterpret_cast<T *>(reinterpret_cast<unsigned char *>(shared) + pad);
#else
  return shared;
#endif
}

// Descriptor of a K-major bf16 operand at `start` = a 1024-aligned tile
// base + firstRow * 128 (firstRow % 8 == 0) + 2 * k (k in {0, 16, 32, 48}):
// 128-byte swizzle, 8-row groups 1024 bytes apart.
template <class T> __device__ __forceinline__ uint64_t wgmmaDescriptor(const T *start V4_WGMMA_SITE) {
#if defined(V4EMU_HOST_EMULATION)
  return wgmmaDescriptorFromAddress(v4emu::wgmma::sharedAddress(start, where));
#elif defined(__CUDA_ARCH__)
  return wgmmaDescriptorFromAddress(static_cast<uint32_t>(__cvta_generic_to_shared(start)));
#else
  return 0;
#endif
}

// wgmma.fence: before the first mma_async of a batch (after the
// accumulators were touched, or after a wait).
template <int Unused = 0> __device__ __forceinline__ void wgmmaFence(V4_WGMMA_SITE_ONLY) {
#if defined(V4EMU_HOST_EMULATION)
  v4emu::wgmma::fence(where);
#elif defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#elif defined(__CUDA_ARCH__)
  V4_WGMMA_NEEDS_SM90A(Unused);
#endif
}

// wgmma.commit_group: the mma_asyncs issued since the last commit form a group.
template <int Unused = 0> __device__ __forceinline__ void wgmmaCommitGroup(V4_WGMMA_SITE_ONLY) {
#if defined(V4EMU_HOST_EMULATION)
  v4emu::wgmma::commitGroup(where);
#elif defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#elif defined(__CUDA_ARCH__)
  V4_WGMMA_NEEDS_SM90A(Unused);
#endif
}

// wgmma.wait_group N: waits until at most N committed groups are pending.
template <int N> __device__ __forceinline__ void wgmmaWaitGroup(V4_WGMMA_SITE_ONLY) {
  static_assert(N >= 0 && N <= 7, "wgmma.wait_group takes 0..7");
#if defined(V4EMU_HOST_EMULATION)
  v4emu::wgmma::waitGroup(N, where);
#elif defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#elif defined(__CUDA_ARCH__)
  V4_WGMMA_NEEDS_SM90A(N);
#endif
}

// Pins the accumulator registers at this point of the program: the compiler
// sees mma_async's register operands as written at issue, so without this
// it could move reads of them above the wait that actually completes them.
template <int M> __device__ __forceinline__ void wgmmaFenceAccumulators(float (&acc)[M]) {
#if defined(__CUDA_ARCH__) && !defined(V4EMU_HOST_EMULATION)
#pragma unroll
  for (int i = 0; i < M; ++i)
    asm volatile("" : "+f"(acc[i])::"memory");
#else
  (void)acc;
#endif
}

// wgmma.wait_group N, then the accumulators pinned after it.
template <int N, int M> __device__ __forceinline__ void wgmmaWaitGroup(float (&acc)[M] V4_WGMMA_SITE) {
#if defined(V4EMU_HOST_EMULATION)
  wgmmaWaitGroup<N>(where);
#else
  wgmmaWaitGroup<N>();
#endif
  wgmmaFenceAccumulators(acc);
}

// fence.proxy.async.shared::cta: makes this thread's generic-proxy shared
// stores (plain stores, completed cp.async copies) visible to the async
// proxy (the mma_asyncs); then a barrier. The emulation checks it for
// cp.async-written bytes (CpAsyncEmulation.h).
template <int Unused = 0> __device__ __forceinline__ void fenceProxyAsync(V4_WGMMA_SITE_ONLY) {
#if defined(V4EMU_HOST_EMULATION)
  v4emu::cpasync::fenceProxyAsync(where);
#elif defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#elif defined(__CUDA_ARCH__) && !defined(V4EMU_HOST_EMULATION)
  V4_WGMMA_NEEDS_SM90A(Unused);
#endif
}

// D[64 x N] (+)= A[64 x 16] * B[16 x N]: bf16 x bf16 -> f32 accumulators,
// both operands K-major in shared memory (A: 64 rows from descA's start, B:
// N weight rows from descB's start). accumulate = false: D = A * B.
// Every thread of the warpgroup calls it with the same descriptors.
template <int N>
__device__ __forceinline__ void wgmmaM64(float (&acc)[N / 2], uint64_t descA, uint64_t descB, bool accumulate V4_WGMMA_SITE) {
  static_assert(N % 8 == 0 && N >= 8 && N <= 256, "m64nNk16: N = 8..256 in steps of 8");
#if defined(V4EMU_HOST_EMULATION)
  v4emu::wgmma::mmaAsync(acc, N, descA, descB, accumulate, where);
#elif defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  wgmmaM64Device<N>(acc, descA, descB, accumulate ? 1 : 0);
#elif defined(__CUDA_ARCH__)
  V4_WGMMA_NEEDS_SM90A(N);
#endif
}

} // namespace v4cuda

// ---- e4m3 (fp8) operands: wgmma.mma_async m64nNk32.f32.e4m3.e4m3 ----------
// Same descriptors, swizzle and accumulator fragment as the bf16 form (facts
// 1, 2, 4, 5, 6 above); an element is one byte, so a 128-byte swizzled row
// holds 128 k, element (r, k) sits at start + (r / 8) * SBO + (r % 8) * 128 + k,
// and the k32 slices of a row are 32 bytes apart (as bf16's k16 slices).
// The fp8 forms take no transpose arguments (K-major only) and accumulate
// in fp32, with the H100's reduced-precision accumulation inside one mma
// chain: callers promote a fresh fragment every 128 k (DenseWgmmaFp8.cuh).
namespace v4cuda {

constexpr int kWgmmaTileKE4m3 = 128; // e4m3 elements of a tile row

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL) && !defined(V4EMU_HOST_EMULATION)
template <int N> __device__ __forceinline__ void wgmmaM64E4m3Device(float (&)[N / 2], uint64_t, uint64_t, int) {
  static_assert(kWgmmaUnsupported<N>, "wgmmaM64E4m3: N must be 32, 64, 128 or 256 (add its form to Wgmma.cuh)");
}
// Generated (one form per N): D (+)= A * B, scale-d from the predicate,
// scale-a = scale-b = 1.
V4_WGMMA_FORM(wgmmaM64E4m3Device, 32, "wgmma.mma_async.sync.aligned.m64n32k32.f32.e4m3.e4m3", "1, 1", 16, 17, 18)
V4_WGMMA_FORM(wgmmaM64E4m3Device, 64, "wgmma.mma_async.sync.aligned.m64n64k32.f32.e4m3.e4m3", "1, 1", 32, 33, 34)
V4_WGMMA_FORM(wgmmaM64E4m3Device, 128, "wgmma.mma_async.sync.aligned.m64n128k32.f32.e4m3.e4m3", "1, 1", 64, 65, 66)
V4_WGMMA_FORM(wgmmaM64E4m3Device, 256, "wgmma.mma_async.sync.aligned.m64n256k32.f32.e4m3.e4m3", "1, 1", 128, 129, 130)
#endif

// D[64 x N] (+)= A[64 x 32] * B[32 x N]: e4m3 x e4m3 -> f32 accumulators,
// both operands K-major in shared memory (e4m3 codes, descriptors as
// wgmmaDescriptor makes them). accumulate = false: D = A * B. Every thread
// of the warpgroup calls it with the same descriptors.
template <int N>
__device__ __forceinline__ void wgmmaM64E4m3(float (&acc)[N / 2], uint64_t descA, uint64_t descB,
                                             bool accumulate V4_WGMMA_SITE) {
  static_assert(N % 8 == 0 && N >= 8 && N <= 256, "m64nNk32: N = 8..256 in steps of 8");
#if defined(V4EMU_HOST_EMULATION)
  v4emu::wgmma::mmaAsync(acc, N, v4emu::wgmma::Operands::E4m3, descA, descB, accumulate, where);
#elif defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  wgmmaM64E4m3Device<N>(acc, descA, descB, accumulate ? 1 : 0);
#elif defined(__CUDA_ARCH__)
  V4_WGMMA_NEEDS_SM90A(N);
#endif
}

} // namespace v4cuda

#undef V4_WGMMA_NEEDS_SM90A
#undef V4_WGMMA_FORM
#undef V4_WGMMA_ACC_8
#undef V4_WGMMA_ACC_N32
#undef V4_WGMMA_ACC_N64
#undef V4_WGMMA_ACC_N128
#undef V4_WGMMA_ACC_N256
#undef V4_WGMMA_REGS_0
#undef V4_WGMMA_REGS_1
#undef V4_WGMMA_REGS_2
#undef V4_WGMMA_REGS_3
#undef V4_WGMMA_REGS_4
#undef V4_WGMMA_REGS_5
#undef V4_WGMMA_REGS_6
#undef V4_WGMMA_REGS_7
#undef V4_WGMMA_REGS_N32
#undef V4_WGMMA_REGS_N64
#undef V4_WGMMA_REGS_N128
#undef V4_WGMMA_REGS_N256
#undef V4_WGMMA_SITE
#undef V4_WGMMA_SITE_ONLY
