// What the two halves of v4probe-primitives share (plain C++17: nvcc and the
// host compiler both include it): the probes' shapes and modes, and the
// Runner interface the device half (ProbeDevice.cu) and the emulated half
// (ProbeEmulated.cpp) implement with the same kernels (ProbeKernels.cuh).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#if defined(__CUDACC__)
#define V4PROBE_HOST_DEVICE __host__ __device__
#else
#define V4PROBE_HOST_DEVICE
#endif

namespace v4probe {

constexpr int kRowBytes = 128;         // one K-major swizzled row: 64 bf16 or 128 e4m3
constexpr int kRowsA = 64;             // m64
constexpr int kSliceBytes = 32;        // one k16 (bf16) or k32 (e4m3) slice of a row
constexpr int kSlices = 4;             // slices per 128-byte row
constexpr int kWgmmaThreadsProbe = 128; // one warpgroup
constexpr int kCpAsyncThreads = 128;
constexpr unsigned char kPoisonByte = 0xA5;
constexpr float kOverwriteSentinel = 7777.0f; // in the accumulators before a scale-d = 0 mma
constexpr float kAccumulateBase = 4096.0f;    // before a scale-d = 1 mma

// How the wgmma probe issues its mma(s).
enum WgmmaMode : int {
  kPlain = 0,      // accumulators 0, one mma of `slice`, scale-d = 0
  kOverwrite = 1,  // accumulators kOverwriteSentinel, scale-d = 0: must be ignored
  kAccumulate = 2, // accumulators kAccumulateBase, scale-d = 1: D = base + A * B
  kChain = 3,      // the 4 slices chained on one fragment (scale-d 0, 1, 1, 1): the GEMM's inner loop
  kWaitGroup = 4,  // slice 0 and slice 1 in two groups; the first read after wait_group 1
};

struct WgmmaCase {
  int n = 64;           // 64, 128, 256
  bool e4m3 = false;    // m64nNk32 e4m3 (else m64nNk16 bf16)
  bool cpAsync = false; // operands loaded by cp.async (n 64 bf16 only)
  int slice = 0;        // which 32-byte slice of the rows (start address + 32 * slice)
  int mode = kPlain;
  int startOffset = 0; // bytes past the 1024-aligned shared address where both tiles start
};
inline size_t fragmentFloats(const WgmmaCase &c) {
  return size_t(kWgmmaThreadsProbe) * (c.n / 2) * (c.mode == kWaitGroup ? 2 : 1);
}
inline size_t wgmmaSharedBytes(const WgmmaCase &c) {
  return 1024 + size_t(c.startOffset) + size_t(kRowsA + c.n) * kRowBytes;
}

// Bytes thread t copies from its 16-byte source chunk in the zero-fill probe.
V4PROBE_HOST_DEVICE inline int zeroFillSourceBytes(int t) { return t % 17; }

// The tile probes' shapes: one small GEMM through the wgmma bf16 tile
// (linearGemm, MMA = 2) and the native e4m3 tile (linearFp8Gemm); two row
// tiles (the second one row), ragged N, K of 2 groups.
constexpr int kDenseT = 130, kDensePresent = 129, kDenseK = 256, kDenseN = 130, kDenseBM = 128, kDenseBN = 128;
constexpr int kFp8BlockRows = 128, kFp8Group = 128;
constexpr int kTileThreads = 256;
// The grouped MoE wgmma GEMM (moeGroupedWgmma, bf16 experts): 70 tokens x
// top-2 of 6 experts (most pairs on expert 0: two tiles of it), D 64, I 256
// (two slices), present = all; SwiGLU limit 1.5 (both clamps act).
constexpr int kMoeT = 70, kMoeK = 2, kMoeE = 6, kMoeD = 64, kMoeI = 256;
constexpr float kMoeLimit = 1.5f;

// One half of the probe: runs each kernel on its inputs, returns its raw outputs.
class Runner {
public:
  virtual ~Runner() = default;
  // fragmentFloats(c) floats: thread t's accumulator i at [t * n / 2 + i].
  virtual std::vector<float> wgmma(const WgmmaCase &c, const std::vector<uint8_t> &a, const std::vector<uint8_t> &b) = 0;
  // 128 x 16 bytes in, 128 x 16 out.
  virtual std::vector<uint8_t> cpAsyncZeroFill(const std::vector<uint8_t> &src) = 0;
  // 3 x 128 x 16 bytes in and out.
  virtual std::vector<uint8_t> cpAsyncGroups(const std::vector<uint8_t> &src) = 0;
  // x [kDenseT, kDenseK] bf16 bits, w [kDenseN, kDenseK] bf16 bits -> y [kDenseT, kDenseN] f32.
  virtual std::vector<float> denseBf16Tile(const std::vector<uint16_t> &x, const std::vector<uint16_t> &w) = 0;
  // x bf16 bits, w e4m3 codes [kDenseN, kDenseK], scales (ue8m0 per [128 x 128] block) -> y f32.
  virtual std::vector<float> fp8Tile(const std::vector<uint16_t> &x, const std::vector<uint8_t> &codes,
                                     const std::vector<uint8_t> &scales) = 0;
  // h [kMoeT, kMoeD] bf16 bits, route weights / experts [kMoeT, kMoeK], gate_up [E, 2I, D] and
  // down [E, D, I] bf16 bits -> out [kMoeT, kMoeD] f32.
  virtual std::vector<float> moeTile(const std::vector<uint16_t> &h, const std::vector<float> &routeWeights,
                                     const std::vector<int32_t> &experts, const std::vector<uint16_t> &gateUp,
                                     const std::vector<uint16_t> &down) = 0;
};

std::unique_ptr<Runner> makeEmulatedRunner();
// Where accumulator element i of warpgroup thread t sits in the 64 x N
// tile: Wgmma.cuh's wgmmaAccumulatorPosition (fact 4), the model's reading.
struct TilePosition {
  int row, col;
};
TilePosition accumulatorPosition(int thread, int element);

// The device half (ProbeDevice.cu). Call only in a child process that may
// die (the parent never touches CUDA): a sticky CUDA error or a hang then
// costs one probe, not the rest.
// "" when device 0 can run sm_90a kernels, else why not (one line).
std::string deviceUnavailableReason();
std::string deviceName();
std::unique_ptr<Runner> makeDeviceRunner();

} // namespace v4probe
