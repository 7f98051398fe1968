// The device KV pool: its LRU / pin policy on plain residents (no device),
// then KvSlots (a session's cache slots) preempted and swapped back in on the
// emulated driver (tests/emulated-cuda: real driver calls, device memory the
// host cannot touch), no kernels involved.
#include <gtest/gtest.h>


#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "runtime/cuda/EmulatorQueries.h"
#include "runtime/cuda/CudaDriver.h"
#include "runtime/cuda/DeviceKvPool.h"
#include "runtime/cuda/KvSlots.h"
#include "runtime/cuda/LaunchParams.h"
#include "runtime/cuda/Sm90aDeviceTest.h"

namespace v4rt::cuda {
namespace {

// A resident whose "device state" is a counter: swapOut/swapIn log what the
// pool asked for, so the tests see the order of preemptions.
class CountingResident final : public KvResident {
public:
  CountingResident(std::string name, uint64_t bytes, std::vector<std::string> &log)
      : name_(std::move(name)), bytes_(bytes), log_(log) {}
  uint64_t residentBytes() const override { return bytes_; }
  uint64_t swapIn() override {
    if (shortages > 0) { // the device has less free memory than the budget promised
      --shortages;
      log_.push_back("short " + name_);
      throw DeviceMemoryShortage(name_ + " needs " + std::to_string(bytes_) + " bytes, 0 are free");
    }
    log_.push_back("in " + name_);
    return swappedOut_ ? bytes_ / 2 : 0; // live bytes: half of the slots
  }
  uint64_t swapOut() override {
    log_.push_back("out " + name_);
    swappedOut_ = true;
    return bytes_ / 2;
  }
  std::string describe() const override { return name_; }
  int shortages = 0; // swapIn calls that find the device full

private:
  std::string name_;
  uint64_t bytes_;
  std::vector<std::string> &log_;
  bool swappedOut_ = false;
};

// A pool of `budget` bytes with residents a, b and c of 100 bytes each
// registered (not yet resident); their swaps are logged in `log`.
struct ThreeResidents {
  explicit ThreeResidents(uint64_t budget) : pool(budget) {
    pool.add(a);
    pool.add(b);
    pool.add(c);
  }
  std::vector<std::string> log;
  DeviceKvPool pool;
  CountingResident a{"a", 100, log}, b{"b", 100, log}, c{"c", 100, log};
};

TEST(DeviceKvPool, PreemptsTheLeastRecentlyUsed) {
  ThreeResidents three(200);
  DeviceKvPool &pool = three.pool;
  CountingResident &a = three.a, &b = three.b, &c = three.c;
  const std::vector<std::string> &log = three.log;
  EXPECT_TRUE(pool.acquire(a));
  EXPECT_TRUE(pool.acquire(b));
  EXPECT_FALSE(pool.acquire(a)); // already resident: only refreshed (a is now the most recent)
  EXPECT_TRUE(pool.acquire(c));  // b is the least recently used
  EXPECT_EQ(log, (std::vector<std::string>{"in a", "in b", "out b", "in c"}));
  EXPECT_TRUE(pool.isResident(a));
  EXPECT_FALSE(pool.isResident(b));
  EXPECT_TRUE(pool.acquire(b)); // a is now the oldest
  EXPECT_FALSE(pool.isResident(a));
  const DeviceKvPoolStats stats = pool.stats();
  EXPECT_EQ(stats.preemptions, 2u);
  EXPECT_EQ(stats.swapIns, 1u); // b came back; a and c are first-time residents
  EXPECT_EQ(stats.bytesMoved, 50u + 50u + 50u); // out b, out a, in b
  EXPECT_EQ(stats.bytesInUse, 200u);
  EXPECT_EQ(stats.peakBytesInUse, 200u);
  EXPECT_EQ(stats.resident, 2u);
  EXPECT_EQ(stats.registered, 3u);
  const std::vector<const KvResident *> order = pool.residentsByRecency();
  ASSERT_EQ(order.size(), 2u);
  EXPECT_EQ(order[0], &b);
  EXPECT_EQ(order[1], &c);
}

TEST(DeviceKvPool, NeverPreemptsPinnedResidents) {
  ThreeResidents three(200);
  DeviceKvPool &pool = three.pool;
  CountingResident &a = three.a, &b = three.b, &c = three.c;
  {
    KvPinScope step(pool);
    step.add(a);
    step.add(b);
    EXPECT_TRUE(pool.isPinned(a) && pool.isPinned(b));
    try {
      pool.acquire(c);
      FAIL() << "every resident is pinned: c cannot fit";
    } catch (const v4c::Error &e) {
      const std::string message = e.what();
      EXPECT_NE(message.find("device KV pool exhausted: c needs 100 bytes"), std::string::npos) << message;
      EXPECT_NE(message.find("2 pinned sessions"), std::string::npos) << message;
      EXPECT_EQ(message.find('\n'), std::string::npos);
    }
    EXPECT_FALSE(pool.isResident(c));
  }
  EXPECT_FALSE(pool.isPinned(a));
  // a was used before b: with the pins gone it is the one to go.
  EXPECT_TRUE(pool.acquire(c));
  EXPECT_FALSE(pool.isResident(a));
  EXPECT_TRUE(pool.isResident(b));
  // Pins nest; unpinning more than pinned and pinning a preempted one are errors.
  pool.pin(b);
  pool.pin(b);
  pool.unpin(b);
  EXPECT_TRUE(pool.isPinned(b));
  pool.unpin(b);
  EXPECT_THROW(pool.unpin(b), v4c::Error);
  EXPECT_THROW(pool.pin(a), v4c::Error);
}

TEST(DeviceKvPool, ADeviceShortagePreemptsMoreThanTheBudgetAsks) {
  ThreeResidents three(1000); // the budget says all three fit
  DeviceKvPool &pool = three.pool;
  CountingResident &a = three.a, &b = three.b, &c = three.c;
  const std::vector<std::string> &log = three.log;
  pool.acquire(a);
  pool.acquire(b);
  c.shortages = 1;
  EXPECT_TRUE(pool.acquire(c));
  EXPECT_EQ(log, (std::vector<std::string>{"in a", "in b", "short c", "out a", "in c"}));
  EXPECT_EQ(pool.stats().preemptions, 1u);
  EXPECT_EQ(pool.stats().bytesInUse, 200u);
  // Nothing left to preempt (c goes, b is pinned): one line.
  a.shortages = 5;
  KvPinScope step(pool);
  step.add(b);
  try {
    pool.acquire(a);
    FAIL() << "no memory and nothing to preempt";
  } catch (const v4c::Error &e) {
    EXPECT_STREQ(e.what(), "a needs 100 bytes, 0 are free; nothing left to preempt (lower --device-kv-bytes)");
  }
  EXPECT_FALSE(pool.isResident(a));
  EXPECT_FALSE(pool.isResident(c));
  EXPECT_TRUE(pool.isResident(b));
}

TEST(DeviceKvPool, RefusesAResidentLargerThanTheBudget) {
  std::vector<std::string> log;
  DeviceKvPool pool(3u << 20);
  CountingResident big("session 7", 5u << 20, log);
  try {
    pool.add(big);
    FAIL() << "5 MiB cannot fit a 3 MiB pool";
  } catch (const v4c::Error &e) {
    EXPECT_STREQ(e.what(), "session 7 needs 5.00 MiB of KV cache slots, more than the whole device KV pool "
                           "(3.00 MiB): raise --device-kv-bytes or lower --max-context");
  }
  EXPECT_EQ(pool.stats().registered, 0u);
  EXPECT_TRUE(log.empty());
}

TEST(DeviceKvPool, RemovingAResidentFreesItsBytes) {
  std::vector<std::string> log;
  DeviceKvPool pool(100);
  CountingResident a("a", 100, log), b("b", 100, log);
  pool.add(a);
  pool.add(b);
  pool.acquire(a);
  pool.remove(a);
  EXPECT_EQ(pool.stats().bytesInUse, 0u);
  pool.acquire(b); // no preemption needed
  EXPECT_EQ(pool.stats().preemptions, 0u);
  EXPECT_THROW(pool.acquire(a), v4c::Error); // no longer registered
}

TEST(DeviceKvPool, DefaultBudgetLeavesHeadroom) {
  EXPECT_EQ(defaultDeviceKvBytes(10ull << 30), (10ull << 30) / 10 * 9 - (256ull << 20));
  EXPECT_EQ(defaultDeviceKvBytes(100ull << 20), 0u);
}

// ---- KvSlots on the emulated driver ------------------------------------------

class EmulatedKvSlots : public Sm90aDeviceTest {
protected:
  void SetUp() override {
    Sm90aDeviceTest::SetUp();
    if (IsSkipped())
      return;
    // A window ring (bf16), a compressor state and an Entries slot (f32, rate 4).
    slots_ = {CacheSlot{"layers.0.window", 0, CacheKind::Window, 8, 16, 0, DType::BF16},
              CacheSlot{"layers.1.state", 1, CacheKind::CompressState, 8, 4, 0, DType::F32},
              CacheSlot{"layers.1.entries", 1, CacheKind::Entries, 0, 8, 4, DType::F32}};
  }

