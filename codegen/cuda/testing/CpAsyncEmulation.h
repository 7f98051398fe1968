// The host emulation of sm_80 cp.async (what CpAsync.cuh calls when
// HostEmulation.h is included), strict enough that a pipeline that reads a
// stage too early fails here as it could on the GPU:
//
// - Per-thread groups: copies are recorded at issue; commit_group closes the
//   thread's open group; wait_group N PERFORMS the copies of every committed
//   group older than the thread's N most recent (reading the source then).
//   Copies never committed are not performed by a wait.
// - The 16 destination bytes are poisoned (0xFF: NaN in f32 / bf16) at issue,
//   so a read before the wait that retires the copy sees NaN; a copy whose
//   srcBytes < 16 zero-fills the rest.
// - Visibility, per 16-byte chunk of dynamic shared memory: a performed copy
//   is visible to its own thread; the block's next __syncthreads publishes it
//   to the other threads, and to the async proxy (wgmma) only if the copying
//   thread ran fence.proxy.async (Wgmma.cuh's fenceProxyAsync) between its
//   wait_group and that barrier. A wgmma.mma_async that reads a chunk which is
//   pending, not yet published by a barrier (unless the reading thread
//   copied and fenced it itself), or published without the proxy fence fails
//   the launch (checkAsyncRead, from WgmmaEmulation.cpp), naming
//   the copy's call site. (Generic reads by other threads are plain host
//   reads: only the poison catches them.)
// - Checked at issue: both addresses 16-byte aligned, srcBytes in 0..16, the
//   destination inside the launch's dynamic shared bytes. A thread that exits
//   with copies pending (committed or not) fails the launch.
// NOT emulated: cp.async into static __shared__ arrays, the 4- and 8-byte
// .ca forms, cp.async.bulk (TMA) and mbarrier-based completion.
#pragma once

#include <cstdint>
#include <source_location>
#include <string>

namespace v4emu::cpasync {

void copy(void *dst, const void *src, int srcBytes, const std::source_location &where);
void commitGroup(const std::source_location &where);
void waitGroup(int pending, const std::source_location &where);
// fence.proxy.async.shared::cta by the running thread.
void fenceProxyAsync(const std::source_location &where);

namespace detail {
// Called by the launch loop (HostEmulation.cpp) around every block and at
// every resolved block barrier.
void beginBlock(unsigned threads);
void blockBarrier();
// "" or the first error of the block's cp.async use (copies left pending).
std::string endBlock();
// An async-proxy read (`reader`, at `where`) of the 16-byte chunk at shared
// address `sharedAddress` (WgmmaEmulation's addresses): fails the launch if
// a cp.async into it is not complete, published and proxy-fenced.
void checkAsyncRead(uint32_t sharedAddress, const char *reader, const std::source_location &where);
} // namespace detail

} // namespace v4emu::cpasync
