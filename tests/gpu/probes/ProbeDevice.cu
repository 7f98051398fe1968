// The device half of v4probe-primitives: ProbeKernels.cuh's bodies as
// __global__ kernels for sm_90a, launched through the CUDA runtime (linked
// statically; it loads libcuda itself, so the binary needs only the driver).
// Every call throws std::runtime_error naming the CUDA call that failed.
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "tests/gpu/probes/ProbeKernels.cuh"

namespace v4probe {
namespace {

template <int N, bool E4M3, bool CP_ASYNC>
__global__ void __launch_bounds__(128)
    wgmmaKernel(const unsigned char *a, const unsigned char *b, float *out, int slice, int mode, int startOffset) {
  wgmmaProbe<N, E4M3, CP_ASYNC>(a, b, out, slice, mode, startOffset);
}
__global__ void __launch_bounds__(128) cpAsyncZeroFillKernel(const unsigned char *src, unsigned char *out) {
  cpAsyncZeroFillProbe(src, out);
}
__global__ void __launch_bounds__(128) cpAsyncGroupsKernel(const unsigned char *src, unsigned char *out) {
  cpAsyncGroupsProbe(src, out);
}
__global__ void __launch_bounds__(256)
    denseBf16TileKernel(const __nv_bfloat16 *x, const __nv_bfloat16 *w, float *y, const int32_t *dyn) {
  denseBf16TileProbe(x, w, y, dyn);
}
__global__ void __launch_bounds__(256)
    fp8TileKernel(const __nv_bfloat16 *x, const __nv_fp8_e4m3 *w, const uint8_t *scales, float *y, const int32_t *dyn) {
  fp8TileProbe(x, w, scales, y, dyn);
}

__global__ void __launch_bounds__(256)
    moeTileKernel(const __nv_bfloat16 *h, const float *routeWeights, const int32_t *experts,
                  const __nv_bfloat16 *gateUp, const __nv_bfloat16 *down, float *out, v4cuda::MoeMmaScratch scratch,
                  const int32_t *dyn) {
  moeTileProbe(h, routeWeights, experts, gateUp, down, out, scratch, dyn);
}

void check(cudaError_t status, const char *what) {
  if (status != cudaSuccess)
    throw std::runtime_error(std::string(what) + ": " + cudaGetErrorName(status) + " (" + cudaGetErrorString(status) +
                             ")");
}

// A device copy of a host vector (freed on scope exit).
template <class T> class DeviceBuffer {
public:
  explicit DeviceBuffer(size_t count) : count_(count) {
    check(cudaMalloc(&data_, count * sizeof(T) + 16), "cudaMalloc");
  }
  explicit DeviceBuffer(const std::vector<T> &host) : DeviceBuffer(host.size()) {
    check(cudaMemcpy(data_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice), "cudaMemcpy to the device");
  }
  ~DeviceBuffer() { cudaFree(data_); }
  DeviceBuffer(const DeviceBuffer &) = delete;
  DeviceBuffer &operator=(const DeviceBuffer &) = delete;
  T *get() const { return static_cast<T *>(data_); }
  // Fills every byte with `byte` (outputs: NaN-like where nothing wrote).
  void fill(int byte) { check(cudaMemset(data_, byte, count_ * sizeof(T)), "cudaMemset"); }
  std::vector<T> download() const {
    std::vector<T> host(count_);
    check(cudaMemcpy(host.data(), data_, count_ * sizeof(T), cudaMemcpyDeviceToHost), "cudaMemcpy to the host");
    return host;
  }

private:
  void *data_ = nullptr;
  size_t count_;
};

// After a launch: the launch error, then the kernel's own (synchronously).
void finish(const char *kernel) {
  check(cudaGetLastError(), (std::string("launching ") + kernel).c_str());
  check(cudaDeviceSynchronize(), (std::string("running ") + kernel).c_str());
}

template <class Kernel> void allowShared(Kernel kernel, size_t bytes) {
  check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)),
        "cudaFuncSetAttribute(MaxDynamicSharedMemorySize)");
}

