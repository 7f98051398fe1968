// The emulated driver's own rules (README.md, "Honesty rules"), through the
// same loading path the runtime uses: dlopen, cuInit, cuGetProcAddress_v2.
#include <cuda.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace {

class EmulatedDriver : public ::testing::Test {
protected:
  void SetUp() override {
    library_ = dlopen(V4_EMULATED_DRIVER, RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(library_, nullptr) << dlerror();
    auto init = reinterpret_cast<CUresult (*)(unsigned)>(dlsym(library_, "cuInit"));
    getProc_ = reinterpret_cast<decltype(getProc_)>(dlsym(library_, "cuGetProcAddress_v2"));
    ASSERT_TRUE(init && getProc_);
    ASSERT_EQ(init(0), CUDA_SUCCESS);
  }

  template <typename Fn> Fn resolve(const char *name) {
    void *fn = nullptr;
    CUdriverProcAddressQueryResult status{};
    EXPECT_EQ(getProc_(name, &fn, CUDA_VERSION, CU_GET_PROC_ADDRESS_DEFAULT, &status), CUDA_SUCCESS) << name;
    EXPECT_EQ(status, CU_GET_PROC_ADDRESS_SUCCESS) << name;
    return reinterpret_cast<Fn>(fn);
  }
#define RESOLVE(name) resolve<decltype(&::name)>(#name)

  void *library_ = nullptr;
  CUresult (*getProc_)(const char *, void **, int, cuuint64_t, CUdriverProcAddressQueryResult *) = nullptr;
};

// Deferred execution (README.md): async work runs where the driver
// guarantees completion, not at the call. Each test asserts a state that the
// old run-at-submission emulator (V4_EMU_EAGER=1) would not show.
class DeferredDriver : public EmulatedDriver {
protected:
  void SetUp() override {
    EmulatedDriver::SetUp();
    if (HasFatalFailure())
      return;
    streamCreate = RESOLVE(cuStreamCreate);
    streamSync = RESOLVE(cuStreamSynchronize);
    alloc = RESOLVE(cuMemAlloc);
    allocHost = RESOLVE(cuMemAllocHost);
    freeHost = RESOLVE(cuMemFreeHost);
    memset = RESOLVE(cuMemsetD8Async);
    htod = RESOLVE(cuMemcpyHtoDAsync);
    dtoh = RESOLVE(cuMemcpyDtoHAsync);
    dtod = RESOLVE(cuMemcpyDtoDAsync);
    eventCreate = RESOLVE(cuEventCreate);
    eventRecord = RESOLVE(cuEventRecord);
  }
  CUstream stream(unsigned flags = CU_STREAM_NON_BLOCKING) {
    CUstream created = nullptr;
    EXPECT_EQ(streamCreate(&created, flags), CUDA_SUCCESS);
    return created;
  }
  CUdeviceptr device(size_t bytes = 64) {
    CUdeviceptr pointer = 0;
    EXPECT_EQ(alloc(&pointer, bytes), CUDA_SUCCESS);
    return pointer;
  }
  // A pinned block of `bytes` holding `fill`.
  unsigned char *pinned(unsigned char fill, size_t bytes = 64) {
    void *block = nullptr;
    EXPECT_EQ(allocHost(&block, bytes), CUDA_SUCCESS);
    std::memset(block, fill, bytes);
    return static_cast<unsigned char *>(block);
  }
  CUevent event() {
    CUevent created = nullptr;
    EXPECT_EQ(eventCreate(&created, CU_EVENT_DEFAULT), CUDA_SUCCESS);
    return created;
  }
  // Queues "set `target` to `value`, then copy it into pinned `out`" on `s`.
  void fillAndRead(CUdeviceptr target, unsigned char value, unsigned char *out, CUstream s, size_t bytes = 64) {
    ASSERT_EQ(memset(target, value, bytes, s), CUDA_SUCCESS);
    ASSERT_EQ(dtoh(out, target, bytes, s), CUDA_SUCCESS);
  }

