// The cp.async model of the host emulation (CpAsyncEmulation.h): per-thread
// queues of issued copies performed at the wait_group that retires their
// group, and a per-chunk record of the block's dynamic shared memory that
// says who may see each copied chunk yet.
#include "codegen/cuda/testing/HostEmulation.h"
#include "codegen/cuda/testing/EmulationFailure.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "common/Error.h"

namespace v4emu::cpasync {
namespace {

constexpr unsigned char kPoison = 0xFF; // NaN as f32 / bf16 / f16, as the launch's fill
constexpr size_t kChunk = 16;

std::string site(const std::source_location &where) { return describeSite(where); }

// The life of the last cp.async into a 16-byte chunk of dynamic shared memory.
enum class ChunkState : unsigned char {
  Untracked, // no cp.async wrote it in this block
  Pending,   // issued; no wait_group of its thread retired it yet
  Landed,    // performed, visible to its thread only (no barrier since)
  Fenced,    // landed, and its thread ran fence.proxy.async since
  Generic,   // a barrier published it to the threads, but not to the async proxy (no fence)
  Published, // a barrier published it to every thread and the async proxy
};

struct Chunk {
  ChunkState state = ChunkState::Untracked;
  unsigned thread = 0;  // the copying thread
  uint32_t site = 0;    // index into BlockState::sites
};

struct Copy {
  unsigned char *dst;
  const unsigned char *src;
  int srcBytes;
  int group; // -1 until committed
  std::source_location where;
};

struct ThreadState {
  std::vector<Copy> pending; // issue order
  std::vector<uint32_t> landed; // chunk indices performed since the last barrier
  int committedGroups = 0, retiredGroups = 0;
};

struct BlockState {
  bool active = false; // some thread issued a cp.async in this block
  unsigned threads = 0;
  std::vector<ThreadState> threadStates;
  unsigned char *array = nullptr; // the dynamic shared array the copies write
  std::vector<Chunk> chunks;      // of `array`, by byte offset / 16
  std::vector<std::source_location> sites;
};
BlockState gBlock;

ThreadState &thread() {
  if (!gBlock.active) {
    gBlock.active = true;
    gBlock.threadStates.assign(gBlock.threads, ThreadState{});
  }
  return gBlock.threadStates[linearThread()];
}

uint32_t siteIndex(const std::source_location &where) {
  for (size_t i = gBlock.sites.size(); i-- > 0;)
    if (gBlock.sites[i].line() == where.line() && gBlock.sites[i].column() == where.column() &&
        std::strcmp(gBlock.sites[i].file_name(), where.file_name()) == 0)
      return static_cast<uint32_t>(i);
  gBlock.sites.push_back(where);
  return static_cast<uint32_t>(gBlock.sites.size() - 1);
}

uint32_t chunkIndex(const unsigned char *dst) { return static_cast<uint32_t>((dst - gBlock.array) / kChunk); }

// Performs the oldest pending copy of `state` (at a wait_group).
void perform(ThreadState &state) {
  const Copy &op = state.pending.front();
  if (op.srcBytes > 0)
    std::memcpy(op.dst, op.src, static_cast<size_t>(op.srcBytes));
  std::memset(op.dst + op.srcBytes, 0, kChunk - static_cast<size_t>(op.srcBytes));
  const uint32_t index = chunkIndex(op.dst);
  Chunk &chunk = gBlock.chunks[index];
  // A later copy into the same chunk (still pending) keeps the chunk pending.
  const bool overwritten = std::any_of(state.pending.begin() + 1, state.pending.end(),
                                       [&](const Copy &later) { return later.dst == op.dst; });
  if (!overwritten && chunk.state == ChunkState::Pending && chunk.thread == linearThread()) {
    chunk.state = ChunkState::Landed;
    state.landed.push_back(index);
  }
  state.pending.erase(state.pending.begin());
}

std::string describeChunk(const Chunk &chunk) {
  return "the cp.async issued at " + site(gBlock.sites[chunk.site]) + " by thread " + std::to_string(chunk.thread);
}

} // namespace

void copy(void *dstPointer, const void *srcPointer, int srcBytes, const std::source_location &where) {
  const size_t dynamicBytes = v4emu::detail::launchDynamicSharedBytes(); // fails outside a launch
  auto *dst = static_cast<unsigned char *>(dstPointer);
  const auto *src = static_cast<const unsigned char *>(srcPointer);
  if (srcBytes < 0 || srcBytes > static_cast<int>(kChunk))
    failAtSite(where, "cp.async", "src-size " + std::to_string(srcBytes) + " is not in 0..16");
  if (reinterpret_cast<uintptr_t>(dst) % kChunk != 0 || reinterpret_cast<uintptr_t>(src) % kChunk != 0)
    failAtSite(where, "cp.async",
         std::string("its ") + (reinterpret_cast<uintptr_t>(dst) % kChunk != 0 ? "shared destination" : "global source") +
             " is not 16-byte aligned (the GPU faults)");
  if (srcBytes > 0 && src == nullptr)
    failAtSite(where, "cp.async", "a null source with src-size " + std::to_string(srcBytes));
  unsigned char *array = const_cast<unsigned char *>(v4emu::detail::dynamicSharedArrayOf(dst));
  if (!array)
    failAtSite(where, "cp.async", "the destination is not in dynamic shared memory (the only kind the emulation tracks)");
  if (static_cast<size_t>(dst - array) + kChunk > dynamicBytes)
    failAtSite(where, "cp.async",
         "the destination, dynamic shared byte " + std::to_string(dst - array) + ", is not inside the launch's " +
             std::to_string(dynamicBytes) + " bytes");
  ThreadState &state = thread();
  if (gBlock.array && gBlock.array != array)
    failAtSite(where, "cp.async", "two dynamic shared arrays in one block (the GPU has one)");
  if (!gBlock.array) {
    gBlock.array = array;
    gBlock.chunks.assign(kDynamicSharedCapacity / kChunk, Chunk{});
  }
  std::memset(dst, kPoison, kChunk);
  gBlock.chunks[chunkIndex(dst)] = Chunk{ChunkState::Pending, linearThread(), siteIndex(where)};
  state.pending.push_back(Copy{dst, src, srcBytes, -1, where});
}

void commitGroup(const std::source_location &where) {
  v4emu::detail::launchDynamicSharedBytes();
  (void)where;
  ThreadState &state = thread();
  for (Copy &op : state.pending)
    if (op.group < 0)
      op.group = state.committedGroups;
  ++state.committedGroups;
}

void waitGroup(int pending, const std::source_location &where) {
  v4emu::detail::launchDynamicSharedBytes();
  if (pending < 0 || pending > 7)
    failAtSite(where, "cp.async.wait_group", "pending count " + std::to_string(pending) + " is not in 0..7");
  ThreadState &state = thread();
  while (state.committedGroups - state.retiredGroups > pending) {
    while (!state.pending.empty() && state.pending.front().group == state.retiredGroups)
      perform(state);
    ++state.retiredGroups;
  }
}

void fenceProxyAsync(const std::source_location &) {
  if (!gBlock.active)
    return;
  ThreadState &state = thread();
  for (uint32_t index : state.landed) {
    Chunk &chunk = gBlock.chunks[index];
    if (chunk.state == ChunkState::Landed && chunk.thread == linearThread())
      chunk.state = ChunkState::Fenced;
  }
}

void detail::beginBlock(unsigned threads) {
  gBlock.active = false;
  gBlock.threads = threads;
  gBlock.array = nullptr;
  gBlock.sites.clear();
}

void detail::blockBarrier() {
  if (!gBlock.active)
    return;
  for (ThreadState &state : gBlock.threadStates) {
    for (uint32_t index : state.landed) {
      Chunk &chunk = gBlock.chunks[index];
      if (chunk.state == ChunkState::Fenced)
        chunk.state = ChunkState::Published;
      else if (chunk.state == ChunkState::Landed)
        chunk.state = ChunkState::Generic;
    }
    state.landed.clear();
  }
}

std::string detail::endBlock() {
  if (!gBlock.active)
    return "";
  for (unsigned t = 0; t < gBlock.threads; ++t) {
    const ThreadState &state = gBlock.threadStates[t];
    if (!state.pending.empty()) {
      const Copy &op = state.pending.front();
      return "v4emu: block (" + std::to_string(blockIdx.x) + "," + std::to_string(blockIdx.y) + "," +
             std::to_string(blockIdx.z) + "): thread " + std::to_string(t) + " exited with " +
             std::to_string(state.pending.size()) + " cp.async copies pending, the first issued at " + site(op.where) +
             (op.group < 0 ? " (never committed)" : " (no cp.async.wait_group retired its group)");
    }
  }
  return "";
}

void detail::checkAsyncRead(uint32_t sharedAddress, const char *reader, const std::source_location &where) {
  if (!gBlock.array || sharedAddress < wgmma::kDynamicSharedWindow)
    return; // nothing of this block's shared memory came through cp.async
  const uint32_t index = (sharedAddress - wgmma::kDynamicSharedWindow) / kChunk;
  if (index >= gBlock.chunks.size())
    return;
  const Chunk &chunk = gBlock.chunks[index];
  switch (chunk.state) {
  case ChunkState::Untracked:
  case ChunkState::Published:
    return;
  case ChunkState::Pending:
    failAtSite(where, reader,
         "it reads shared bytes of " + describeChunk(chunk) +
             " that no cp.async.wait_group of that thread has retired (a wait_group N too large, or a missing "
             "__syncthreads between the copying thread's wait and this read)");
  case ChunkState::Fenced:
    if (chunk.thread == linearThread())
      return; // its own copy, fenced: ordered before this thread's read without a barrier
    [[fallthrough]];
  case ChunkState::Landed:
    failAtSite(where, reader,
         "it reads shared bytes of " + describeChunk(chunk) +
             " with no __syncthreads since that thread's cp.async.wait_group (only the copying thread sees them)");
  case ChunkState::Generic:
    failAtSite(where, reader,
         "it reads shared bytes of " + describeChunk(chunk) +
             " through the async proxy, but that thread ran no fence.proxy.async between its cp.async.wait_group and "
             "the barrier");
  }
}

} // namespace v4emu::cpasync
