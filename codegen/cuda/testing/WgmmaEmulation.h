// The host emulation of Hopper's warpgroup MMA (wgmma), what Wgmma.cuh calls
// when HostEmulation.h is included: the PTX ISA's model of
// wgmma.mma_async.m64nNk16.f32.bf16.bf16 (and m64nNk32.f32.e4m3.e4m3) with
// shared memory matrix descriptors, followed exactly enough that a layout or
// ordering bug in a kernel fails here as it would on the GPU.
//
// - Shared addresses: dynamic shared memory (V4EMU_DYNAMIC_SHARED arrays)
//   sits at shared address kDynamicSharedWindow (384, deliberately NOT a
//   multiple of 1024, like a base after 384 bytes of static shared memory),
//   so the 128-byte swizzle (address bits [4:6] ^= bits [7:9]) is anchored
//   to shared addresses as on the GPU, and a kernel that does not round its
//   tile up to 1024 (wgmmaAlignTile) fails.
// - Descriptors are decoded as the hardware does: element (row r, k) of a
//   K-major operand at start + (r / 8) * SBO + (r % 8) * 128 + 2k, then
//   swizzled. Rejected at issue (a launch error naming the call site):
//   swizzle modes other than 128B, a base offset, SBO not a nonzero multiple
//   of 1024, a start whose offset in its 1024-byte period is >= 128, an
//   operand outside the launch's dynamic shared bytes.
// - Asynchrony: mma_async is recorded at issue and EXECUTED at the
//   wait_group that retires its group (reading shared memory then). Its
//   accumulators hold a NaN poison in between; a write to them before the
//   wait fails the launch, a read sees NaN. Chained mmas on the same
//   accumulators pass the result along in issue order.
// - Warpgroup-uniform: every call (fence, mma, commit, wait) is made by all
//   128 threads of the warpgroup, in the same order, with the same
//   arguments; a thread that skips one or disagrees fails the launch. At the
//   end of a block no mma may be left un-retired.
// - A wgmma.fence is required after the thread's last wait_group (or its
//   start) before the next mma_async (stricter than the ISA, which asks for
//   it before the first mma and after register accesses to accumulators).
// - Arithmetic: each accumulator d = (accumulate ? c : 0), then
//   d += a_k * b_k for k = 0..15 ascending in fp32 (bf16 products are exact).
//   e4m3 operands (m64nNk32.f32.e4m3.e4m3): one byte per element, k = 0..31
//   (32 bytes of a swizzled row, as bf16's k16), products exact in fp32 too.
//   The hardware's internal order and precision differ: compare with
//   tolerances, as for wmma.
// - Operands written by cp.async must be visible to the async proxy when the
//   mma is issued (checked once per warpgroup: CpAsyncEmulation.h).
// NOT emulated: fence.proxy.async after plain stores (generic-proxy stores
// are always visible here), the asynchronous timing itself, register pressure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <source_location>
#include <string>

namespace v4emu::wgmma {

// Shared address of byte 0 of every dynamic shared array.
inline constexpr uint32_t kDynamicSharedWindow = 384;

// The shared address (as __cvta_generic_to_shared gives it) of `p`, which
// must lie in a dynamic shared array.
uint32_t sharedAddress(const void *p, const std::source_location &where);
// `p` advanced to the next shared address that is a multiple of `alignment`.
void *alignShared(void *p, uint32_t alignment, const std::source_location &where);

void fence(const std::source_location &where);
void commitGroup(const std::source_location &where);
void waitGroup(int pending, const std::source_location &where);
// The operand type of an mma_async: bf16 (m64nNk16) or e4m3 codes (m64nNk32,
// one byte per element, decoded as cuda_fp8.h's __nv_fp8_e4m3; 0x7F/0xFF NaN).
enum class Operands : unsigned char { Bf16, E4m3 };

// D[64 x n] (+)= A[64 x 16] * B[16 x n]; acc: this thread's n / 2 floats.
void mmaAsync(float *acc, int n, uint64_t descA, uint64_t descB, bool accumulate, const std::source_location &where);
// The same for `operands` (E4m3: A[64 x 32] * B[32 x n], the k32 form).
void mmaAsync(float *acc, int n, Operands operands, uint64_t descA, uint64_t descB, bool accumulate,
              const std::source_location &where);

namespace detail {
// Called by the launch loop (HostEmulation.cpp) around every block.
void beginBlock(unsigned threads);
// "" or the first error of the block's wgmma use (un-retired mmas, threads
// of a warpgroup that made different numbers of calls).
std::string endBlock();
} // namespace detail

} // namespace v4emu::wgmma