  uint64_t sessionBytes() const {
    uint64_t bytes = 0;
    for (const CacheSlot &slot : slots_)
      bytes += cacheSlotBytes(slot, kContext);
    return bytes;
  }
  std::vector<uint8_t> read(const KvSlots &slots, size_t slot) {
    std::vector<uint8_t> bytes(slots.rows(slot) * slots.rowBytes(slot));
    checkCuda(api(), api().cuMemcpyDtoHAsync(bytes.data(), slots.address(slot), bytes.size(), stream_->get()),
              "cuMemcpyDtoHAsync");
    stream_->synchronize();
    return bytes;
  }
  void write(const KvSlots &slots, size_t slot, const std::vector<uint8_t> &bytes) {
    checkCuda(api(), api().cuMemcpyHtoDAsync(slots.address(slot), bytes.data(), bytes.size(), stream_->get()),
              "cuMemcpyHtoDAsync");
    stream_->synchronize();
  }
  // Fills every slot with nonzero bytes (a pattern per slot and `salt`, so
  // never a fresh slot's zeros); returns them per slot.
  std::vector<std::vector<uint8_t>> writePattern(const KvSlots &slots, size_t salt) {
    std::vector<std::vector<uint8_t>> written;
    for (size_t s = 0; s < slots.size(); ++s) {
      std::vector<uint8_t> bytes(slots.rows(s) * slots.rowBytes(s));
      for (size_t i = 0; i < bytes.size(); ++i)
        bytes[i] = static_cast<uint8_t>(1 + (i * 7 + s * 13 + salt) % 251);
      write(slots, s, bytes);
      written.push_back(bytes);
    }
    return written;
  }

