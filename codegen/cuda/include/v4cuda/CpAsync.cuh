// Asynchronous global -> shared copies (sm_80+ cp.async): 16-byte copies
// that bypass the registers, grouped per thread with commit_group and waited
// for with wait_group N. The wgmma GEMM tile (DenseWgmma.cuh) streams its
// bf16 operands through them into 128-byte-swizzled stages. Under the host
// emulation (testing/HostEmulation.h, which defines V4EMU_HOST_EMULATION) they
// run testing/CpAsyncEmulation.h's model.
//
// Facts the host emulation assumes (PTX ISA "cp.async", "cp.async.commit_group",
// "cp.async.wait_group", and the memory consistency model's "proxies"), for
// the first GPU session to confirm (tests/gpu compares the wgmma GEMM with the
// CPU reference; a wrong fact shows there as wrong values or a hang):
// 1. cp.async.cg.shared.global [dst], [src], 16, srcSize copies the first
//    srcSize (0..16) bytes of src and writes zeros to the rest of the 16
//    destination bytes; srcSize = 0 reads nothing from src (we still pass an
//    address inside the operand). dst and src are 16-byte aligned.
// 2. The copies a thread issued since its last commit_group form one group
//    (an empty group is legal and completes at once). wait_group N returns
//    once at most N of the thread's most recent committed groups are
//    pending; copies never committed are not waited for.
// 3. Completion makes the written bytes visible to the ISSUING thread only.
//    Other threads see them after a CTA barrier (bar.sync, __syncthreads)
//    that the issuing thread reaches after its wait_group.
// 4. cp.async (the non-bulk form) writes through the GENERIC proxy; wgmma
//    reads shared memory through the ASYNC proxy. So each issuing thread runs
//    fence.proxy.async.shared::cta after its wait_group and before the
//    barrier; a wgmma.mma_async issued after that barrier (by any thread)
//    sees the bytes. (If cp.async were async-proxy already, the fence is
//    merely redundant.)
// 5. Write-after-read: once wgmma.wait_group has retired an mma in every
//    warpgroup that read a stage, and a barrier follows, new cp.async writes
//    into the stage cannot reach the retired mma (no proxy fence needed in
//    this direction).
// 6. A thread must not exit with copies pending (the emulation's rule; the
//    hardware's behaviour is undefined), so kernels wait for everything.
// If a wgmma GEMM is wrong on the GPU, rebuild the artifact with
// -DV4CUDA_WGMMA_NO_CP_ASYNC (a $V4C_NVCC wrapper script that adds it): every
// operand then goes through registers in the same stage ring, so a result
// that turns right points at these facts, one that stays wrong at Wgmma.cuh's.
#pragma once

#include <stdint.h>

#if defined(V4EMU_HOST_EMULATION)
// The emulation's primitives take the kernel's call site, for their errors.
#define V4_CP_ASYNC_SITE_ONLY V4EmuSite where = V4EmuSite::current()
#define V4_CP_ASYNC_SITE , V4_CP_ASYNC_SITE_ONLY
#else
#define V4_CP_ASYNC_SITE_ONLY
#define V4_CP_ASYNC_SITE
#endif

namespace v4cuda {

constexpr int kCpAsyncBytes = 16; // the one size of the .cg (L2-only) form

template <int N> constexpr bool kCpAsyncUnsupported = false;
#define V4_CP_ASYNC_NEEDS_SM80(N) static_assert(kCpAsyncUnsupported<N>, "cp.async needs sm_80 or later")

// 16 bytes from global `src` to shared `dst` (both 16-byte aligned): the
// first srcBytes (0..16) copied, the rest zero-filled (fact 1). Not visible
// until cpAsyncWaitGroup retires it (facts 2-4).
template <class T, class U>
__device__ __forceinline__ void cpAsync16(T *dst, const U *src, int srcBytes V4_CP_ASYNC_SITE) {
#if defined(V4EMU_HOST_EMULATION)
  v4emu::cpasync::copy(dst, src, srcBytes, where);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(
                   static_cast<uint32_t>(__cvta_generic_to_shared(dst))),
               "l"(__cvta_generic_to_global(src)), "r"(srcBytes)
               : "memory");
#elif defined(__CUDA_ARCH__)
  V4_CP_ASYNC_NEEDS_SM80(sizeof(T));
#endif
}

// cp.async.commit_group: this thread's copies since the last commit form a group.
template <int Unused = 0> __device__ __forceinline__ void cpAsyncCommitGroup(V4_CP_ASYNC_SITE_ONLY) {
#if defined(V4EMU_HOST_EMULATION)
  v4emu::cpasync::commitGroup(where);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#elif defined(__CUDA_ARCH__)
  V4_CP_ASYNC_NEEDS_SM80(Unused);
#endif
}

// cp.async.wait_group N: at most N of this thread's committed groups still pending.
template <int N> __device__ __forceinline__ void cpAsyncWaitGroup(V4_CP_ASYNC_SITE_ONLY) {
  static_assert(N >= 0 && N <= 7, "cp.async.wait_group: N in 0..7");
#if defined(V4EMU_HOST_EMULATION)
  v4emu::cpasync::waitGroup(N, where);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#elif defined(__CUDA_ARCH__)
  V4_CP_ASYNC_NEEDS_SM80(N);
#endif
}

} // namespace v4cuda

#undef V4_CP_ASYNC_NEEDS_SM80
#undef V4_CP_ASYNC_SITE
#undef V4_CP_ASYNC_SITE_ONLY