// One wgmma probe launch (dispatchWgmma picks the instantiation).
struct WgmmaLaunch {
  const WgmmaCase &c;
  const uint8_t *a, *b;
  float *out;
  template <int N, bool E4M3, bool CP_ASYNC> void run() {
    auto kernel = wgmmaKernel<N, E4M3, CP_ASYNC>;
    allowShared(kernel, wgmmaSharedBytes(c));
    kernel<<<1, kWgmmaThreadsProbe, wgmmaSharedBytes(c)>>>(a, b, out, c.slice, c.mode, c.startOffset);
    finish("the wgmma probe");
  }
};

class DeviceRunner final : public Runner {
public:
  std::vector<float> wgmma(const WgmmaCase &c, const std::vector<uint8_t> &a, const std::vector<uint8_t> &b) override {
    DeviceBuffer<uint8_t> da(a), db(b);
    DeviceBuffer<float> out(fragmentFloats(c));
    out.fill(0xFF);
    WgmmaLaunch launch{c, da.get(), db.get(), out.get()};
    if (!dispatchWgmma(c, launch))
      throw std::runtime_error("no wgmma probe kernel for this case");
    return out.download();
  }
  std::vector<uint8_t> cpAsyncZeroFill(const std::vector<uint8_t> &src) override {
    DeviceBuffer<uint8_t> dsrc(src), out(src.size());
    out.fill(0);
    cpAsyncZeroFillKernel<<<1, kCpAsyncThreads, kCpAsyncThreads * 16>>>(dsrc.get(), out.get());
    finish("the cp.async zero-fill probe");
    return out.download();
  }
  std::vector<uint8_t> cpAsyncGroups(const std::vector<uint8_t> &src) override {
    DeviceBuffer<uint8_t> dsrc(src), out(src.size());
    out.fill(0);
    cpAsyncGroupsKernel<<<1, kCpAsyncThreads, 3 * kCpAsyncThreads * 16>>>(dsrc.get(), out.get());
    finish("the cp.async groups probe");
    return out.download();
  }
  std::vector<float> denseBf16Tile(const std::vector<uint16_t> &x, const std::vector<uint16_t> &w) override {
    DeviceBuffer<uint16_t> dx(x), dw(w);
    DeviceBuffer<float> y(size_t(kDenseT) * kDenseN);
    y.fill(0xFF);
    DeviceBuffer<int32_t> dyn(std::vector<int32_t>{kDensePresent});
    allowShared(denseBf16TileKernel, kDenseBf16SharedBytes);
    denseBf16TileKernel<<<dim3((kDenseN + kDenseBN - 1) / kDenseBN, (kDenseT + kDenseBM - 1) / kDenseBM, 1),
                          kTileThreads, kDenseBf16SharedBytes>>>(reinterpret_cast<const __nv_bfloat16 *>(dx.get()),
                                                                 reinterpret_cast<const __nv_bfloat16 *>(dw.get()),
                                                                 y.get(), dyn.get());
    finish("the dense wgmma bf16 tile");
    return y.download();
  }
  std::vector<float> fp8Tile(const std::vector<uint16_t> &x, const std::vector<uint8_t> &codes,
                             const std::vector<uint8_t> &scales) override {
    DeviceBuffer<uint16_t> dx(x);
    DeviceBuffer<uint8_t> dw(codes), ds(scales);
    DeviceBuffer<float> y(size_t(kDenseT) * kDenseN);
    y.fill(0xFF);
    DeviceBuffer<int32_t> dyn(std::vector<int32_t>{kDensePresent});
    allowShared(fp8TileKernel, kFp8SharedBytes);
    fp8TileKernel<<<dim3((kDenseN + kDenseBN - 1) / kDenseBN, (kDenseT + kDenseBM - 1) / kDenseBM, 1), kTileThreads,
                    kFp8SharedBytes>>>(reinterpret_cast<const __nv_bfloat16 *>(dx.get()),
                                       reinterpret_cast<const __nv_fp8_e4m3 *>(dw.get()), ds.get(), y.get(),
                                       dyn.get());
    finish("the fp8 wgmma tile");
    return y.download();
  }
  std::vector<float> moeTile(const std::vector<uint16_t> &h, const std::vector<float> &routeWeights,
                             const std::vector<int32_t> &experts, const std::vector<uint16_t> &gateUp,
                             const std::vector<uint16_t> &down) override {
    DeviceBuffer<uint16_t> dh(h), dgu(gateUp), ddown(down);
    DeviceBuffer<float> dw(routeWeights);
    DeviceBuffer<int32_t> de(experts);
    DeviceBuffer<float> out(size_t(kMoeT) * kMoeD);
    out.fill(0xFF);
    // The scratch as the artifact's static arrays start: tables -1, act NaN
    // (0xFF bytes), accumulator and counters 0 (the kernel leaves them so).
    const int pairs = kMoeT * kMoeK;
    DeviceBuffer<int> order(pairs), tileExpert(kMoeMaxTiles), tileBegin(kMoeMaxTiles), tileCount(kMoeMaxTiles);
    DeviceBuffer<float> act(size_t(pairs) * kMoeI), accumulator(size_t(kMoeT) * kMoeD);
    DeviceBuffer<unsigned> tokenDone(kMoeT), tileDone(kMoeMaxTiles), control(4);
    for (DeviceBuffer<int> *table : {&order, &tileExpert, &tileBegin, &tileCount})
      table->fill(0xFF);
    act.fill(0xFF);
    accumulator.fill(0);
    tokenDone.fill(0);
    tileDone.fill(0);
    control.fill(0);
    const v4cuda::MoeMmaScratch scratch{order.get(),       tileExpert.get(), tileBegin.get(), tileCount.get(), act.get(),
                                        accumulator.get(), tokenDone.get(),  tileDone.get(),  control.get()};
    DeviceBuffer<int32_t> dyn(std::vector<int32_t>{kMoeT});
    allowShared(moeTileKernel, kMoeSharedBytes);
    moeTileKernel<<<kMoeBlocks, v4cuda::kMoeMmaThreads, kMoeSharedBytes>>>(
        reinterpret_cast<const __nv_bfloat16 *>(dh.get()), dw.get(), de.get(),
        reinterpret_cast<const __nv_bfloat16 *>(dgu.get()), reinterpret_cast<const __nv_bfloat16 *>(ddown.get()),
        out.get(), scratch, dyn.get());
    finish("the grouped MoE wgmma GEMM");
    return out.download();
  }
};

} // namespace

