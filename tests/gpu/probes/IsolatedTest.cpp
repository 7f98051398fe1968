// runIsolated: what the probe's device half relies on to keep one bad
// probe (a throw, a crash, a hang) from taking the others with it.
#include "tests/gpu/probes/Isolated.h"

#include <csignal>
#include <stdexcept>
#include <unistd.h>

#include <gtest/gtest.h>

namespace v4probe {
namespace {

TEST(RunIsolated, ReturnsTheChildsBytes) {
  const IsolatedResult r = runIsolated([] { return std::vector<uint8_t>(100000, 7); }, 30);
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_EQ(r.bytes.size(), 100000u); // more than one pipe buffer
  EXPECT_EQ(r.bytes[99999], 7);
}

TEST(RunIsolated, ReportsTheChildsException) {
  const IsolatedResult r =
      runIsolated([]() -> std::vector<uint8_t> { throw std::runtime_error("cudaMemcpy: cudaErrorIllegalAddress"); }, 30);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "cudaMemcpy: cudaErrorIllegalAddress");
}

TEST(RunIsolated, ReportsACrashBySignal) {
  const IsolatedResult r = runIsolated([]() -> std::vector<uint8_t> { std::raise(SIGSEGV); return {}; }, 30);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("signal 11"), std::string::npos) << r.error;
}

TEST(RunIsolated, KillsAHang) {
  const IsolatedResult r = runIsolated([]() -> std::vector<uint8_t> { for (;;) ::pause(); }, 1);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("timed out after 1 s"), std::string::npos) << r.error;
}

TEST(RunIsolated, AnEmptyResultIsAResult) {
  const IsolatedResult r = runIsolated([] { return std::vector<uint8_t>(); }, 30);
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_TRUE(r.bytes.empty());
}

} // namespace
} // namespace v4probe
