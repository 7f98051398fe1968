// User-space fibers of the CUDA host emulation (Fibers.h).
#include "codegen/cuda/testing/Fibers.h"

#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

#include "common/Error.h"

namespace v4emu::fibers {
namespace {


// Reserved for the most threads a block can have, so the stacks never move
// while a launch (or the fault handler) looks at them.
std::vector<Stack> &stackPool() {
  static std::vector<Stack> pool = [] {
    std::vector<Stack> reserved;
    reserved.reserve(1024);
    return reserved;
  }();
  return pool;
}

Stack mapStack() {
  void *mapping = mmap(nullptr, kGuardBytes + kStackBytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  v4c::check(mapping != MAP_FAILED, "v4emu: mmap of a " + std::to_string(kStackBytes / 1024) +
                                        " KiB fiber stack failed: " + std::strerror(errno));
  auto *guard = static_cast<unsigned char *>(mapping);
  v4c::check(mprotect(guard, kGuardBytes, PROT_NONE) == 0,
             std::string("v4emu: mprotect of a fiber stack's guard pages failed: ") + std::strerror(errno));
  return Stack{guard, guard + kGuardBytes + kStackBytes};
}

} // namespace

const Stack *stacks(size_t count) {
  std::vector<Stack> &pool = stackPool();
  v4c::check(count <= pool.capacity(), "v4emu: more than 1024 fibers requested");
  while (pool.size() < count)
    pool.push_back(mapStack());
  return pool.data();
}

#if defined(__x86_64__) && !defined(V4EMU_UCONTEXT_FIBERS)

// v4emu_fiber_switch(void **save, void *load): pushes the callee-saved
// registers and the floating-point control words, stores the stack pointer
// in *save, and pops the same frame from `load`.
// v4emu_fiber_start: the first return address of a prepared fiber; calls
// entry (r13) with argument (r12). It ends every backtrace (rip undefined).
asm(R"(
  .text
  .p2align 4
  .globl v4emu_fiber_switch
  .hidden v4emu_fiber_switch
  .type v4emu_fiber_switch, @function
v4emu_fiber_switch:
  .cfi_startproc
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .cfi_endproc
  .size v4emu_fiber_switch, .-v4emu_fiber_switch

  .p2align 4
  .globl v4emu_fiber_start
  .hidden v4emu_fiber_start
  .type v4emu_fiber_start, @function
v4emu_fiber_start:
  .cfi_startproc
  .cfi_undefined rip
  movq %r12, %rdi
  callq *%r13
  ud2
  .cfi_endproc
  .size v4emu_fiber_start, .-v4emu_fiber_start
)");

extern "C" void v4emu_fiber_switch(void **save, void *load);
extern "C" void v4emu_fiber_start();

void prepare(Context &context, const Stack &stack, void (*entry)(void *), void *argument) {
  // The frame v4emu_fiber_switch pops, 16-byte aligned, so that
  // v4emu_fiber_start's call enters `entry` with the ABI's alignment.
  auto *frame = reinterpret_cast<uint64_t *>(stack.top - 16 - 64);
  uint32_t mxcsr;
  uint16_t x87Control;
  asm volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(mxcsr), "=m"(x87Control));
  frame[0] = mxcsr | uint64_t(x87Control) << 32;
  frame[1] = 0;                                          // r15
  frame[2] = 0;                                          // r14
  frame[3] = reinterpret_cast<uint64_t>(entry);          // r13
  frame[4] = reinterpret_cast<uint64_t>(argument);       // r12
  frame[5] = 0;                                          // rbx
  frame[6] = 0;                                          // rbp
  frame[7] = reinterpret_cast<uint64_t>(&v4emu_fiber_start); // return address
  context.stackPointer = frame;
}

void switchTo(Context &from, const Context &to) { v4emu_fiber_switch(&from.stackPointer, to.stackPointer); }

#else

namespace {
// makecontext passes int arguments: the two halves of each pointer.
void startFiber(unsigned entryHigh, unsigned entryLow, unsigned argumentHigh, unsigned argumentLow) {
  auto entry = reinterpret_cast<void (*)(void *)>(uintptr_t(entryHigh) << 32 | entryLow);
  entry(reinterpret_cast<void *>(uintptr_t(argumentHigh) << 32 | argumentLow));
}
} // namespace

void prepare(Context &context, const Stack &stack, void (*entry)(void *), void *argument) {
  v4c::check(getcontext(&context.state) == 0, "v4emu: getcontext failed");
  context.state.uc_stack.ss_sp = stack.guard + kGuardBytes;
  context.state.uc_stack.ss_size = kStackBytes;
  context.state.uc_link = nullptr;
  const auto entryBits = reinterpret_cast<uint64_t>(entry), argumentBits = reinterpret_cast<uint64_t>(argument);
  makecontext(&context.state, reinterpret_cast<void (*)()>(&startFiber), 4, unsigned(entryBits >> 32),
              unsigned(entryBits), unsigned(argumentBits >> 32), unsigned(argumentBits));
}

void switchTo(Context &from, const Context &to) { swapcontext(&from.state, &to.state); }

#endif

namespace {

struct sigaction gPreviousAction;
void (*gDescribeFiber)(char *, size_t) = nullptr;

void onFault(int signal, siginfo_t *info, void *ucontext) {
  const auto *address = static_cast<const unsigned char *>(info->si_addr);
  for (const Stack &stack : stackPool())
    if (address >= stack.guard && address < stack.guard + kGuardBytes) {
      char who[160] = "a CUDA thread";
      if (gDescribeFiber)
        gDescribeFiber(who, sizeof who);
      char message[512];
      std::snprintf(message, sizeof message,
                    "v4emu: %s overflowed its %zu KiB fiber stack (its locals are too large for the host "
                    "emulation: raise kStackBytes in codegen/cuda/testing/Fibers.h)\n",
                    who, kStackBytes / 1024);
      (void)!write(STDERR_FILENO, message, std::strlen(message));
      break;
    }
  // The previous handler (the emulated driver's, which names the kernel) or
  // the default action.
  if (gPreviousAction.sa_flags & SA_SIGINFO) {
    if (gPreviousAction.sa_sigaction) {
      gPreviousAction.sa_sigaction(signal, info, ucontext);
      return;
    }
  } else if (gPreviousAction.sa_handler != SIG_DFL && gPreviousAction.sa_handler != SIG_IGN) {
    gPreviousAction.sa_handler(signal);
    return;
  }
  std::signal(SIGSEGV, SIG_DFL);
  std::raise(SIGSEGV);
}

} // namespace

void installOverflowReport(void (*describeFiber)(char *buffer, size_t size)) {
  // The handler cannot run on the overflowed stack: give this thread an
  // alternate one, unless it has one.
  stack_t current;
  if (sigaltstack(nullptr, &current) == 0 && (current.ss_flags & SS_DISABLE)) {
    constexpr size_t kAlternateBytes = 64 * 1024;
    stack_t fresh = {};
    fresh.ss_sp = new unsigned char[kAlternateBytes]; // kept for the thread's life: a signal may come any time
    fresh.ss_size = kAlternateBytes;
    sigaltstack(&fresh, nullptr);
  }
  static const bool installed = [&] {
    gDescribeFiber = describeFiber;
    struct sigaction action = {};
    action.sa_sigaction = onFault;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    return sigaction(SIGSEGV, &action, &gPreviousAction) == 0;
  }();
  (void)installed;
}

} // namespace v4emu::fibers
