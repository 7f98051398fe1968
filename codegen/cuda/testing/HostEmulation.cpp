// The launch loop of the CUDA host emulation (HostEmulation.h).
#include "codegen/cuda/testing/HostEmulation.h"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>
#include <thread>

#include "common/Error.h"

namespace v4emu {
namespace {

BlockState *activeBlock = nullptr;

struct DynamicShared {
  unsigned char *base;
  size_t capacity;
};

std::vector<DynamicShared> &dynamicSharedArrays() {
  static std::vector<DynamicShared> arrays;
  return arrays;
}

constexpr unsigned char kFill = 0xFF;   // NaN as f32 / bf16 / f16, -1 as an integer
constexpr size_t kGuardBytes = 1024;    // checked past the launch's dynamic size

} // namespace

void detail::BarrierCompletion::operator()() noexcept {
  block->trueResult = block->trueCount.exchange(0);
  block->arrivalResult = block->arrivals.exchange(0);
}

BlockState::BlockState(unsigned threadCount)
    : threads(threadCount), barrier(threadCount, detail::BarrierCompletion{this}) {
  const unsigned warps = (threads + 31) / 32;
  for (unsigned w = 0; w < warps; ++w)
    warpBarriers.push_back(std::make_unique<std::barrier<>>(std::min(32u, threads - 32 * w)));
  exchange.resize(warps);
}

BlockState &currentBlock() {
  if (!activeBlock)
    throw v4c::Error("v4emu: a CUDA block primitive was called outside v4emu::launch");
  return *activeBlock;
}

std::mutex &atomicMutex() {
  static std::mutex mutex;
  return mutex;
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

unsigned warpBallot(unsigned mask, bool predicate) {
  // Every live lane publishes its predicate, then reads all of them.
  BlockState &block = currentBlock();
  const unsigned lane = linearThread() % 32, warp = linearThread() / 32;
  block.exchange[warp][lane] = predicate ? 1u : 0u;
  block.warpBarriers[warp]->arrive_and_wait();
  unsigned ballot = 0;
  const unsigned live = std::min(32u, block.threads - 32 * warp);
  for (unsigned l = 0; l < live; ++l)
    if ((mask >> l & 1u) && block.exchange[warp][l])
      ballot |= 1u << l;
  block.warpBarriers[warp]->arrive_and_wait();
  return ballot;
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
  v4c::check(activeBlock == nullptr, "v4emu::launch: launches do not nest");

  const size_t filled = std::min(kDynamicSharedCapacity, dynamicSharedBytes + kGuardBytes);
  const unsigned threadCount = static_cast<unsigned>(threads);
  std::unique_ptr<BlockState> state;
  // Workers and this thread meet here before and after every block.
  std::barrier<> gate(threadCount + 1);
  std::mutex errorMutex;
  std::exception_ptr firstError;
  bool stop = false;
  const uint64_t blocks = uint64_t(grid.x) * grid.y * grid.z;

  std::vector<std::thread> workers;
  workers.reserve(threadCount);
  for (unsigned t = 0; t < threadCount; ++t)
    workers.emplace_back([&, t] {
      threadIdx = uint3{t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
      for (;;) {
        gate.arrive_and_wait(); // the block is set up
        if (stop)
          return;
        try {
          body();
        } catch (...) {
          std::lock_guard<std::mutex> lock(errorMutex);
          if (!firstError)
            firstError = std::current_exception();
        }
        // A finished thread no longer takes part in its warp's or block's barriers.
        state->warpBarriers[t / 32]->arrive_and_drop();
        state->barrier.arrive_and_drop();
        gate.arrive_and_wait(); // the block is done
      }
    });

  std::string guardViolation;
  for (uint64_t b = 0; b < blocks && !firstError && guardViolation.empty(); ++b) {
    for (const DynamicShared &array : dynamicSharedArrays())
      std::memset(array.base, kFill, std::min(filled, array.capacity));
    state = std::make_unique<BlockState>(threadCount);
    activeBlock = state.get();
    blockIdx = uint3{static_cast<unsigned>(b % grid.x), static_cast<unsigned>((b / grid.x) % grid.y),
                     static_cast<unsigned>(b / (uint64_t(grid.x) * grid.y))};
    blockDim = block;
    gridDim = grid;
    gate.arrive_and_wait();
    gate.arrive_and_wait();
    activeBlock = nullptr;
    for (const DynamicShared &array : dynamicSharedArrays())
      for (size_t i = dynamicSharedBytes; i < std::min(filled, array.capacity); ++i)
        if (array.base[i] != kFill) {
          guardViolation = "v4emu::launch: block (" + std::to_string(blockIdx.x) + "," + std::to_string(blockIdx.y) +
                           "," + std::to_string(blockIdx.z) + ") wrote dynamic shared byte " + std::to_string(i) +
                           ", past the launch's " + std::to_string(dynamicSharedBytes) + " bytes";
          break;
        }
  }
  stop = true;
  gate.arrive_and_wait();
  for (std::thread &worker : workers)
    worker.join();
  if (firstError)
    std::rethrow_exception(firstError);
  v4c::check(guardViolation.empty(), guardViolation);
}

} // namespace v4emu
