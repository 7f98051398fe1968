// GPU artifacts through the C API, on the emulated CUDA driver (ctest puts
// tests/emulated-cuda/lib on LD_LIBRARY_PATH): tiny-mixed compiled for
// sm_90a (fp32, decode buckets 1 and 4) against the same case compiled for
// the CPU, both opened through v4rt_model_open (fixture
// emulated-gpu.api-artifacts: emulated_artifacts.sh).
//
// The same binary runs on a real GPU (no LD_LIBRARY_PATH: the real driver
// loads the real cubin): V4RT_API_TEST_DIR names a copy of the fixture's
// folder (gpu.v4a, cpu.v4a) on that machine.
#include <gtest/gtest.h>

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <thread>

#include "runtime/api/ApiTestSupport.h"
#include "runtime/api/v4rt.hpp"

namespace v4rt {
namespace {

using apitest::argmax;
using apitest::logitRow;
using apitest::maxRowRelativeError;
using apitest::pseudoRandomIds;
using apitest::takeMessage;

constexpr int64_t kVocab = 512;
constexpr int64_t kMaxContext = 256; // small device cache slots
constexpr int64_t kPageTokens = 16;  // lcm of tiny-mixed's compression rates (4, 16)
constexpr float kGpuVsCpu = 1e-4f;   // the conformance tolerance (fp32)
constexpr float kGpuVsGpu = 1e-5f;   // same kernels, other schedule (batched, restored, forked)

class CApiCuda : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    // The emulated driver loads each cubin's host build from here.
    ::setenv("V4_EMU_MODULE_DIR", (artifactDir() + "/modules").c_str(), 1);
  }
  void SetUp() override {
    for (const std::string &path : {gpuPath(), cpuPath()})
      ASSERT_TRUE(std::filesystem::exists(path))
          << path << " is missing: run through ctest (fixture emulated-gpu.api-artifacts makes it)";
  }
  static std::string artifactDir() {
    const char *moved = std::getenv("V4RT_API_TEST_DIR");
    return moved && *moved ? moved : API_EMULATED_DIR;
  }
  static std::string gpuPath() { return artifactDir() + "/gpu.v4a"; }
  static std::string cpuPath() { return artifactDir() + "/cpu.v4a"; }
  static std::unique_ptr<ModelHandle> openGpu() {
    v4rt_model_options options{};
    options.verify_checksums = 1;
    options.max_context = kMaxContext;
    return std::make_unique<ModelHandle>(gpuPath(), options);
  }
  static std::unique_ptr<ModelHandle> openCpu() { return std::make_unique<ModelHandle>(cpuPath()); }
};