  decltype(&::cuStreamCreate) streamCreate = nullptr;
  decltype(&::cuStreamSynchronize) streamSync = nullptr;
  decltype(&::cuMemAlloc) alloc = nullptr;
  decltype(&::cuMemAllocHost) allocHost = nullptr;
  decltype(&::cuMemFreeHost) freeHost = nullptr;
  decltype(&::cuMemsetD8Async) memset = nullptr;
  decltype(&::cuMemcpyHtoDAsync) htod = nullptr;
  decltype(&::cuMemcpyDtoHAsync) dtoh = nullptr;
  decltype(&::cuMemcpyDtoDAsync) dtod = nullptr;
  decltype(&::cuEventCreate) eventCreate = nullptr;
  decltype(&::cuEventRecord) eventRecord = nullptr;
};

TEST_F(EmulatedDriver, UnknownEntryPointIsAnError) {
  void *fn = reinterpret_cast<void *>(1);
  CUdriverProcAddressQueryResult status{};
  EXPECT_EQ(getProc_("cuMemAllocManaged", &fn, CUDA_VERSION, CU_GET_PROC_ADDRESS_DEFAULT, &status),
            CUDA_ERROR_NOT_FOUND);
  EXPECT_EQ(fn, nullptr);
  EXPECT_EQ(status, CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
}

TEST_F(EmulatedDriver, ReportsAnSm90DeviceAndRejectsUnknownAttributes) {
  auto getAttribute = RESOLVE(cuDeviceGetAttribute);
  int major = 0, minor = -1, optin = 0, value = 0;
  EXPECT_EQ(getAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 0), CUDA_SUCCESS);
  EXPECT_EQ(getAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, 0), CUDA_SUCCESS);
  EXPECT_EQ(getAttribute(&optin, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, 0), CUDA_SUCCESS);
  EXPECT_EQ(major, 9);
  EXPECT_EQ(minor, 0);
  EXPECT_EQ(optin, 232448);
  EXPECT_EQ(getAttribute(&value, CU_DEVICE_ATTRIBUTE_ECC_ENABLED, 0), CUDA_ERROR_INVALID_VALUE);
}