std::string deviceUnavailableReason() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    // The runtime is linked statically: name both versions (a driver older
    // than the runtime's CUDA says cudaErrorInsufficientDriver; 0 = no driver).
    int driver = 0, runtime = 0;
    cudaDriverGetVersion(&driver);
    cudaRuntimeGetVersion(&runtime);
    return std::string("no CUDA device: ") + cudaGetErrorName(status) + " (" + cudaGetErrorString(status) +
           "; driver API version " + std::to_string(driver) + ", the probe's static CUDA runtime " +
           std::to_string(runtime) + ")";
  }
  if (count == 0)
    return "no CUDA device: the driver reports none";
  cudaDeviceProp props{};
  check(cudaGetDeviceProperties(&props, 0), "cudaGetDeviceProperties");
  if (props.major != 9 || props.minor != 0)
    return std::string("device 0 (") + props.name + ") is sm_" + std::to_string(props.major) +
           std::to_string(props.minor) + ": the probes are built for sm_90a (Hopper) only";
  return "";
}

std::string deviceName() {
  cudaDeviceProp props{};
  check(cudaGetDeviceProperties(&props, 0), "cudaGetDeviceProperties");
  int driver = 0;
  cudaDriverGetVersion(&driver);
  return std::string(props.name) + " (sm_" + std::to_string(props.major) + std::to_string(props.minor) + ", driver " +
         std::to_string(driver / 1000) + "." + std::to_string(driver % 1000 / 10) + ")";
}

std::unique_ptr<Runner> makeDeviceRunner() { return std::make_unique<DeviceRunner>(); }

} // namespace v4probe