void expectError(v4rt_status status, const std::string &expected) {
  const std::string message = takeMessage(status);
  EXPECT_NE(message.find(expected), std::string::npos) << "message: " << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

TEST_F(CApiCuda, OpensOnTheCudaBackend) {
  auto gpu = openGpu();
  auto cpu = openCpu();
  EXPECT_EQ(gpu->target(), "sm_90a");
  EXPECT_EQ(gpu->vocabSize(), kVocab);
  EXPECT_EQ(gpu->decodeBatchSizes(), (std::vector<int64_t>{1, 4}));
  EXPECT_EQ(gpu->identity().size(), 64u);
  EXPECT_NE(gpu->identity(), cpu->identity());
}

// Prefill (every row) and greedy decode: same tokens, logits within the
// conformance tolerance of the CPU artifact's.
TEST_F(CApiCuda, PrefillAndGreedyDecodeMatchTheCpuArtifact) {
  auto gpuModel = openGpu();
  auto cpuModel = openCpu();
  SessionHandle gpu(*gpuModel), cpu(*cpuModel);
  const std::vector<int32_t> prompt = pseudoRandomIds(21, kVocab, 7);
  const std::vector<float> gpuRows = gpu.prefill(prompt), cpuRows = cpu.prefill(prompt);
  EXPECT_LE(maxRowRelativeError(gpuRows, cpuRows, kVocab), kGpuVsCpu);
  EXPECT_EQ(gpu.position(), 21);
  EXPECT_EQ(gpu.prefillTokensComputed(), 21);
  int32_t next = argmax(logitRow(cpuRows, 20, kVocab));
  ASSERT_EQ(argmax(logitRow(gpuRows, 20, kVocab)), next);
  for (int step = 0; step < 4; ++step) {
    const std::vector<float> gpuLogits = gpu.decode(next), cpuLogits = cpu.decode(next);
    EXPECT_LE(maxRowRelativeError(gpuLogits, cpuLogits, kVocab), kGpuVsCpu) << "decode step " << step;
    ASSERT_EQ(argmax(gpuLogits), argmax(cpuLogits)) << "decode step " << step;
    next = argmax(cpuLogits);
  }
  EXPECT_EQ(gpu.position(), 25);
  // prefill_last returns the last row of the same run.
  SessionHandle last(*gpuModel);
  int64_t reused = -1;
  const std::vector<float> lastRow = last.prefillLast(prompt, &reused);
  EXPECT_EQ(reused, 0);
  EXPECT_LE(maxRowRelativeError(lastRow, logitRow(cpuRows, 20, kVocab), kVocab), kGpuVsCpu);
}

// Three sessions at different positions decoded in one batched step (the
// decode_4 bucket) give what each gives decoded alone; then one leaves.
TEST_F(CApiCuda, DecodeBatchOfThreeEqualsThreeSingleDecodes) {
  auto model = openGpu();
  std::vector<std::unique_ptr<SessionHandle>> batched, alone;
  std::vector<int32_t> next;
  for (int i = 0; i < 3; ++i) {
    const std::vector<int32_t> prompt = pseudoRandomIds(5 + 4 * i, kVocab, 11 + i);
    batched.push_back(std::make_unique<SessionHandle>(*model));
    alone.push_back(std::make_unique<SessionHandle>(*model));
    const std::vector<float> last = batched.back()->prefillLast(prompt);
    alone.back()->prefillLast(prompt);
    next.push_back(argmax(last));
  }
  for (int step = 0; step < 2; ++step) {
    const size_t active = step == 0 ? 3 : 2; // session 2 leaves after the first step
    std::vector<SessionHandle *> sessions;
    for (size_t i = 0; i < active; ++i)
      sessions.push_back(batched[i].get());
    const std::vector<int32_t> ids(next.begin(), next.begin() + active);
    const std::vector<float> logits = decodeBatch(sessions, ids);
    ASSERT_EQ(logits.size(), active * kVocab);
    for (size_t i = 0; i < active; ++i) {
      const std::vector<float> single = alone[i]->decode(ids[i]);
      const std::vector<float> row = logitRow(logits, static_cast<int64_t>(i), kVocab);
      EXPECT_LE(maxRowRelativeError(row, single, kVocab), kGpuVsGpu) << "step " << step << ", session " << i;
      EXPECT_EQ(batched[i]->position(), alone[i]->position());
      next[i] = argmax(row);
    }
  }
  EXPECT_EQ(batched[2]->position(), 13 + 1);
  EXPECT_EQ(batched[0]->position(), 5 + 2);
}

// A second session with the same prompt restores its complete pages from
// the device tier and the pinned host tier the first one filled.
TEST_F(CApiCuda, AttachedCacheSavesPrefillThroughDeviceAndHostTiers) {
  auto model = openGpu();
  const std::vector<int32_t> prompt = pseudoRandomIds(2 * kPageTokens + 8, kVocab, 5);
  // One page's payload bytes, from a host-only cache.
  uint64_t pageBytes = 0;
  {
    model->attachCache("", 0, 64 << 20);
    SessionHandle probe(*model);
    probe.prefillLast(prompt);
    const v4rt_cache_stats stats = model->cacheStats();
    ASSERT_EQ(stats.page_tokens, kPageTokens);
    ASSERT_EQ(stats.pages_stored, 2u);
    pageBytes = stats.page_bytes_stored / 2;
    ASSERT_GT(pageBytes, 0u);
  }
  // A device tier for one page: the other is demoted to the host tier.
  model->attachCache("", 0, 64 << 20, "", "full", pageBytes + pageBytes / 2);
  SessionHandle cold(*model);
  int64_t reused = -1;
  const std::vector<float> coldLogits = cold.prefillLast(prompt, &reused);
  EXPECT_EQ(reused, 0);
  SessionHandle warm(*model);
  const std::vector<float> warmLogits = warm.prefillLast(prompt, &reused);
  EXPECT_EQ(reused, 2 * kPageTokens);
  EXPECT_EQ(warm.prefillTokensComputed(), 8);
  EXPECT_LE(maxRowRelativeError(warmLogits, coldLogits, kVocab), kGpuVsGpu);
  const v4rt_cache_stats stats = model->cacheStats();
  EXPECT_EQ(stats.prefill_tokens_saved, static_cast<uint64_t>(2 * kPageTokens));
  EXPECT_EQ(stats.pages_hit, 2u);
  EXPECT_GE(stats.device_pages, 1u);
  EXPECT_GT(stats.device_bytes, 0u);
  EXPECT_GE(stats.host_pages, 1u);
  EXPECT_EQ(stats.host_pinned, 1u);
  EXPECT_EQ(stats.host_pinned_bytes, stats.host_bytes);
  EXPECT_EQ(stats.host_pin_failures, 0u);
  EXPECT_EQ(stats.disk_pages, 0u);
  EXPECT_EQ(stats.store_failures, 0u);
  // Decoding on from the restored state matches the cold session.
  const int32_t next = argmax(coldLogits);
  EXPECT_LE(maxRowRelativeError(warm.decode(next), cold.decode(next), kVocab), kGpuVsGpu);
}

// fork / truncate (runtime/cuda/CudaSession.h): a fork holds the parent's
// prefix without prefilling it again and continues as the parent would.
TEST_F(CApiCuda, ForkAndTruncateContinueLikeTheParent) {
  auto model = openGpu();
  const std::vector<int32_t> prompt = pseudoRandomIds(24, kVocab, 3);
  SessionHandle parent(*model);
  const std::vector<float> rows = parent.prefill(prompt);
  // At the current position: nothing prefilled again.
  SessionHandle here = parent.fork(24);
  EXPECT_EQ(here.position(), 24);
  EXPECT_EQ(here.prefillTokensComputed(), 0);
  // At an earlier position: the state at the page boundary below it (16)
  // is copied, only the 4 tokens after it run again.
  SessionHandle earlier = parent.fork(20);
  EXPECT_EQ(earlier.position(), 20);
  EXPECT_EQ(earlier.prefillTokensComputed(), 20 - kPageTokens);
  const std::vector<int32_t> tail(prompt.begin() + 20, prompt.end());
  const std::vector<float> tailRows = earlier.prefill(tail);
  for (int64_t i = 0; i < 4; ++i)
    EXPECT_LE(maxRowRelativeError(logitRow(tailRows, i, kVocab), logitRow(rows, 20 + i, kVocab), kVocab), kGpuVsGpu)
        << "row " << 20 + i;
  const int32_t next = argmax(logitRow(rows, 23, kVocab));
  const std::vector<float> parentNext = parent.decode(next);
  EXPECT_LE(maxRowRelativeError(here.decode(next), parentNext, kVocab), kGpuVsGpu);
  EXPECT_LE(maxRowRelativeError(earlier.decode(next), parentNext, kVocab), kGpuVsGpu);
  // Truncate, then feed the same tokens again: the same rows.
  parent.truncate(12);
  EXPECT_EQ(parent.position(), 12);
  const std::vector<float> again = parent.prefill(std::vector<int32_t>(prompt.begin() + 12, prompt.end()));
  for (int64_t i = 0; i < 12; ++i)
    EXPECT_LE(maxRowRelativeError(logitRow(again, i, kVocab), logitRow(rows, 12 + i, kVocab), kVocab), kGpuVsGpu)
        << "row " << 12 + i;
  v4rt_session *child = nullptr;
  expectError(v4rt_session_fork(parent.get(), 99, &child), "position 99 is out of range: the session holds 24 tokens");
  EXPECT_EQ(child, nullptr);
  expectError(v4rt_session_truncate(parent.get(), 25), "out of range");
  EXPECT_EQ(parent.position(), 24);
}

// Sessions of one GPU model used from two threads at once: the backend runs
// their calls one at a time (one stream, shared buckets), each thread with
// the device's context current, and each gets what it gets alone.
TEST_F(CApiCuda, SessionsOfOneModelOnTwoThreads) {
  auto model = openGpu();
  const std::vector<int32_t> prompts[2] = {pseudoRandomIds(9, kVocab, 21), pseudoRandomIds(6, kVocab, 22)};
  std::vector<float> alone[2];
  for (int i = 0; i < 2; ++i) {
    SessionHandle session(*model);
    const std::vector<float> last = session.prefillLast(prompts[i]);
    alone[i] = session.decode(argmax(last));
  }
  std::vector<float> threaded[2];
  std::string failures[2];
  auto run = [&](int i) {
    try {
      SessionHandle session(*model);
      const std::vector<float> last = session.prefillLast(prompts[i]);
      threaded[i] = session.decode(argmax(last));
    } catch (const std::exception &e) {
      failures[i] = e.what();
    }
  };
  std::thread first(run, 0), second(run, 1);
  first.join();
  second.join();
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(failures[i], "") << "thread " << i;
    EXPECT_LE(maxRowRelativeError(threaded[i], alone[i], kVocab), kGpuVsGpu) << "thread " << i;
  }
  // Closed on a thread that never used the device.
  std::thread([&] { model.reset(); }).join();
}

