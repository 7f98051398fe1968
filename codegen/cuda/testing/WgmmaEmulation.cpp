// The wgmma model of the host emulation (WgmmaEmulation.h): per-thread
// queues of issued mma_async operations, executed when a wait_group retires
// them, and a per-warpgroup log of calls that every thread must follow.
#include "codegen/cuda/testing/HostEmulation.h"
#include "codegen/cuda/testing/EmulationFailure.h"

#include <algorithm>
#include <string>
#include <vector>

#include "common/Error.h"

namespace v4emu::wgmma {
namespace {

constexpr int kWarpgroup = 128;
constexpr int kMaxN = 256;
constexpr uint32_t kPoisonBits = 0x7fc0dead; // a quiet NaN no arithmetic produces
constexpr uint32_t kSharedAddressLimit = uint32_t(1) << 18; // the descriptor's 14 bits of address >> 4

enum class Call : unsigned char { Fence, Mma, Commit, Wait };

const char *callName(Call call) {
  switch (call) {
  case Call::Fence:
    return "wgmma.fence";
  case Call::Mma:
    return "wgmma.mma_async";
  case Call::Commit:
    return "wgmma.commit_group";
  case Call::Wait:
    return "wgmma.wait_group";
  }
  return "?";
}

std::string site(const std::source_location &where) { return describeSite(where); }

std::string hex(uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%llx", static_cast<unsigned long long>(value));
  return text;
}

// One call as the warpgroup's log holds it: what every thread must repeat.
struct CallRecord {
  Call kind;
  int n = 0, pending = 0;
  uint64_t a = 0, b = 0;
  bool accumulate = false;
  std::source_location where;
  Operands operands = Operands::Bf16;
};

bool sameCall(const CallRecord &x, const CallRecord &y) {
  return x.kind == y.kind && x.n == y.n && x.pending == y.pending && x.a == y.a && x.b == y.b &&
         x.accumulate == y.accumulate && x.operands == y.operands && x.where.line() == y.where.line() &&
         std::string_view(x.where.file_name()) == y.where.file_name();
}

std::string describe(const CallRecord &call) {
  std::string text = callName(call.kind);
  if (call.kind == Call::Mma)
    text += std::string(call.operands == Operands::E4m3 ? " e4m3" : "") + " n" + std::to_string(call.n) + " (descA " + hex(call.a) + ", descB " + hex(call.b) +
            (call.accumulate ? ", accumulate)" : ", overwrite)");
  if (call.kind == Call::Wait)
    text += " " + std::to_string(call.pending);
  return text + " at " + site(call.where);
}

// An issued mma_async of one thread.
struct Mma {
  float *acc;
  int n;
  uint64_t a, b;
  bool accumulate;
  int group; // -1 until committed
  std::source_location where;
  float input[kMaxN / 2]; // the accumulators it adds to (a chained mma: its predecessor's result)
  Operands operands;
};

struct ThreadState {
  std::vector<Mma> pending; // issue order
  int committedGroups = 0, retiredGroups = 0;
  bool fenced = false;
  size_t calls = 0;
};

struct BlockState {
  bool active = false; // some thread made a wgmma call in this block
  unsigned threads = 0;
  std::vector<ThreadState> threadStates;
  std::vector<std::vector<CallRecord>> warpgroupLogs;
  const unsigned char *array = nullptr; // the dynamic shared array the descriptors address
};
BlockState gBlock;

ThreadState &thread() {
  if (!gBlock.active) {
    gBlock.active = true;
    gBlock.threadStates.assign(gBlock.threads, ThreadState{});
    gBlock.warpgroupLogs.assign((gBlock.threads + kWarpgroup - 1) / kWarpgroup, {});
  }
  return gBlock.threadStates[linearThread()];
}

// Appends `call` to the warpgroup's log, or checks it against the log's entry.
ThreadState &record(const CallRecord &call) {
  v4emu::detail::launchDynamicSharedBytes(); // fails outside a launch
  const unsigned t = linearThread(), warpgroup = t / kWarpgroup;
  if ((warpgroup + 1) * kWarpgroup > gBlock.threads)
    failAtSite(call.where, callName(call.kind),
         "warpgroup " + std::to_string(warpgroup) + " of a block of " + std::to_string(gBlock.threads) +
             " threads is incomplete (wgmma is executed by all 128 threads of a warpgroup)");
  ThreadState &state = thread();
  std::vector<CallRecord> &log = gBlock.warpgroupLogs[warpgroup];
  if (state.calls < log.size()) {
    if (!sameCall(log[state.calls], call))
      failAtSite(call.where, callName(call.kind),
           "wgmma call #" + std::to_string(state.calls) + " of this thread is " + describe(call) +
               ", but another thread of warpgroup " + std::to_string(warpgroup) + " made " +
               describe(log[state.calls]) + " (wgmma calls must be warpgroup-uniform)");
  } else {
    log.push_back(call);
  }
  ++state.calls;
  return state;
}

struct Descriptor {
  uint32_t start, sbo;
};

// Decodes `desc` and checks the operand of `rows` rows against what the
// emulation (and the kernels' layout) implement.
Descriptor decode(uint64_t desc, int rows, const char *operand, const std::source_location &where) {
  const Descriptor d{static_cast<uint32_t>(desc & 0x3fff) << 4, static_cast<uint32_t>((desc >> 32) & 0x3fff) << 4};
  const unsigned swizzle = static_cast<unsigned>(desc >> 62), baseOffset = static_cast<unsigned>((desc >> 49) & 7);
  const std::string name = std::string("descriptor ") + operand + " " + hex(desc) + ": ";
  if (swizzle != 1)
    failAtSite(where, "wgmma.mma_async", name + "swizzle mode " + std::to_string(swizzle) + " (only mode 1, 128B, is emulated)");
  if (baseOffset != 0)
    failAtSite(where, "wgmma.mma_async", name + "base offset " + std::to_string(baseOffset) + " (only 0 is emulated)");
  if (d.sbo == 0 || d.sbo % 1024 != 0)
    failAtSite(where, "wgmma.mma_async",
         name + "stride byte offset " + std::to_string(d.sbo) + " is not a nonzero multiple of 1024 (8 rows of 128 B)");
  if (d.start % 1024 >= 128 || d.start % 128 + 32 > 128)
    failAtSite(where, "wgmma.mma_async",
         name + "start address " + hex(d.start) + " is at byte " + std::to_string(d.start % 1024) +
             " of its 1024-byte swizzle period: it must be row 0 of an 8-row group plus a k offset of 0..96 bytes "
             "(round the tile up with wgmmaAlignTile)");
  const uint64_t first = d.start - d.start % 128;
  const uint64_t last = first + uint64_t((rows - 1) / 8) * d.sbo + uint64_t((rows - 1) % 8) * 128 + 128;
  const uint64_t end = kDynamicSharedWindow + v4emu::detail::launchDynamicSharedBytes();
  if (first < kDynamicSharedWindow || last > end)
    failAtSite(where, "wgmma.mma_async",
         name + "its " + std::to_string(rows) + " rows span shared bytes [" + hex(first) + ", " + hex(last) +
             "), outside the launch's dynamic shared memory [" + hex(kDynamicSharedWindow) + ", " + hex(end) + ")");
  return d;
}

// The 16-byte chunks one mma_async reads (32 bytes of each of `rows` rows,
// swizzled) must not hold a cp.async the async proxy cannot see yet
// (CpAsyncEmulation.h): checked at issue, when the GPU may start reading.
void checkAsyncOperand(const Descriptor &d, int rows, const std::source_location &where) {
  for (int row = 0; row < rows; ++row)
    for (uint32_t half = 0; half < 32; half += 16) {
      const uint32_t address = d.start + uint32_t(row / 8) * d.sbo + uint32_t(row % 8) * 128 + half;
      cpasync::detail::checkAsyncRead(address ^ (((address >> 7) & 7) << 4), "wgmma.mma_async", where);
    }
}

// K of one mma_async: 32 bytes of each operand row.
int mmaK(Operands operands) { return operands == Operands::E4m3 ? 32 : 16; }

// Element (row, k) of a K-major bf16 or e4m3 operand, through the 128-byte swizzle.
float element(const Descriptor &d, Operands operands, int row, int k) {
  const uint32_t bytes = operands == Operands::E4m3 ? 1 : 2;
  const uint32_t address = d.start + uint32_t(row / 8) * d.sbo + uint32_t(row % 8) * 128 + bytes * uint32_t(k);
  const uint32_t swizzled = address ^ (((address >> 7) & 7) << 4);
  const unsigned char *at = gBlock.array + (swizzled - kDynamicSharedWindow);
  if (operands == Operands::E4m3) {
    __nv_fp8_e4m3 code;
    std::memcpy(&code, at, 1);
    return static_cast<float>(code);
  }
  __nv_bfloat16 value;
  std::memcpy(&value, at, sizeof value);
  return __bfloat162float(value);
}

bool poisoned(const float *acc, int count) {
  for (int i = 0; i < count; ++i)
    if (v4emuBitCast<uint32_t>(acc[i]) != kPoisonBits)
      return false;
  return true;
}

void poison(float *acc, int count) {
  std::fill(acc, acc + count, v4emuBitCast<float>(kPoisonBits));
}

// Runs the oldest pending mma of the running thread (at a wait_group).
void execute(ThreadState &state, const std::source_location &waitSite) {
  Mma &op = state.pending.front();
  const int count = op.n / 2;
  if (!poisoned(op.acc, count))
    failAtSite(waitSite, "wgmma.wait_group",
         "the accumulators of the wgmma.mma_async issued at " + site(op.where) +
             " were written before this wait retired it (undefined on the GPU)");
  const Descriptor da = decode(op.a, 64, "A", op.where), db = decode(op.b, op.n, "B", op.where);
  const int t = static_cast<int>(linearThread() % kWarpgroup);
  const int row0 = 16 * (t / 32) + (t % 32) / 4, kDepth = mmaK(op.operands);
  float a[2][32];
  for (int half = 0; half < 2; ++half)
    for (int k = 0; k < kDepth; ++k)
      a[half][k] = element(da, op.operands, row0 + 8 * half, k);
  float result[kMaxN / 2];
  for (int i = 0; i < count; ++i) {
    const int col = 8 * (i / 4) + 2 * (t % 4) + (i % 2);
    const float *ar = a[(i % 4) / 2];
    float sum = op.accumulate ? op.input[i] : 0.0f;
    for (int k = 0; k < kDepth; ++k)
      sum += ar[k] * element(db, op.operands, col, k);
    result[i] = sum;
  }
  // A later pending mma on the same accumulators adds to this result; else
  // it lands in the registers.
  auto next = std::find_if(state.pending.begin() + 1, state.pending.end(), [&](const Mma &m) { return m.acc == op.acc; });
  if (next != state.pending.end())
    std::copy(result, result + count, next->input);
  else
    std::copy(result, result + count, op.acc);
  state.pending.erase(state.pending.begin());
}

} // namespace

uint32_t sharedAddress(const void *p, const std::source_location &where) {
  v4emu::detail::launchDynamicSharedBytes(); // fails outside a launch
  const unsigned char *array = v4emu::detail::dynamicSharedArrayOf(p);
  if (!array)
    failAtSite(where, "shared address", "the pointer is not in dynamic shared memory (wgmma operands must be)");
  if (gBlock.array && gBlock.array != array)
    failAtSite(where, "shared address", "two dynamic shared arrays in one block (the GPU has one)");
  gBlock.array = array;
  const uint64_t address = kDynamicSharedWindow + (static_cast<const unsigned char *>(p) - array);
  if (address >= kSharedAddressLimit)
    failAtSite(where, "shared address", hex(address) + " is beyond the 256 KiB of shared addresses");
  return static_cast<uint32_t>(address);
}

void *alignShared(void *p, uint32_t alignment, const std::source_location &where) {
  const uint32_t address = sharedAddress(p, where);
  const uint32_t rounded = (address + alignment - 1) / alignment * alignment;
  return static_cast<unsigned char *>(p) + (rounded - address);
}

void fence(const std::source_location &where) {
  record(CallRecord{Call::Fence, 0, 0, 0, 0, false, where}).fenced = true;
}

void commitGroup(const std::source_location &where) {
  ThreadState &state = record(CallRecord{Call::Commit, 0, 0, 0, 0, false, where});
  for (Mma &op : state.pending)
    if (op.group < 0)
      op.group = state.committedGroups;
  ++state.committedGroups;
}

void waitGroup(int pending, const std::source_location &where) {
  ThreadState &state = record(CallRecord{Call::Wait, 0, pending, 0, 0, false, where});
  if (pending < 0 || pending > 7)
    failAtSite(where, "wgmma.wait_group", "pending count " + std::to_string(pending) + " is not in 0..7");
  while (state.committedGroups - state.retiredGroups > pending) {
    while (!state.pending.empty() && state.pending.front().group == state.retiredGroups)
      execute(state, where);
    ++state.retiredGroups;
  }
  state.fenced = false;
}

void mmaAsync(float *acc, int n, uint64_t descA, uint64_t descB, bool accumulate, const std::source_location &where) {
  mmaAsync(acc, n, Operands::Bf16, descA, descB, accumulate, where);
}

void mmaAsync(float *acc, int n, Operands operands, uint64_t descA, uint64_t descB, bool accumulate,
              const std::source_location &where) {
  ThreadState &state = record(CallRecord{Call::Mma, n, 0, descA, descB, accumulate, where, operands});
  if (n < 8 || n > kMaxN || n % 8 != 0)
    failAtSite(where, "wgmma.mma_async",
         "n = " + std::to_string(n) + " (m64nNk" + std::to_string(mmaK(operands)) + " takes N = 8..256 in steps of 8)");
  if (!state.fenced)
    failAtSite(where, "wgmma.mma_async",
         "no wgmma.fence since this thread's last wgmma.wait_group (or its start): the accumulators may be "
         "accessed out of order");
  if (!gBlock.array)
    failAtSite(where, "wgmma.mma_async", "no descriptor of this block was built from a shared pointer (wgmmaDescriptor)");
  const Descriptor da = decode(descA, 64, "A", where), db = decode(descB, n, "B", where);
  if (linearThread() % kWarpgroup == 0) { // once per warpgroup: its operands are visible to the async proxy
    checkAsyncOperand(da, 64, where);
    checkAsyncOperand(db, n, where);
  }
  const int count = n / 2;
  bool chained = false;
  for (const Mma &other : state.pending) {
    if (other.acc == acc && other.n == n) {
      chained = true;
    } else if (acc < other.acc + other.n / 2 && other.acc < acc + count) {
      failAtSite(where, "wgmma.mma_async",
           "its accumulators overlap those of the pending wgmma.mma_async issued at " + site(other.where) +
               " with another shape or start");
    }
  }
  Mma op{acc, n, descA, descB, accumulate, -1, where, {}, operands};
  if (chained) {
    if (!poisoned(acc, count))
      failAtSite(where, "wgmma.mma_async",
           "the accumulators of a pending wgmma.mma_async were written before this chained one was issued");
  } else {
    std::copy(acc, acc + count, op.input);
    poison(acc, count);
  }
  state.pending.push_back(op);
}

void detail::beginBlock(unsigned threads) {
  gBlock.active = false;
  gBlock.threads = threads;
  gBlock.array = nullptr;
}

std::string detail::endBlock() {
  if (!gBlock.active)
    return "";
  const std::string block = "v4emu: block (" + std::to_string(blockIdx.x) + "," + std::to_string(blockIdx.y) + "," +
                            std::to_string(blockIdx.z) + "): ";
  for (unsigned t = 0; t < gBlock.threads; ++t) {
    const ThreadState &state = gBlock.threadStates[t];
    const std::vector<CallRecord> &log = gBlock.warpgroupLogs[t / kWarpgroup];
    if (state.calls != log.size())
      return block + "thread " + std::to_string(t) + " made " + std::to_string(state.calls) +
             " wgmma calls, another thread of its warpgroup " + std::to_string(log.size()) + " (the last: " +
             describe(log.back()) + "); wgmma calls must be warpgroup-uniform";
    if (!state.pending.empty())
      return block + "thread " + std::to_string(t) + ": the wgmma.mma_async issued at " +
             site(state.pending.front().where) + " was never retired by a wgmma.wait_group";
  }
  return "";
}

} // namespace v4emu::wgmma