  static constexpr int64_t kContext = 64;
  std::vector<CacheSlot> slots_;
};

TEST_F(EmulatedKvSlots, PreemptedSlotsComeBackWithTheirLiveRows) {
  DeviceKvPool pool(sessionBytes() * 3 / 2); // one session fits, two do not
  KvSlots a(api(), stream_->get(), slots_, kContext, pool, "session a");
  KvSlots b(api(), stream_->get(), slots_, kContext, pool, "session b");
  EXPECT_EQ(a.residentBytes(), sessionBytes());
  EXPECT_EQ(a.generation(), 0u);
  EXPECT_THROW(a.address(0), v4c::Error); // not resident yet

  EXPECT_TRUE(a.ensureResident());
  EXPECT_EQ(a.generation(), 1u);
  for (size_t s = 0; s < a.size(); ++s) // a fresh session's slots are zeros
    for (uint8_t byte : read(a, s))
      ASSERT_EQ(byte, 0);
  // Session a is at token 21: entries rows 0..4 are live, the rest is not.
  const std::vector<std::vector<uint8_t>> written = writePattern(a, 0);
  a.setLiveTokens(21);
  const uint64_t live = 8 * 16 * 2 + 8 * 4 * 4 + 5 * 8 * 4;
  EXPECT_EQ(a.liveBytes(), live);
  const CUdeviceptr oldWindow = a.address(0);

  EXPECT_FALSE(a.ensureResident()); // resident: nothing moves
  EXPECT_TRUE(b.ensureResident());  // a goes to host memory
  EXPECT_FALSE(a.isResident());
  EXPECT_THROW(a.address(0), v4c::Error);
  DeviceKvPoolStats stats = pool.stats();
  EXPECT_EQ(stats.preemptions, 1u);
  EXPECT_EQ(stats.bytesMoved, live);
  EXPECT_EQ(stats.resident, 1u);

  EXPECT_TRUE(a.ensureResident()); // back, b out
  EXPECT_FALSE(b.isResident());
  EXPECT_EQ(a.generation(), 2u);
  stats = pool.stats();
  EXPECT_EQ(stats.preemptions, 2u);
  EXPECT_EQ(stats.swapIns, 1u);
  // a out and in; b out at position 0: its fixed-size slots only.
  EXPECT_EQ(stats.bytesMoved, 2 * live + (8 * 16 * 2 + 8 * 4 * 4));
  // Fixed-size slots whole; Entries rows below 21 / 4 = 5 kept, the rest zeros.
  EXPECT_EQ(read(a, 0), written[0]);
  EXPECT_EQ(read(a, 1), written[1]);
  const std::vector<uint8_t> entries = read(a, 2);
  const size_t liveEntryBytes = 5 * a.rowBytes(2);
  EXPECT_TRUE(std::equal(entries.begin(), entries.begin() + liveEntryBytes, written[2].begin()));
  for (size_t i = liveEntryBytes; i < entries.size(); ++i)
    ASSERT_EQ(entries[i], 0) << "entries byte " << i;
  (void)oldWindow; // the new buffers may or may not reuse the old address: generation() says they moved
}

TEST_F(EmulatedKvSlots, PinnedSlotsStayWhileAnotherWaits) {
  DeviceKvPool pool(sessionBytes() * 3 / 2);
  KvSlots a(api(), stream_->get(), slots_, kContext, pool, "session a");
  KvSlots b(api(), stream_->get(), slots_, kContext, pool, "session b");
  KvPinScope step(pool);
  step.add(a);
  EXPECT_THROW(b.ensureResident(), v4c::Error);
  EXPECT_TRUE(a.isResident());
  EXPECT_FALSE(b.isResident());
}

// copyRows (a fork's source): device to device while resident, from the
// pinned host copy while preempted (live rows only), zeros when never
// resident; zeroRows clears a truncated range.
TEST_F(EmulatedKvSlots, CopyRowsFromResidentPreemptedAndFreshSlots) {
  DeviceKvPool pool(sessionBytes() * 5 / 2); // two sessions fit, three do not
  KvSlots source(api(), stream_->get(), slots_, kContext, pool, "source");
  KvSlots fork(api(), stream_->get(), slots_, kContext, pool, "fork");
  KvSlots other(api(), stream_->get(), slots_, kContext, pool, "other");
  KvSlots fresh(api(), stream_->get(), slots_, kContext, pool, "fresh");
  source.ensureResident();
  const std::vector<std::vector<uint8_t>> written = writePattern(source, 3);
  source.setLiveTokens(21); // entries rows 0..4 live
  const auto expectCopied = [&](size_t slot, int64_t rows) {
    const std::vector<uint8_t> copied = read(fork, slot);
    const size_t bytes = static_cast<size_t>(rows) * fork.rowBytes(slot);
    EXPECT_TRUE(std::equal(copied.begin(), copied.begin() + bytes, written[slot].begin())) << "slot " << slot;
    for (size_t i = bytes; i < copied.size(); ++i)
      ASSERT_EQ(copied[i], 0) << "slot " << slot << " byte " << i;
  };
  fork.ensureResident();
  source.copyRows(1, 8, fork.address(1));
  source.copyRows(2, 3, fork.address(2));
  stream_->synchronize();
  expectCopied(1, 8);
  expectCopied(2, 3);

  fork.zeroRows(2, 1, 100); // clipped to the slot's rows
  stream_->synchronize();
  expectCopied(2, 1);

  other.ensureResident(); // source (least recently used) goes to its host copy
  ASSERT_FALSE(source.isResident());
  ASSERT_TRUE(fork.isResident());
  source.copyRows(0, 8, fork.address(0));
  source.copyRows(2, 5, fork.address(2));
  stream_->synchronize();
  expectCopied(0, 8);
  expectCopied(2, 5);
  EXPECT_FALSE(source.isResident()); // read in place, not swapped in
  EXPECT_THROW(source.copyRows(2, 6, fork.address(2)), v4c::Error); // beyond its live rows
  EXPECT_THROW(source.copyRows(2, source.rows(2) + 1, fork.address(2)), v4c::Error);

  fresh.copyRows(0, 8, fork.address(0)); // never resident: a fresh slot's zeros
  stream_->synchronize();
  expectCopied(0, 0);
}

// A budget larger than the device (80 GiB here): the real free memory decides.
TEST_F(EmulatedKvSlots, ASessionLargerThanTheDeviceIsAnErrorNotACrash) {
  DeviceKvPool pool(1ull << 50);
  const int64_t context = int64_t{1} << 34; // 2^32 entries rows of 32 bytes: 128 GiB
  KvSlots a(api(), stream_->get(), slots_, context, pool, "session a");
  try {
    a.ensureResident();
    FAIL() << "128 GiB of slots on an 80 GiB device";
  } catch (const v4c::Error &e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind("session a needs 128.00 GiB of device memory for its KV cache, ", 0), 0u) << message;
    EXPECT_NE(message.find("nothing left to preempt"), std::string::npos) << message;
  }
  EXPECT_FALSE(a.isResident());
}

TEST_F(EmulatedKvSlots, ASessionLargerThanThePoolIsRefused) {
  DeviceKvPool pool(sessionBytes() - 1);
  try {
    KvSlots a(api(), stream_->get(), slots_, kContext, pool, "session a");
    FAIL() << "the slots cannot fit";
  } catch (const v4c::Error &e) {
    EXPECT_NE(std::string(e.what()).find("session a needs"), std::string::npos) << e.what();
  }
}

// ---- Preemption error paths (the emulator's fault injection) -----------------

// Session a holds a pattern at token 21 in a pool where only one session
// fits; the emulator's test queries refuse pinned memory, device memory or a
// copy submission. Whatever fails, a's state must survive exactly.
class KvSlotsFaults : public EmulatedKvSlots {
protected:
  EmulatorQueries emu_; // the emulated driver's fault injection and limits

