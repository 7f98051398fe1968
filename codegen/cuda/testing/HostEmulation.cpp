// The launch loop of the CUDA host emulation (HostEmulation.h): the CUDA
// threads of a block are fibers (Fibers.h) that the launching thread runs in
// turn; each runs until it waits at a barrier or warp primitive or returns,
// and the last arrival at a barrier resolves it.
#include "codegen/cuda/testing/HostEmulation.h"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "codegen/cuda/testing/Fibers.h"
#include "common/Error.h"

namespace v4emu {
namespace {

enum class Wait : unsigned char {
  None,  // runnable
  Block, // at a __syncthreads*
  Warp,  // at a warp primitive
  Done,  // returned (or threw): out of every barrier
};

// Where a fiber waits: the primitive and its call site.
struct Site {
  const char *primitive = nullptr;
  std::source_location where;
};

bool sameText(const char *a, const char *b) { return a == b || std::strcmp(a, b) == 0; }

bool sameSite(const Site &a, const Site &b) {
  return a.where.line() == b.where.line() && a.where.column() == b.where.column() &&
         sameText(a.where.file_name(), b.where.file_name()) && sameText(a.primitive, b.primitive);
}

std::string describe(const Site &site) {
  return std::string(site.primitive) + " at " + site.where.file_name() + ":" + std::to_string(site.where.line()) +
         " (in " + site.where.function_name() + ")";
}

struct Fiber {
  fibers::Context context;
  uint3 threadIdx;
  Wait wait = Wait::None;
  Site site;           // valid while waiting
  uint64_t bits = 0;   // a warp primitive's published value (a vote: its predicate)
  unsigned source = 0; // the lane whose bits it reads
  uint64_t result = 0; // the warp primitive's result, set when the warp resolves
};

// One barrier (the block's or a warp's): who is live, who has arrived, where.
struct Barrier {
  unsigned live = 0, arrived = 0;
  unsigned firstArrival = 0; // the fiber whose site the others must match
  bool vote = false;         // a ballot: results are the lanes' predicates
  int trueCount = 0;         // __syncthreads_count & co.
};

struct Launch {
  const std::function<void()> *body = nullptr;
  std::vector<Fiber> fibers;
  Barrier block;
  std::vector<Barrier> warps;
  detail::BlockVote vote{0, 0}; // of the last resolved block barrier
  bool aborting = false;        // unwinding the fibers of a deadlocked block
  fibers::Context scheduler;
  Fiber *running = nullptr;
  std::exception_ptr firstError;
  size_t dynamicSharedBytes = 0;
};

Launch *gLaunch = nullptr;

// Thrown into the waiting fibers of a deadlocked block to unwind them.
struct AbortFiber {};

struct DynamicShared {
  unsigned char *base;
  size_t capacity;
};

std::vector<DynamicShared> &dynamicSharedArrays() {
  static std::vector<DynamicShared> arrays;
  return arrays;
}

constexpr unsigned char kFill = 0xFF; // NaN as f32 / bf16 / f16, -1 as an integer
constexpr size_t kGuardBytes = 1024;  // checked past the launch's dynamic size

std::string triple(uint3 v) {
  return "(" + std::to_string(v.x) + "," + std::to_string(v.y) + "," + std::to_string(v.z) + ")";
}

Launch &currentLaunch(const char *primitive) {
  if (!gLaunch || !gLaunch->running)
    throw v4c::Error(std::string("v4emu: ") + primitive + " was called outside v4emu::launch");
  return *gLaunch;
}

// Switches to the scheduler until the barrier this fiber waits at resolves.
void suspend(Launch &launch, Fiber &fiber) {
  fibers::switchTo(fiber.context, launch.scheduler);
  if (launch.aborting)
    throw AbortFiber{};
}

void resolveBlock(Launch &launch) {
  cpasync::detail::blockBarrier(); // completed copies become visible to the block
  launch.vote = {launch.block.trueCount, static_cast<int>(launch.block.arrived)};
  launch.block.arrived = 0;
  launch.block.trueCount = 0;
  for (Fiber &fiber : launch.fibers)
    if (fiber.wait == Wait::Block)
      fiber.wait = Wait::None;
}

void resolveWarp(Launch &launch, unsigned warp) {
  Barrier &barrier = launch.warps[warp];
  Fiber *lanes = launch.fibers.data() + 32 * warp;
  const unsigned count = std::min<size_t>(32, launch.fibers.size() - 32 * warp);
  uint64_t arrived = 0, ballot = 0;
  for (unsigned lane = 0; lane < count; ++lane)
    if (lanes[lane].wait == Wait::Warp) {
      arrived |= uint64_t(1) << lane;
      if (lanes[lane].bits != 0)
        ballot |= uint64_t(1) << lane;
    }
  for (unsigned lane = 0; lane < count; ++lane) {
    Fiber &fiber = lanes[lane];
    if (!(arrived >> lane & 1))
      continue;
    if (barrier.vote)
      fiber.result = ballot;
    else if (fiber.source < count && (arrived >> fiber.source & 1))
      fiber.result = lanes[fiber.source].bits;
    else
      fiber.result = fiber.bits; // a missing or exited source lane
    fiber.wait = Wait::None;
  }
  barrier.arrived = 0;
}

// Registers `fiber`'s arrival at `barrier` (the block's or its warp's), after
// checking that it waits where the fibers already there wait.
void arrive(Launch &launch, Fiber &fiber, Barrier &barrier, Wait wait, const char *primitive,
            const std::source_location &where) {
  fiber.site = Site{primitive, where};
  const unsigned self = static_cast<unsigned>(&fiber - launch.fibers.data());
  if (barrier.arrived == 0) {
    barrier.firstArrival = self;
  } else {
    const Fiber &first = launch.fibers[barrier.firstArrival];
    if (!sameSite(first.site, fiber.site))
      throw v4c::Error("v4emu: divergent " + std::string(wait == Wait::Block ? "block barriers" : "warp primitives") +
                       " in block " + triple(blockIdx) + ": thread " + triple(fiber.threadIdx) + " reached " +
                       describe(fiber.site) + " while thread " + triple(first.threadIdx) + " waits at " +
                       describe(first.site) + " (undefined on the GPU)");
  }
  fiber.wait = wait;
  ++barrier.arrived;
}

// A returned fiber no longer takes part in its warp's or block's barriers,
// which may complete them.
void finish(Launch &launch, Fiber &fiber) {
  fiber.wait = Wait::Done;
  const unsigned warp = static_cast<unsigned>(&fiber - launch.fibers.data()) / 32;
  Barrier &warpBarrier = launch.warps[warp];
  --warpBarrier.live;
  --launch.block.live;
  if (launch.aborting)
    return;
  if (warpBarrier.arrived != 0 && warpBarrier.arrived == warpBarrier.live)
    resolveWarp(launch, warp);
  if (launch.block.arrived != 0 && launch.block.arrived == launch.block.live)
    resolveBlock(launch);
}

[[noreturn]] void runFiber(void *argument) {
  Fiber &fiber = *static_cast<Fiber *>(argument);
  Launch &launch = *gLaunch;
  try {
    (*launch.body)();
  } catch (const AbortFiber &) {
  } catch (...) {
    if (!launch.firstError)
      launch.firstError = std::current_exception();
  }
  finish(launch, fiber);
  fibers::Context finished;
  fibers::switchTo(finished, launch.scheduler);
  std::abort(); // a finished fiber is never resumed
}

void resume(Launch &launch, Fiber &fiber) {
  launch.running = &fiber;
  threadIdx = fiber.threadIdx;
  fibers::switchTo(launch.scheduler, fiber.context);
  launch.running = nullptr;
}

// Every live fiber waits and no barrier can complete: names where each group
// of consecutive threads waits.
std::string deadlockReport(const Launch &launch) {
  std::string groups;
  size_t shown = 0;
  for (size_t begin = 0; begin < launch.fibers.size();) {
    const Fiber &first = launch.fibers[begin];
    size_t end = begin + 1;
    while (end < launch.fibers.size() && launch.fibers[end].wait == first.wait &&
           (first.wait == Wait::Done || sameSite(launch.fibers[end].site, first.site)))
      ++end;
    if (++shown <= 8)
      groups += "; threads " + std::to_string(begin) + "-" + std::to_string(end - 1) + " " +
                (first.wait == Wait::Done ? std::string("have returned") : "wait at " + describe(first.site));
    begin = end;
  }
  if (shown > 8)
    groups += "; ...";
  return "v4emu: deadlock in block " + triple(blockIdx) + " (threads of the block or of a warp wait at different "
         "barriers: a divergent barrier, which hangs or is undefined on the GPU)" + groups;
}

void runBlock(Launch &launch, const fibers::Stack *stacks) {
  launch.block = Barrier{};
  launch.block.live = static_cast<unsigned>(launch.fibers.size());
  for (size_t w = 0; w < launch.warps.size(); ++w) {
    launch.warps[w] = Barrier{};
    launch.warps[w].live = static_cast<unsigned>(std::min<size_t>(32, launch.fibers.size() - 32 * w));
  }
  for (size_t t = 0; t < launch.fibers.size(); ++t) {
    Fiber &fiber = launch.fibers[t];
    fiber.wait = Wait::None;
    fibers::prepare(fiber.context, stacks[t], &runFiber, &fiber);
  }
  while (launch.block.live > 0) {
    bool ran = false;
    for (Fiber &fiber : launch.fibers)
      if (fiber.wait == Wait::None) {
        resume(launch, fiber);
        ran = true;
      }
    if (ran)
      continue;
    if (!launch.firstError)
      launch.firstError = std::make_exception_ptr(v4c::Error(deadlockReport(launch)));
    // Unwind every waiting fiber (its barrier call throws AbortFiber).
    launch.aborting = true;
    for (Fiber &fiber : launch.fibers)
      if (fiber.wait != Wait::Done)
        resume(launch, fiber);
  }
}

// Names the running CUDA thread for the stack overflow report.
void describeRunningFiber(char *buffer, size_t size) {
  if (gLaunch && gLaunch->running) {
    const uint3 t = gLaunch->running->threadIdx;
    std::snprintf(buffer, size, "CUDA thread (%u,%u,%u) of block (%u,%u,%u)", t.x, t.y, t.z, blockIdx.x,
                  blockIdx.y, blockIdx.z);
  }
}

} // namespace

detail::BlockVote detail::syncBlock(int predicate, const char *primitive, const std::source_location &where) {
  Launch &launch = currentLaunch(primitive);
  Fiber &fiber = *launch.running;
  arrive(launch, fiber, launch.block, Wait::Block, primitive, where);
  launch.block.trueCount += predicate != 0;
  if (launch.block.arrived == launch.block.live)
    resolveBlock(launch);
  else
    suspend(launch, fiber);
  return launch.vote; // no later barrier can resolve before this fiber arrives there
}

namespace {
uint64_t waitForWarp(uint64_t bits, unsigned source, bool vote, const char *primitive,
                     const std::source_location &where) {
  Launch &launch = currentLaunch(primitive);
  Fiber &fiber = *launch.running;
  const unsigned warp = static_cast<unsigned>(&fiber - launch.fibers.data()) / 32;
  Barrier &barrier = launch.warps[warp];
  arrive(launch, fiber, barrier, Wait::Warp, primitive, where);
  barrier.vote = vote;
  fiber.bits = bits;
  fiber.source = source;
  if (barrier.arrived == barrier.live)
    resolveWarp(launch, warp);
  else
    suspend(launch, fiber);
  return fiber.result;
}
} // namespace

uint64_t detail::exchangeWarp(uint64_t bits, unsigned sourceLane, const char *primitive,
                              const std::source_location &where) {
  return waitForWarp(bits, sourceLane, false, primitive, where);
}

unsigned detail::ballotWarp(unsigned mask, bool predicate, const char *primitive, const std::source_location &where) {
  return static_cast<unsigned>(waitForWarp(predicate ? 1 : 0, 0, true, primitive, where)) & mask;
}

size_t detail::launchDynamicSharedBytes() { return currentLaunch("a wgmma shared memory access").dynamicSharedBytes; }

const unsigned char *detail::dynamicSharedArrayOf(const void *p) {
  const unsigned char *byte = static_cast<const unsigned char *>(p);
  for (const DynamicShared &array : dynamicSharedArrays())
    if (byte >= array.base && byte < array.base + array.capacity)
      return array.base;
  return nullptr;
}

bool registerDynamicShared(void *base, size_t capacity) {
  std::vector<DynamicShared> &arrays = dynamicSharedArrays();
  unsigned char *bytes = static_cast<unsigned char *>(base);
  if (std::none_of(arrays.begin(), arrays.end(), [&](const DynamicShared &a) { return a.base == bytes; }))
    arrays.push_back({bytes, capacity});
  return true;
}

void misaligned(const void *address, size_t alignment, const char *what) {
  char text[32];
  std::snprintf(text, sizeof text, "%p", address);
  throw v4c::Error(std::string("v4emu: ") + what + " at " + text + " is not " + std::to_string(alignment) +
                   "-byte aligned (a misaligned access faults on the GPU)");
}

void detail::launchBlocks(dim3 grid, dim3 block, size_t dynamicSharedBytes, const std::function<void()> &body) {
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  v4c::check(threads >= 1 && threads <= 1024 && block.z <= 64,
             "v4emu::launch: block " + std::to_string(block.x) + "x" + std::to_string(block.y) + "x" +
                 std::to_string(block.z) + " is not a valid CUDA block (1..1024 threads, z <= 64)");
  v4c::check(grid.x >= 1 && grid.y >= 1 && grid.z >= 1 && grid.y <= 65535 && grid.z <= 65535,
             "v4emu::launch: grid " + std::to_string(grid.x) + "x" + std::to_string(grid.y) + "x" +
                 std::to_string(grid.z) + " is not a valid CUDA grid (y, z <= 65535, none 0)");
  v4c::check(dynamicSharedBytes <= kDynamicSharedCapacity,
             "v4emu::launch: " + std::to_string(dynamicSharedBytes) + " bytes of dynamic shared memory exceed the " +
                 std::to_string(kDynamicSharedCapacity) + " the emulation backs");
  v4c::check(gLaunch == nullptr, "v4emu::launch: launches do not nest");

  fibers::installOverflowReport(&describeRunningFiber);
  const fibers::Stack *stacks = fibers::stacks(threads);
  Launch launch;
  launch.body = &body;
  launch.dynamicSharedBytes = dynamicSharedBytes;
  launch.fibers.resize(threads);
  launch.warps.resize((threads + 31) / 32);
  for (unsigned t = 0; t < threads; ++t)
    launch.fibers[t].threadIdx = uint3{t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
  blockDim = block;
  gridDim = grid;
  gLaunch = &launch;
  struct Active {
    ~Active() { gLaunch = nullptr; }
  } active;

  const size_t filled = std::min(kDynamicSharedCapacity, dynamicSharedBytes + kGuardBytes);
  const uint64_t blocks = uint64_t(grid.x) * grid.y * grid.z;
  std::string guardViolation, wgmmaError, cpAsyncError;
  for (uint64_t b = 0; b < blocks && !launch.firstError && guardViolation.empty() && wgmmaError.empty() &&
                       cpAsyncError.empty();
       ++b) {
    for (const DynamicShared &array : dynamicSharedArrays())
      std::memset(array.base, kFill, std::min(filled, array.capacity));
    blockIdx = uint3{static_cast<unsigned>(b % grid.x), static_cast<unsigned>((b / grid.x) % grid.y),
                     static_cast<unsigned>(b / (uint64_t(grid.x) * grid.y))};
    wgmma::detail::beginBlock(static_cast<unsigned>(threads));
    cpasync::detail::beginBlock(static_cast<unsigned>(threads));
    runBlock(launch, stacks);
    if (!launch.firstError) {
      wgmmaError = wgmma::detail::endBlock();
      cpAsyncError = cpasync::detail::endBlock();
    }
    for (const DynamicShared &array : dynamicSharedArrays())
      for (size_t i = dynamicSharedBytes; i < std::min(filled, array.capacity); ++i)
        if (array.base[i] != kFill) {
          guardViolation = "v4emu::launch: block " + triple(blockIdx) + " wrote dynamic shared byte " +
                           std::to_string(i) + ", past the launch's " + std::to_string(dynamicSharedBytes) + " bytes";
          break;
        }
  }
  if (launch.firstError)
    std::rethrow_exception(launch.firstError);
  v4c::check(guardViolation.empty(), guardViolation);
  v4c::check(wgmmaError.empty(), wgmmaError);
  v4c::check(cpAsyncError.empty(), cpAsyncError);
}

} // namespace v4emu