TEST_F(EmulatedDriver, CopiesRoundTripAndStayInsideAllocations) {
  auto alloc = RESOLVE(cuMemAlloc);
  auto free = RESOLVE(cuMemFree);
  auto htod = RESOLVE(cuMemcpyHtoDAsync);
  auto dtoh = RESOLVE(cuMemcpyDtoHAsync);
  auto memset = RESOLVE(cuMemsetD8Async);
  CUdeviceptr device = 0;
  ASSERT_EQ(alloc(&device, 64), CUDA_SUCCESS);
  EXPECT_EQ(device % 256, 0u);
  std::vector<unsigned char> in(64), out(64, 0);
  for (size_t i = 0; i < in.size(); ++i)
    in[i] = static_cast<unsigned char>(i * 7 + 1);
  EXPECT_EQ(dtoh(out.data(), device, 64, nullptr), CUDA_SUCCESS);
  EXPECT_EQ(out[0], 0xFF) << "fresh device memory holds junk (0xFF), not zeros";
  EXPECT_EQ(htod(device, in.data(), 64, nullptr), CUDA_SUCCESS);
  EXPECT_EQ(memset(device + 8, 0xAB, 4, nullptr), CUDA_SUCCESS);
  EXPECT_EQ(dtoh(out.data(), device, 64, nullptr), CUDA_SUCCESS);
  for (size_t i = 0; i < in.size(); ++i)
    EXPECT_EQ(out[i], i >= 8 && i < 12 ? 0xAB : in[i]) << i;
  // One byte past the allocation, and a host pointer where a device one belongs.
  EXPECT_EQ(htod(device + 1, in.data(), 64, nullptr), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(memset(device, 0, 65, nullptr), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(htod(reinterpret_cast<CUdeviceptr>(in.data()), out.data(), 4, nullptr), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(free(device), CUDA_SUCCESS);
  EXPECT_EQ(free(device), CUDA_ERROR_INVALID_VALUE);
}

TEST_F(EmulatedDriver, HostAccessToDeviceMemoryFaults) {
  auto alloc = RESOLVE(cuMemAlloc);
  CUdeviceptr device = 0;
  ASSERT_EQ(alloc(&device, 16), CUDA_SUCCESS);
  EXPECT_DEATH(
      { [[maybe_unused]] volatile char c = *reinterpret_cast<volatile char *>(device); },
      "HOST code accessed device address");
}

TEST_F(EmulatedDriver, CaptureRecordsWorkAndReplaysIt) {
  auto alloc = RESOLVE(cuMemAlloc);
  auto allocHost = RESOLVE(cuMemAllocHost);
  auto streamCreate = RESOLVE(cuStreamCreate);
  auto begin = RESOLVE(cuStreamBeginCapture);
  auto end = RESOLVE(cuStreamEndCapture);
  auto instantiate = RESOLVE(cuGraphInstantiateWithFlags);
  auto launch = RESOLVE(cuGraphLaunch);
  auto sync = RESOLVE(cuStreamSynchronize);
  auto memset = RESOLVE(cuMemsetD8Async);
  auto htod = RESOLVE(cuMemcpyHtoDAsync);
  auto dtoh = RESOLVE(cuMemcpyDtoHAsync);
  CUstream stream = nullptr;
  ASSERT_EQ(streamCreate(&stream, CU_STREAM_NON_BLOCKING), CUDA_SUCCESS);
  CUdeviceptr device = 0;
  ASSERT_EQ(alloc(&device, 8), CUDA_SUCCESS);
  void *pinned = nullptr;
  ASSERT_EQ(allocHost(&pinned, 8), CUDA_SUCCESS);
  std::memset(pinned, 0x11, 8);

  ASSERT_EQ(begin(stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), CUDA_SUCCESS);
  EXPECT_EQ(memset(device, 0x22, 8, stream), CUDA_SUCCESS);
  EXPECT_EQ(htod(device, pinned, 4, stream), CUDA_SUCCESS); // pinned memory: capturable
  CUgraph graph = nullptr;
  ASSERT_EQ(end(stream, &graph), CUDA_SUCCESS);
  unsigned char out[8] = {};
  EXPECT_EQ(dtoh(out, device, 8, stream), CUDA_SUCCESS);
  EXPECT_EQ(out[0], 0xFF) << "captured work must not run before the graph is launched";
  CUgraphExec exec = nullptr;
  ASSERT_EQ(instantiate(&exec, graph, 0), CUDA_SUCCESS);
  std::memset(pinned, 0x33, 8); // the replay reads the host buffer when it runs
  ASSERT_EQ(launch(exec, stream), CUDA_SUCCESS);
  EXPECT_EQ(dtoh(out, device, 8, stream), CUDA_SUCCESS);
  EXPECT_EQ(out[0], 0x33);
  EXPECT_EQ(out[7], 0x22);

  // Synchronizing or copying pageable memory while capturing invalidates the capture.
  ASSERT_EQ(begin(stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), CUDA_SUCCESS);
  EXPECT_EQ(sync(stream), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  EXPECT_EQ(end(stream, &graph), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
  EXPECT_EQ(graph, nullptr);
  ASSERT_EQ(begin(stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), CUDA_SUCCESS);
  EXPECT_EQ(htod(device, out, 4, stream), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  EXPECT_EQ(end(stream, &graph), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
}

TEST_F(EmulatedDriver, ModulesNeedTheirHostBuild) {
  auto load = RESOLVE(cuModuleLoadData);
  CUmodule module = nullptr;
  EXPECT_EQ(load(&module, "not an ELF image"), CUDA_ERROR_INVALID_IMAGE);
  // A minimal ELF64 header for EM_CUDA with no sections: no host build exists.
  unsigned char image[64] = {0x7f, 'E', 'L', 'F', 2, 1, 1};
  image[0x12] = 190;
  setenv("V4_EMU_MODULE_DIR", "/nonexistent-v4-emu-modules", 1);
  EXPECT_EQ(load(&module, image), CUDA_ERROR_FILE_NOT_FOUND);
}

TEST_F(DeferredDriver, APinnedDestinationChangesOnlyAtSynchronize) {
  const CUstream s = stream();
  const CUdeviceptr d = device();
  unsigned char *host = pinned(0x11);
  fillAndRead(d, 0x22, host, s);
  EXPECT_EQ(host[0], 0x11) << "the copy is queued: the host must not see its bytes before synchronizing";
  ASSERT_EQ(streamSync(s), CUDA_SUCCESS);
  EXPECT_EQ(host[0], 0x22);
  EXPECT_EQ(host[63], 0x22);
}

// v4emuFailSubmission: the Nth later submission of one call is refused and
// queues nothing; the context stays usable (unlike a failed kernel's).
TEST_F(DeferredDriver, ARefusedSubmissionQueuesNothingAndKeepsTheContext) {
  auto failSubmission =
      reinterpret_cast<void (*)(const char *, unsigned long long)>(dlsym(library_, "v4emuFailSubmission"));
  ASSERT_NE(failSubmission, nullptr);
  const CUstream s = stream();
  const CUdeviceptr d = device();
  unsigned char *host = pinned(0x11);
  failSubmission("cuMemsetD8Async", 2);
  ASSERT_EQ(memset(d, 0x21, 64, s), CUDA_SUCCESS);
  EXPECT_EQ(memset(d, 0x22, 64, s), CUDA_ERROR_INVALID_VALUE); // the second: refused
  ASSERT_EQ(dtoh(host, d, 64, s), CUDA_SUCCESS);
  ASSERT_EQ(streamSync(s), CUDA_SUCCESS);
  EXPECT_EQ(host[0], 0x21) << "the refused memset ran";
  fillAndRead(d, 0x23, host, s); // one-shot: later submissions run
  ASSERT_EQ(streamSync(s), CUDA_SUCCESS);
  EXPECT_EQ(host[0], 0x23);
}

TEST_F(DeferredDriver, EagerSwitchRunsWorkAtSubmission) {
  auto init = reinterpret_cast<CUresult (*)(unsigned)>(dlsym(library_, "cuInit"));
  ::setenv("V4_EMU_EAGER", "1", 1);
  ASSERT_EQ(init(0), CUDA_SUCCESS); // the switch is read at cuInit
  const CUstream s = stream();
  unsigned char *host = pinned(0x11);
  fillAndRead(device(), 0x23, host, s);
  EXPECT_EQ(host[0], 0x23);
  ::unsetenv("V4_EMU_EAGER");
  ASSERT_EQ(init(0), CUDA_SUCCESS);
  fillAndRead(device(), 0x24, host, s);
  EXPECT_EQ(host[0], 0x23);
  ASSERT_EQ(streamSync(s), CUDA_SUCCESS);
  EXPECT_EQ(host[0], 0x24);
}

TEST_F(DeferredDriver, EventSynchronizeRunsTheStreamUpToTheRecord) {
  auto eventSync = RESOLVE(cuEventSynchronize);
  auto elapsed = RESOLVE(cuEventElapsedTime);
  const CUstream s = stream();
  const CUdeviceptr d = device();
  unsigned char *first = pinned(0), *second = pinned(0);
  const CUevent start = event(), middle = event(), end = event();
  ASSERT_EQ(eventRecord(start, s), CUDA_SUCCESS);
  fillAndRead(d, 0x31, first, s);
  ASSERT_EQ(eventRecord(middle, s), CUDA_SUCCESS);
  fillAndRead(d, 0x32, second, s);
  ASSERT_EQ(eventRecord(end, s), CUDA_SUCCESS);
  float ms = -1.0f;
  EXPECT_EQ(elapsed(&ms, start, middle), CUDA_ERROR_NOT_READY);
  ASSERT_EQ(eventSync(middle), CUDA_SUCCESS);
  EXPECT_EQ(first[0], 0x31);
  EXPECT_EQ(second[0], 0x00) << "work after the event's record must still be queued";
  EXPECT_EQ(elapsed(&ms, start, middle), CUDA_SUCCESS);
  EXPECT_GE(ms, 0.0f);
  EXPECT_EQ(elapsed(&ms, middle, end), CUDA_ERROR_NOT_READY);
  ASSERT_EQ(eventSync(end), CUDA_SUCCESS);
  EXPECT_EQ(second[0], 0x32);
  EXPECT_EQ(elapsed(&ms, middle, end), CUDA_SUCCESS);
}

TEST_F(DeferredDriver, QueriesAnswerNotReadyOnceThenTheWorkRuns) {
  auto eventQuery = RESOLVE(cuEventQuery);
  auto streamQuery = RESOLVE(cuStreamQuery);
  const CUstream s = stream();
  const CUdeviceptr d = device();
  unsigned char *host = pinned(0);
  const CUevent done = event();
  EXPECT_EQ(eventQuery(done), CUDA_SUCCESS); // never recorded
  EXPECT_EQ(streamQuery(s), CUDA_SUCCESS);   // nothing queued
  fillAndRead(d, 0x41, host, s);
  ASSERT_EQ(eventRecord(done, s), CUDA_SUCCESS);
  EXPECT_EQ(eventQuery(done), CUDA_ERROR_NOT_READY);
  EXPECT_EQ(host[0], 0x00);
  EXPECT_EQ(eventQuery(done), CUDA_SUCCESS); // the GPU finished meanwhile
  EXPECT_EQ(host[0], 0x41);
  fillAndRead(d, 0x42, host, s);
  EXPECT_EQ(streamQuery(s), CUDA_ERROR_NOT_READY);
  EXPECT_EQ(host[0], 0x41);
  EXPECT_EQ(streamQuery(s), CUDA_SUCCESS);
  EXPECT_EQ(host[0], 0x42);
}

TEST_F(DeferredDriver, PageableCopiesCompleteTheirStreamOnly) {
  const CUstream a = stream(), b = stream();
  const CUdeviceptr da = device(), db = device();
  unsigned char *queuedOnA = pinned(0), *queuedOnB = pinned(0);
  fillAndRead(da, 0x51, queuedOnA, a);
  fillAndRead(db, 0x52, queuedOnB, b);
  std::vector<unsigned char> pageable(64, 0);
  ASSERT_EQ(dtoh(pageable.data(), da, 64, a), CUDA_SUCCESS);
  EXPECT_EQ(pageable[0], 0x51) << "a copy to pageable memory is complete at return";
  EXPECT_EQ(queuedOnA[0], 0x51) << "and so is everything before it on its stream";
  EXPECT_EQ(queuedOnB[0], 0x00) << "another stream's work stays queued";
  // From pageable memory: the source is read at the call, the host may reuse it at once.
  std::vector<unsigned char> source(64, 0x53);
  ASSERT_EQ(htod(db, source.data(), 64, b), CUDA_SUCCESS);
  std::fill(source.begin(), source.end(), 0x54);
  ASSERT_EQ(dtoh(queuedOnB, db, 64, b), CUDA_SUCCESS);
  ASSERT_EQ(streamSync(b), CUDA_SUCCESS);
  EXPECT_EQ(queuedOnB[0], 0x53);
}

TEST_F(DeferredDriver, SynchronousCopiesWaitForBlockingStreamsOnly) {
  auto syncDtoH = RESOLVE(cuMemcpyDtoH);
  const CUstream blocking = stream(0), nonBlocking = stream(CU_STREAM_NON_BLOCKING);
  const CUdeviceptr x = device(), y = device();
  ASSERT_EQ(memset(x, 0x61, 64, nonBlocking), CUDA_SUCCESS);
  ASSERT_EQ(memset(y, 0x62, 64, blocking), CUDA_SUCCESS);
  unsigned char out[64] = {};
  ASSERT_EQ(syncDtoH(out, x, 64), CUDA_SUCCESS);
  EXPECT_EQ(out[0], 0xFF) << "the legacy stream does not wait for a non-blocking stream: junk, not 0x61";
  ASSERT_EQ(syncDtoH(out, y, 64), CUDA_SUCCESS);
  EXPECT_EQ(out[0], 0x62) << "it waits for a blocking stream's earlier work";
}

TEST_F(DeferredDriver, StreamWaitEventOrdersWorkAcrossStreams) {
  auto waitEvent = RESOLVE(cuStreamWaitEvent);
  const CUstream a = stream(), b = stream();
  const CUdeviceptr x = device(), y = device();
  unsigned char *viaB = pinned(0), *afterRecordOnA = pinned(0);
  const CUevent written = event();
  ASSERT_EQ(memset(x, 0x71, 64, a), CUDA_SUCCESS);
  ASSERT_EQ(eventRecord(written, a), CUDA_SUCCESS);
  fillAndRead(x, 0x72, afterRecordOnA, a); // after the record: b need not wait for it
  ASSERT_EQ(waitEvent(b, written, 0), CUDA_SUCCESS);
  ASSERT_EQ(dtod(y, x, 64, b), CUDA_SUCCESS);
  ASSERT_EQ(dtoh(viaB, y, 64, b), CUDA_SUCCESS);
  EXPECT_EQ(viaB[0], 0x00);
  ASSERT_EQ(streamSync(b), CUDA_SUCCESS);
  EXPECT_EQ(viaB[0], 0x71) << "a's work up to the event ran first";
  EXPECT_EQ(afterRecordOnA[0], 0x00) << "a's later work is still queued";
  ASSERT_EQ(streamSync(a), CUDA_SUCCESS);
  EXPECT_EQ(afterRecordOnA[0], 0x72);
}

TEST_F(DeferredDriver, ContextSynchronizeFreeAndStreamDestroyRunQueuedWork) {
  auto ctxSync = RESOLVE(cuCtxSynchronize);
  auto free = RESOLVE(cuMemFree);
  auto streamDestroy = RESOLVE(cuStreamDestroy);
  const CUstream a = stream(), b = stream();
  unsigned char *onA = pinned(0), *onB = pinned(0);
  fillAndRead(device(), 0x81, onA, a);
  fillAndRead(device(), 0x82, onB, b);
  ASSERT_EQ(ctxSync(), CUDA_SUCCESS);
  EXPECT_EQ(onA[0], 0x81);
  EXPECT_EQ(onB[0], 0x82);
  const CUdeviceptr doomed = device();
  fillAndRead(doomed, 0x83, onA, a);
  EXPECT_EQ(onA[0], 0x81);
  ASSERT_EQ(free(doomed), CUDA_SUCCESS); // the device is synchronized before memory goes
  EXPECT_EQ(onA[0], 0x83);
  fillAndRead(device(), 0x84, onB, b);
  ASSERT_EQ(streamDestroy(b), CUDA_SUCCESS); // queued work still completes
  EXPECT_EQ(onB[0], 0x84);
}

TEST_F(DeferredDriver, GraphLaunchQueuesItsOperations) {
  auto begin = RESOLVE(cuStreamBeginCapture);
  auto end = RESOLVE(cuStreamEndCapture);
  auto instantiate = RESOLVE(cuGraphInstantiateWithFlags);
  auto launch = RESOLVE(cuGraphLaunch);
  const CUstream s = stream();
  const CUdeviceptr d = device();
  unsigned char *host = pinned(0);
  ASSERT_EQ(begin(s, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), CUDA_SUCCESS);
  fillAndRead(d, 0x91, host, s);
  CUgraph graph = nullptr;
  ASSERT_EQ(end(s, &graph), CUDA_SUCCESS);
  CUgraphExec exec = nullptr;
  ASSERT_EQ(instantiate(&exec, graph, 0), CUDA_SUCCESS);
  ASSERT_EQ(launch(exec, s), CUDA_SUCCESS);
  EXPECT_EQ(host[0], 0x00);
  ASSERT_EQ(streamSync(s), CUDA_SUCCESS);
  EXPECT_EQ(host[0], 0x91);
}

TEST_F(DeferredDriver, FreeingAPinnedBufferAQueuedCopyUsesAborts) {
  const CUstream s = stream();
  const CUdeviceptr d = device();
  unsigned char *host = pinned(0);
  EXPECT_DEATH(
      {
        fillAndRead(d, 0xA1, host, s);
        freeHost(host);
      },
      "cuMemFreeHost\\(.*\\): a cuMemcpyDtoHAsync queued on stream .* still uses this buffer");
  fillAndRead(d, 0xA2, host, s);
  ASSERT_EQ(streamSync(s), CUDA_SUCCESS);
  EXPECT_EQ(freeHost(host), CUDA_SUCCESS); // complete: free to go
}

TEST_F(DeferredDriver, HostWritesToAQueuedCopysBufferAbort) {
  const CUstream s = stream();
  const CUdeviceptr d = device();
  unsigned char *host = pinned(0xB1);
  EXPECT_DEATH(
      {
        htod(d, host, 64, s);
        host[5] = 0xB2; // the DMA may not have read it yet
        streamSync(s);
      },
      "the host changed the pinned source of a queued cuMemcpyHtoDAsync");
  EXPECT_DEATH(
      {
        dtoh(host, d, 64, s);
        host[5] = 0xB2; // the DMA will overwrite it, or not yet
        streamSync(s);
      },
      "the host changed the pinned destination of a queued cuMemcpyDtoHAsync");
  // A device round trip through the buffer, ordered on the stream, is no race.
  ASSERT_EQ(memset(d, 0xB3, 64, s), CUDA_SUCCESS);
  ASSERT_EQ(dtoh(host, d, 64, s), CUDA_SUCCESS);
  const CUdeviceptr e = device();
  ASSERT_EQ(htod(e, host, 64, s), CUDA_SUCCESS);
  unsigned char *back = pinned(0);
  ASSERT_EQ(dtoh(back, e, 64, s), CUDA_SUCCESS);
  ASSERT_EQ(streamSync(s), CUDA_SUCCESS);
  EXPECT_EQ(back[63], 0xB3);
}

} // namespace
