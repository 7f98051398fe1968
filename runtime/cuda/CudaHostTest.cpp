// The CUDA backend's host-side logic, which needs no GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "runtime/cuda/CudaDriver.h"
#include "runtime/cuda/HostConvert.h"
#include "runtime/cuda/LaunchParams.h"
#include "runtime/cuda/TargetArch.h"

namespace v4rt::cuda {
namespace {

TEST(TargetArch, ParsesArchitectures) {
  TargetArch a = parseTargetArch("sm_90a");
  EXPECT_EQ(a.major, 9);
  EXPECT_EQ(a.minor, 0);
  EXPECT_TRUE(a.archSpecific);
  a = parseTargetArch("sm_89");
  EXPECT_EQ(a.major, 8);
  EXPECT_EQ(a.minor, 9);
  EXPECT_FALSE(a.archSpecific);
  a = parseTargetArch("sm_100a");
  EXPECT_EQ(a.major, 10);
  EXPECT_EQ(a.minor, 0);
  EXPECT_THROW(parseTargetArch("cpu"), v4c::Error);
  EXPECT_THROW(parseTargetArch("sm_9x"), v4c::Error);
  EXPECT_THROW(parseTargetArch("sm_"), v4c::Error);
}

TEST(TargetArch, ArchSpecificNeedsExactCapability) {
  EXPECT_EQ(targetMismatch("sm_90a", 9, 0), "");
  EXPECT_EQ(targetMismatch("sm_90a", 10, 0), "device compute capability 10.0 cannot run sm_90a code (needs exactly 9.0)");
  EXPECT_NE(targetMismatch("sm_90a", 8, 9), "");
  EXPECT_EQ(targetMismatch("sm_100a", 10, 0), "");
}

TEST(TargetArch, PlainTargetRunsWithinItsMajorVersion) {
  EXPECT_EQ(targetMismatch("sm_80", 8, 0), "");
  EXPECT_EQ(targetMismatch("sm_80", 8, 6), "");
  EXPECT_EQ(targetMismatch("sm_80", 8, 9), "");
  EXPECT_NE(targetMismatch("sm_89", 8, 6), "");
  const std::string hopper = targetMismatch("sm_80", 9, 0);
  EXPECT_NE(hopper.find("cannot run sm_80 code"), std::string::npos) << hopper;
}

Program programWithOneStep() {
  Program program;
  program.target = "sm_90a";
  program.configJson = R"({"max_position_embeddings": 4096, "hidden_size": 64})";
  program.kernels.push_back({"v4_linear_f32", {}, 0});
  Weight weight;
  weight.name = "w";
  weight.size = 256;
  program.weights.push_back(weight);
  CacheSlot window{"layers.0.window", 0, CacheKind::Window, 128, 512, 0, DType::BF16};
  CacheSlot entries{"layers.1.entries", 1, CacheKind::Entries, 0, 512, 4, DType::F32};
  program.caches = {window, entries};
  return program;
}

TEST(LaunchParams, FollowsTheEntryAbi) {
  Step step;
  ArgRef x{ArgKind::Arena, 0, 64, DType::F32, {8, 16}};
  ArgRef w{ArgKind::Weight, 0, 0, DType::F32, {16, 16}};
  ArgRef cache{ArgKind::Cache, 1, 0, DType::F32, {}};
  ArgRef positions{ArgKind::Input, 1, 0, DType::I32, {8}};
  ArgRef y{ArgKind::Arena, 0, 1024, DType::F32, {8, 16}};
  ArgRef logits{ArgKind::Output, 0, 0, DType::F32, {8, 100}};
  step.ins = {x, w, cache, positions};
  step.outs = {y, logits};
  ArgAddresses addresses;
  addresses.arena = 0x10000;
  addresses.arenaBytes = 4096;
  addresses.weights = {0x20000};
  addresses.caches = {0x30000, 0x40000};
  addresses.inputs = {0x50000, 0x60000};
  addresses.outputs = {0x70000};
  addresses.dyn = 0x80000;
  const std::vector<uint64_t> params = stepParams(step, addresses, "step 0");
  const std::vector<uint64_t> expected = {0x10000 + 64, 0x20000, 0x40000, 0x60000, 0x10000 + 1024, 0x70000, 0x80000};
  EXPECT_EQ(params, expected);
}

TEST(LaunchParams, RejectsOutOfRangeArguments) {
  ArgAddresses addresses;
  addresses.arenaBytes = 512;
  addresses.weights = {0x1000};
  Step step;
  step.ins = {ArgRef{ArgKind::Arena, 0, 256, DType::F32, {8, 16}}}; // 512 bytes from 256
  try {
    stepParams(step, addresses, "bucket decode_1 step 3 v4_rms_norm");
    FAIL() << "an arena overrun must be rejected";
  } catch (const v4c::Error &e) {
    EXPECT_NE(std::string(e.what()).find("bucket decode_1 step 3 v4_rms_norm input 0: arena argument [256, 768)"),
              std::string::npos)
        << e.what();
  }
  step.ins = {ArgRef{ArgKind::Weight, 3, 0, DType::F32, {1}}};
  EXPECT_THROW(stepParams(step, addresses, "s"), v4c::Error);
}

TEST(LaunchParams, SizesCacheSlotsForTheContext) {
  const Program program = programWithOneStep();
  EXPECT_EQ(cacheSlotRows(program.caches[0], 1000), 128);
  EXPECT_EQ(cacheSlotRows(program.caches[1], 1000), 250);
  EXPECT_EQ(cacheSlotRows(program.caches[1], 1001), 251);
  EXPECT_EQ(cacheSlotBytes(program.caches[0], 1000), 128u * 512 * 2);
  EXPECT_EQ(cacheSlotBytes(program.caches[1], 1001), 251u * 512 * 4);
  EXPECT_EQ(sessionMaxContext(program, 0), 4096);
  EXPECT_EQ(sessionMaxContext(program, 300), 300);
  EXPECT_THROW(sessionMaxContext(program, 5000), v4c::Error);
}

TEST(HostConvert, DecodesEveryDtype) {
  EXPECT_EQ(bf16ToFloat(0x3F80), 1.0f);
  EXPECT_EQ(bf16ToFloat(0xC040), -3.0f);
  EXPECT_EQ(f16ToFloat(0x3C00), 1.0f);
  EXPECT_EQ(f16ToFloat(0xC500), -5.0f);
  EXPECT_EQ(f16ToFloat(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(e4m3ToFloat(0x38), 1.0f);  // exponent 7, mantissa 0
  EXPECT_EQ(e4m3ToFloat(0x7E), 448.0f); // the largest finite value
  EXPECT_EQ(e4m3ToFloat(0x01), std::ldexp(1.0f, -9));
  EXPECT_TRUE(std::isnan(e4m3ToFloat(0x7F)));
  const int32_t ints[3] = {-2, 0, 7};
  float out[3];
  convertToFloat(ints, DType::I32, 3, out);
  EXPECT_EQ(out[0], -2.0f);
  EXPECT_EQ(out[2], 7.0f);
  const uint16_t bf[2] = {0x4000, 0xBF00};
  convertToFloat(bf, DType::BF16, 2, out);
  EXPECT_EQ(out[0], 2.0f);
  EXPECT_EQ(out[1], -0.5f);
}

// No device of compute capability 3.0 exists under a CUDA 13 driver, so this
// fails the same way on every machine: with a GPU (wrong architecture) or
// without one (no driver or no device).
TEST(CudaDevice, ReportsWhyThereIsNoUsableDevice) {
  try {
    CudaDevice::open("sm_30");
    FAIL() << "sm_30 code cannot run under this runtime";
  } catch (const NoCudaDevice &e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind("no CUDA device: ", 0), 0u) << message;
    EXPECT_NE(message.find("; this artifact targets sm_30"), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

} // namespace
} // namespace v4rt::cuda