  void SetUp() override {
    EmulatedKvSlots::SetUp();
    if (IsSkipped())
      return;
    emu_ = EmulatorQueries::find();
    if (!emu_.setPinnedHostLimit || !emu_.setDeviceMemoryLimit || !emu_.failSubmission)
      GTEST_SKIP() << "needs the emulated driver's test queries (tests/emulated-cuda)";
  }
  void TearDown() override { emu_.reset(); }
  static void expectOneLine(const std::string &message, const std::string &part) {
    EXPECT_NE(message.find(part), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
  // a's slots hold `written` (its live rows: entries rows below 21 / 4 = 5).
  void expectIntact(const KvSlots &a, const std::vector<std::vector<uint8_t>> &written) {
    ASSERT_TRUE(a.isResident());
    EXPECT_EQ(read(a, 0), written[0]);
    EXPECT_EQ(read(a, 1), written[1]);
    const std::vector<uint8_t> entries = read(a, 2);
    const size_t live = 5 * a.rowBytes(2);
    EXPECT_TRUE(std::equal(entries.begin(), entries.begin() + live, written[2].begin()));
  }

};

// No pinned memory for a's host copy: b is refused with one line, a stays.
TEST_F(KvSlotsFaults, NoPinnedMemoryRefusesTheNewSessionAndKeepsTheOld) {
  DeviceKvPool pool(sessionBytes() * 3 / 2);
  KvSlots a(api(), stream_->get(), slots_, kContext, pool, "session a");
  KvSlots b(api(), stream_->get(), slots_, kContext, pool, "session b");
  a.ensureResident();
  const std::vector<std::vector<uint8_t>> written = writePattern(a, 5);
  a.setLiveTokens(21);
  emu_.setPinnedHostLimit(0);
  try {
    b.ensureResident();
    FAIL() << "a's host copy cannot be allocated";
  } catch (const v4c::Error &e) {
    expectOneLine(e.what(), "session a: pinned host copy of preempted cache slots");
  }
  EXPECT_FALSE(b.isResident());
  EXPECT_EQ(pool.stats().preemptions, 0u);
  EXPECT_EQ(pool.stats().bytesInUse, sessionBytes());
  expectIntact(a, written);
  // With pinned memory back, the same preemption works and a returns exactly.
  emu_.setPinnedHostLimit(SIZE_MAX);
  EXPECT_TRUE(b.ensureResident());
  EXPECT_FALSE(a.isResident());
  EXPECT_TRUE(a.ensureResident());
  expectIntact(a, written);
}

// The second copy of a's swap-out is refused while the first is queued into
// the host copy: the retry right after (no synchronization in between) must
// not free that host copy under the queued copy (the emulator aborts on it).
TEST_F(KvSlotsFaults, ARefusedSwapOutCopyKeepsTheSessionAndFreesNothingInUse) {
  DeviceKvPool pool(sessionBytes() * 3 / 2);
  KvSlots a(api(), stream_->get(), slots_, kContext, pool, "session a");
  KvSlots b(api(), stream_->get(), slots_, kContext, pool, "session b");
  a.ensureResident();
  const std::vector<std::vector<uint8_t>> written = writePattern(a, 6);
  a.setLiveTokens(21);
  emu_.failSubmission("cuMemcpyDtoHAsync", 2);
  try {
    b.ensureResident();
    FAIL() << "a's second swap-out copy is refused";
  } catch (const v4c::Error &e) {
    expectOneLine(e.what(), "session a: swapping out cache slot \"layers.1.state\"");
  }
  EXPECT_TRUE(a.isResident());
  EXPECT_FALSE(b.isResident());
  EXPECT_EQ(pool.stats().preemptions, 0u);
  EXPECT_TRUE(b.ensureResident()); // the retry allocates a new host copy
  EXPECT_TRUE(a.ensureResident());
  expectIntact(a, written);
  EXPECT_EQ(pool.stats().preemptions, 2u);
}

// A refused copy while a comes back: a stays preempted with its host copy
// and comes back exactly on the next call; b, preempted for it, too.
TEST_F(KvSlotsFaults, ARefusedSwapInCopyKeepsTheHostCopy) {
  DeviceKvPool pool(sessionBytes() * 3 / 2);
  KvSlots a(api(), stream_->get(), slots_, kContext, pool, "session a");
  KvSlots b(api(), stream_->get(), slots_, kContext, pool, "session b");
  a.ensureResident();
  const std::vector<std::vector<uint8_t>> writtenA = writePattern(a, 7);
  a.setLiveTokens(21);
  b.ensureResident(); // a goes to its host copy
  const std::vector<std::vector<uint8_t>> writtenB = writePattern(b, 8);
  b.setLiveTokens(21);
  emu_.failSubmission("cuMemcpyHtoDAsync", 2);
  try {
    a.ensureResident();
    FAIL() << "a's second swap-in copy is refused";
  } catch (const v4c::Error &e) {
    expectOneLine(e.what(), "session a: swapping in cache slot \"layers.1.state\"");
  }
  EXPECT_FALSE(a.isResident());
  EXPECT_EQ(pool.stats().bytesInUse, 0u); // b went to make room
  EXPECT_TRUE(a.ensureResident());
  expectIntact(a, writtenA);
  EXPECT_TRUE(b.ensureResident());
  expectIntact(b, writtenB);
}

// The device holds less than the pool's budget: resuming a preempts b;
// with b pinned, one line and nothing lost.
TEST_F(KvSlotsFaults, ResumingOnAFullDevicePreemptsAnotherOrSaysSo) {
  DeviceKvPool pool(sessionBytes() * 4); // the budget says four fit
  KvSlots a(api(), stream_->get(), slots_, kContext, pool, "session a");
  KvSlots b(api(), stream_->get(), slots_, kContext, pool, "session b");
  size_t freeBytes = 0, totalBytes = 0;
  checkCuda(api(), api().cuMemGetInfo(&freeBytes, &totalBytes), "cuMemGetInfo");
  emu_.setDeviceMemoryLimit(totalBytes - freeBytes + sessionBytes() * 3 / 2); // room for one session
  a.ensureResident();
  const std::vector<std::vector<uint8_t>> written = writePattern(a, 9);
  a.setLiveTokens(21);
  EXPECT_TRUE(b.ensureResident());
  EXPECT_FALSE(a.isResident());
  EXPECT_TRUE(a.ensureResident()); // resume: b goes
  EXPECT_FALSE(b.isResident());
  expectIntact(a, written);
  KvPinScope step(pool);
  step.add(a);
  try {
    b.ensureResident();
    FAIL() << "the device has room for one session and a is pinned";
  } catch (const v4c::Error &e) {
    expectOneLine(e.what(), "nothing left to preempt");
  }
  EXPECT_FALSE(b.isResident());
  expectIntact(a, written);
}

} // namespace
} // namespace v4rt::cuda