TEST_F(CApiCuda, BadInputIsAOneLineStatus) {
  auto gpuModel = openGpu();
  auto cpuModel = openCpu();
  SessionHandle a(*gpuModel), b(*gpuModel), onCpu(*cpuModel);
  a.prefill({5, 6, 7});
  b.prefill({8});
  onCpu.prefill({8});
  expectError(v4rt_session_decode(a.get(), static_cast<int32_t>(kVocab), nullptr),
              "token id 512 is out of range (vocab size 512)");
  const int32_t ids[3] = {5, 700, 6};
  expectError(v4rt_session_prefill(a.get(), ids, 3, nullptr), "token id 700 is out of range");
  expectError(v4rt_session_prefill(a.get(), nullptr, 3, nullptr), "v4rt_session_prefill: ids is NULL for 3 tokens");
  EXPECT_EQ(a.position(), 3);
  v4rt_session *mixed[2] = {a.get(), onCpu.get()};
  const int32_t two[2] = {9, 10};
  expectError(v4rt_decode_batch(mixed, 2, two, nullptr), "session 1 belongs to another model than session 0 (cpu");
  v4rt_session *repeated[2] = {a.get(), a.get()};
  expectError(v4rt_decode_batch(repeated, 2, two, nullptr), "appears twice");
  v4rt_session *pair[2] = {a.get(), b.get()};
  const int32_t outOfVocab[2] = {9, -3};
  expectError(v4rt_decode_batch(pair, 2, outOfVocab, nullptr), "token id -3 is out of range");
  try {
    decodeBatch({&a, &b}, {9, 10, 11});
    FAIL() << "a batch of 2 sessions and 3 ids ran";
  } catch (const RuntimeError &e) {
    EXPECT_STREQ(e.what(), "decodeBatch: 3 ids for 2 sessions; give one id per session");
  }
  EXPECT_EQ(a.position(), 3);
  EXPECT_EQ(b.position(), 1);
  // Past the session's context (max_context 256).
  const std::vector<int32_t> tooLong(kMaxContext, 5);
  expectError(v4rt_session_prefill(a.get(), tooLong.data(), tooLong.size(), nullptr),
              "would exceed the session's maximum context of 256 tokens");
  EXPECT_EQ(a.position(), 3);
}

