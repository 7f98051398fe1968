// The emulated half of v4probe-primitives: ProbeKernels.cuh's bodies run on
// the CPU through the host emulation (codegen/cuda/testing/HostEmulation.h,
// WgmmaEmulation.h, CpAsyncEmulation.h), launched as the device half
// launches them; and the tile probes' inputs and CPU-reference expectations.
#include "codegen/cuda/testing/HostEmulation.h"

#include <cstring>

#include "runtime/cpu/QuantKernels.h"
#include "runtime/cpu/Quantization.h"
#include "runtime/cpu/ReferenceKernels.h"

#include "tests/gpu/probes/ProbeKernels.cuh"

#include "codegen/cuda/testing/KernelTestSupport.h"

#include "codegen/cuda/MoeHostTestSupport.h"
#include "tests/gpu/probes/ProbeTiles.h"

namespace v4probe {
namespace {

using v4emu::testing::asStored;
using v4emu::testing::bf16;
using v4emu::testing::randoms;
using v4emu::testing::stored;
using v4emu::testing::termScale;
namespace quant = v4rt::quant;

struct WgmmaLaunch {
  const WgmmaCase &c;
  const uint8_t *a, *b;
  float *out;
  template <int N, bool E4M3, bool CP_ASYNC> void run() {
    v4emu::launch(dim3(1), dim3(kWgmmaThreadsProbe), wgmmaSharedBytes(c),
                  [&] { wgmmaProbe<N, E4M3, CP_ASYNC>(a, b, out, c.slice, c.mode, c.startOffset); });
  }
};

dim3 tileGrid() { return dim3((kDenseN + kDenseBN - 1) / kDenseBN, (kDenseT + kDenseBM - 1) / kDenseBM, 1); }

std::vector<float> nanFloats(size_t count) { return std::vector<float>(count, std::nanf("")); }

class EmulatedRunner final : public Runner {
public:
  std::vector<float> wgmma(const WgmmaCase &c, const std::vector<uint8_t> &a, const std::vector<uint8_t> &b) override {
    std::vector<float> out = nanFloats(fragmentFloats(c));
    WgmmaLaunch launch{c, a.data(), b.data(), out.data()};
    if (!dispatchWgmma(c, launch))
      throw v4c::Error("no wgmma probe kernel for this case");
    return out;
  }
  std::vector<uint8_t> cpAsyncZeroFill(const std::vector<uint8_t> &src) override {
    std::vector<uint8_t> out(src.size(), 0);
    v4emu::launch(dim3(1), dim3(kCpAsyncThreads), kCpAsyncThreads * 16,
                  [&] { cpAsyncZeroFillProbe(src.data(), out.data()); });
    return out;
  }
  std::vector<uint8_t> cpAsyncGroups(const std::vector<uint8_t> &src) override {
    std::vector<uint8_t> out(src.size(), 0);
    v4emu::launch(dim3(1), dim3(kCpAsyncThreads), 3 * kCpAsyncThreads * 16,
                  [&] { cpAsyncGroupsProbe(src.data(), out.data()); });
    return out;
  }
  std::vector<float> denseBf16Tile(const std::vector<uint16_t> &x, const std::vector<uint16_t> &w) override {
    std::vector<float> y = nanFloats(size_t(kDenseT) * kDenseN);
    const int32_t dyn[1] = {kDensePresent};
    v4emu::launch(tileGrid(), dim3(kTileThreads), kDenseBf16SharedBytes, [&] {
      denseBf16TileProbe(reinterpret_cast<const bf16 *>(x.data()), reinterpret_cast<const bf16 *>(w.data()), y.data(),
                         dyn);
    });
    return y;
  }
  std::vector<float> fp8Tile(const std::vector<uint16_t> &x, const std::vector<uint8_t> &codes,
                             const std::vector<uint8_t> &scales) override {
    std::vector<float> y = nanFloats(size_t(kDenseT) * kDenseN);
    const int32_t dyn[1] = {kDensePresent};
    v4emu::launch(tileGrid(), dim3(kTileThreads), kFp8SharedBytes, [&] {
      fp8TileProbe(reinterpret_cast<const bf16 *>(x.data()), reinterpret_cast<const __nv_fp8_e4m3 *>(codes.data()),
                   scales.data(), y.data(), dyn);
    });
    return y;
  }
  std::vector<float> moeTile(const std::vector<uint16_t> &h, const std::vector<float> &routeWeights,
                             const std::vector<int32_t> &experts, const std::vector<uint16_t> &gateUp,
                             const std::vector<uint16_t> &down) override {
    const v4emu::testing::MoeCase c{kMoeT, kMoeT, kMoeE, kMoeK, kMoeD, kMoeI, true};
    v4emu::testing::Scratch scratch(c, kMoeMaxTiles);
    std::vector<float> out = nanFloats(size_t(kMoeT) * kMoeD);
    const int32_t dyn[1] = {kMoeT};
    v4emu::launch(dim3(kMoeBlocks), dim3(v4cuda::kMoeMmaThreads), kMoeSharedBytes, [&] {
      moeTileProbe(reinterpret_cast<const bf16 *>(h.data()), routeWeights.data(), experts.data(),
                   reinterpret_cast<const bf16 *>(gateUp.data()), reinterpret_cast<const bf16 *>(down.data()),
                   out.data(), scratch.view(), dyn);
    });
    return out;
  }
};

std::vector<uint16_t> bf16Bits(const std::vector<float> &values) {
  const std::vector<bf16> held = stored<bf16>(values);
  std::vector<uint16_t> bits(held.size());
  std::memcpy(bits.data(), held.data(), bits.size() * sizeof(uint16_t));
  return bits;
}

} // namespace

std::unique_ptr<Runner> makeEmulatedRunner() { return std::make_unique<EmulatedRunner>(); }

TilePosition accumulatorPosition(int thread, int element) {
  const v4cuda::WgmmaPosition p = v4cuda::wgmmaAccumulatorPosition(thread, element);
  return {p.row, p.col};
}

TileProblem denseBf16Problem() {
  const std::vector<float> x = asStored<bf16>(randoms(size_t(kDenseT) * kDenseK, 7)),
                           w = asStored<bf16>(randoms(size_t(kDenseN) * kDenseK, 8));
  TileProblem p;
  p.rows = kDenseT, p.present = kDensePresent, p.cols = kDenseN;
  p.x = bf16Bits(x);
  p.w = bf16Bits(w);
  p.expected.resize(size_t(kDensePresent) * kDenseN);
  v4rt::ref::linear(x.data(), kDensePresent, kDenseK, w.data(), kDenseN, p.expected.data(), nullptr);
  p.scale = termScale(x, kDensePresent, kDenseK, w, kDenseN);
  return p;
}

TileProblem fp8Problem() {
  const std::vector<float> x = asStored<bf16>(randoms(size_t(kDenseT) * kDenseK, 21, 4.0f)),
                           w = randoms(size_t(kDenseN) * kDenseK, 22, 0.5f);
  TileProblem p;
  p.rows = kDenseT, p.present = kDensePresent, p.cols = kDenseN;
  p.x = bf16Bits(x);
  const quant::BlockShape block{kFp8BlockRows, kFp8Group};
  v4emu::testing::Fp8LinearCase c = v4emu::testing::fp8LinearCase(x, kDensePresent, kDenseK, w, kDenseN, block);
  p.codes = std::move(c.codes), p.scales = std::move(c.scales), p.expected = std::move(c.expected);
  // The error scale: the e4m3-rounded activations times the dequantized weights.
  std::vector<float> xq(x.begin(), x.begin() + size_t(kDensePresent) * kDenseK), wq(size_t(kDenseN) * kDenseK);
  v4rt::ref::fakeQuantizeActivations(xq.data(), kDensePresent, kDenseK, kFp8Group);
  quant::dequantizeBlocks(p.codes.data(), p.scales.data(), kDenseN, kDenseK, block, quant::Format::E4M3, wq.data());
  p.scale = termScale(xq, kDensePresent, kDenseK, wq, kDenseN);
  return p;
}

// MoeHostTestSupport.h's case data and expectation (runMoeGrouped's bf16 path).
TileProblem moeProblem() {
  using namespace v4emu::testing;
  const MoeCase c{kMoeT, kMoeT, kMoeE, kMoeK, kMoeD, kMoeI, true};
  const std::vector<float> h = asStored<bf16>(randoms(c.T * c.D, 51));
  const std::vector<float> gateUp = asStored<bf16>(randoms(size_t(c.E) * 2 * c.I * c.D, 52, 0.2f)),
                           down = asStored<bf16>(randoms(size_t(c.E) * c.D * c.I, 53, 0.2f)),
                           weights = randoms(c.T * c.k, 54);
  TileProblem p;
  p.rows = kMoeT, p.present = kMoeT, p.cols = kMoeD;
  p.experts = routing(c, false);
  p.x = bf16Bits(h);
  p.w = bf16Bits(gateUp);
  p.down = bf16Bits(down);
  p.routeWeights = weights;
  p.expected.resize(size_t(c.present) * c.D);
  const v4rt::ref::MoeParams params{c.E, c.k, c.D, c.I, kMoeLimit};
  v4rt::ref::moe(h.data(), c.present, weights.data(), p.experts.data(), gateUp.data(), down.data(), params,
                 p.expected.data(), nullptr);
  p.scale = outputScale(c, h, weights, p.experts, gateUp, down, kMoeLimit);
  return p;
}

} // namespace v4probe
