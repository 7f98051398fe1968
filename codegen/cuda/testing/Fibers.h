// User-space fibers for the CUDA host emulation (HostEmulation.h): one per
// CUDA thread of a block, all run by the launching OS thread, switched at
// every barrier and warp primitive.
//
// x86-64 switches with a few instructions (Fibers.cpp): the callee-saved
// registers, MXCSR and the x87 control word. glibc's swapcontext, used on
// other architectures, also saves the signal mask with a syscall per switch
// (several times slower, still correct; -DV4EMU_UCONTEXT_FIBERS selects it
// on x86-64 too, to test it).
#pragma once

#include <cstddef>

#if !defined(__x86_64__) || defined(V4EMU_UCONTEXT_FIBERS)
#include <ucontext.h>
#endif

namespace v4emu::fibers {

// Each fiber's stack: mmap'ed, with PROT_NONE guard pages below it, so an
// overflow faults (and is reported, see installOverflowReport) instead of
// corrupting a neighbour. The kernels need at most 12 KiB (measured over the
// host tests and the emulated-driver runs: wmma fragments of 1 KiB each are
// the largest locals); 128 KiB leaves room for unoptimised and sanitizer
// builds, and the pages a fiber never touches cost no memory. The guard
// spans 64 KiB so that a frame with large locals does not step over it (the
// code is built without stack probes).
inline constexpr size_t kStackBytes = 128 * 1024;
inline constexpr size_t kGuardBytes = 64 * 1024;

struct Stack {
  unsigned char *guard = nullptr; // the guard pages; the stack is above them
  unsigned char *top = nullptr;   // one past the highest byte, 16-byte aligned
};

// The first `count` stacks of a process-wide pool that only grows; the
// stacks are reused by every later launch.
const Stack *stacks(size_t count);

// A fiber's saved state.
struct Context {
#if defined(__x86_64__) && !defined(V4EMU_UCONTEXT_FIBERS)
  void *stackPointer = nullptr; // the registers are saved on the fiber's stack
#else
  ucontext_t state;
#endif
};

// Makes `context` start `entry(argument)` on `stack` when it is next switched
// to. `entry` must never return: it ends by switching away for good.
void prepare(Context &context, const Stack &stack, void (*entry)(void *), void *argument);

// Saves the running state in `from` and resumes `to`.
void switchTo(Context &from, const Context &to);

// Installs (once per process) a SIGSEGV handler on an alternate signal stack
// (set up for the calling thread) that names a fiber stack overflow, then
// hands every fault to the handler that was there before.
// `describeFiber` writes the running CUDA thread's ids into a buffer.
void installOverflowReport(void (*describeFiber)(char *buffer, size_t size));

} // namespace v4emu::fibers