// A kernel that fails loses the context (the emulator's v4emuFailKernel; as
// a faulting kernel on a GPU): the call that ran it and every later call on
// that session return a one-line status, as does a new session's; nothing
// hangs or crashes. In a child process (death test): the lost context would
// fail every later test of this process.
void callsAfterAFailedKernel(void (*failKernel)(unsigned long long), ModelHandle &model) {
  SessionHandle session(model);
  session.prefill({5, 6, 7});
  failKernel(2);
  std::vector<float> logits(kVocab);
  const int32_t ids[4] = {8, 9, 10, 11};
  expectError(v4rt_session_prefill(session.get(), ids, 4, logits.data()), "CUDA_ERROR_LAUNCH_FAILED");
  EXPECT_EQ(session.position(), 3);
  const std::string failed = "this CUDA session failed earlier and cannot continue";
  expectError(v4rt_session_decode(session.get(), 8, logits.data()), failed);
  expectError(v4rt_session_prefill(session.get(), ids, 4, nullptr), failed);
  expectError(v4rt_session_truncate(session.get(), 1), failed);
  v4rt_session *child = nullptr;
  expectError(v4rt_session_fork(session.get(), 2, &child), failed);
  EXPECT_EQ(child, nullptr);
  v4rt_session *fresh = nullptr;
  const v4rt_status created = v4rt_session_create(model.get(), &fresh);
  if (created) {
    expectError(created, "CUDA_ERROR_LAUNCH_FAILED");
  } else {
    expectError(v4rt_session_prefill(fresh, ids, 4, nullptr), "CUDA_ERROR_LAUNCH_FAILED");
    v4rt_session_close(fresh);
  }
}

TEST_F(CApiCuda, AFailedKernelMakesLaterCallsOneLineErrors) {
  auto model = openGpu(); // loads the driver
  void *driver = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
  auto *failKernel =
      driver ? reinterpret_cast<void (*)(unsigned long long)>(dlsym(driver, "v4emuFailKernel")) : nullptr;
  if (!failKernel)
    GTEST_SKIP() << "needs the emulated driver's v4emuFailKernel (tests/emulated-cuda)";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        callsAfterAFailedKernel(failKernel, *model);
        std::exit(::testing::Test::HasFailure() ? 1 : 0);
      },
      ::testing::ExitedWithCode(0), "kernel .* failed: injected failure");
}

} // namespace
} // namespace v4rt
