// The emulated driver's own rules (README.md, "Honesty rules"), through the
// same loading path the runtime uses: dlopen, cuInit, cuGetProcAddress_v2.
#include <cuda.h>
#include <dlfcn.h>

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

} // namespace
