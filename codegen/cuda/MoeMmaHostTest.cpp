// Runs the tensor-core MoE kernel (include/v4cuda/MoeMma.cuh) on the CPU
// through the host emulation (nvcuda::wmma on whole tiles) and compares it
// with ref::moe / ref::moeFp4 (MoeHostTestSupport.h). The emitter
// (StateEmitters.cpp) is run on a one-step Program first: its entry must
// call the instantiation the test runs, and the test launches with its
// LaunchDims.
#include <string>
#include <vector>

#include "codegen/cuda/testing/HostEmulation.h"

#include <v4cuda/MoeWgmma.cuh> // MoeMma.cuh, and the wgmma variant the shared runner can launch

#include "codegen/cuda/testing/KernelTestSupport.h"

#include "codegen/cuda/MoeHostTestSupport.h"

namespace {

using namespace v4emu::testing;
using v4c::cuda::TensorCores;

TEST(MoeMmaOnHost, Bf16ExpertsMatchReference) {
  // 70 tokens x 2 slots, 40+ pairs on expert 0 plus its share: two tiles of
  // it, a partial last tile, an empty expert, 2 gate/up slices.
  runMoeGrouped<bf16>({70, 70, 6, 2, 64, 256, true}, false, TensorCores::Wmma);
  // present < bucket tokens; D not a multiple of 128.
  runMoeGrouped<bf16>({24, 13, 5, 3, 96, 128, false}, false, TensorCores::Wmma);
  // top-6 of 16, 3 slices, 2 column blocks.
  runMoeGrouped<bf16>({90, 87, 16, 6, 256, 384, true}, false, TensorCores::Wmma);
}

TEST(MoeMmaOnHost, Fp4ExpertsMatchReference) {
  runMoeGrouped<bf16>({70, 61, 6, 2, 128, 256, true}, true, TensorCores::Wmma);
  // f32 h: fake-quantized, still exact in bf16.
  runMoeGrouped<float>({20, 20, 4, 2, 256, 128, false}, true, TensorCores::Wmma);
  runMoeGrouped<bf16>({130, 130, 12, 6, 384, 256, true}, true, TensorCores::Wmma);
}

// Decode (T <= 8): moeSplit with the emitter's slice: bf16 experts shrink the
// slice from 128 to 32 rows so that T * k * I / slice blocks stream them.
TEST(MoeMmaOnHost, DecodeSplitWithEmitterSliceMatchesReference) {
  const MoeCase c{3, 2, 8, 6, 256, 256, false};
  const std::vector<float> h = asStored<bf16>(randoms(c.T * c.D, 61)),
                           gateUp = asStored<bf16>(randoms(static_cast<size_t>(c.E) * 2 * c.I * c.D, 62, 0.2f)),
                           down = asStored<bf16>(randoms(static_cast<size_t>(c.E) * c.D * c.I, 63, 0.2f)),
                           weights = randoms(c.T * c.k, 64);
  const std::vector<int32_t> experts = routing(c, false);
  const std::vector<bf16> hS = stored<bf16>(h), gateUpS = stored<bf16>(gateUp), downS = stored<bf16>(down);
  ref::MoeParams params{c.E, c.k, c.D, c.I, 1.5};
  std::vector<float> expected(c.present * c.D);
  ref::moe(h.data(), c.present, weights.data(), experts.data(), gateUp.data(), down.data(), params, expected.data(),
           nullptr);
  const EmittedKernel k =
      emit("v4.moe", c.T,
           {arg(DType::BF16, {c.T, c.D}), arg(DType::F32, {c.T, c.k}), arg(DType::I32, {c.T, c.k}),
            weight(DType::BF16, {c.E, 2 * c.I, c.D}), weight(DType::BF16, {c.E, c.D, c.I})},
           {arg(DType::F32, {c.T, c.D})}, {floatAttr("swiglu_limit", {1.5})});
  constexpr int kSlice = 32; // 3 * 6 * 256 / 128 = 36 blocks -> 72 -> 144 (slice 32 is the floor)
  ASSERT_EQ(k.dims.grid[0], static_cast<unsigned>(c.T * c.k * c.I / kSlice));
  std::vector<float> accumulator(c.T * c.D, 0.0f);
  std::vector<unsigned int> done(c.T, 0u);
  std::vector<float> out = nanFilled<float>(c.T * c.D);
  const v4cuda::MoeShape shape{c.E, c.k, c.D, c.I, 1.5f};
  const int32_t dyn[1] = {c.present};
  launchEntry(k, "v4cuda::moeSplit<8, false>(in0, in1, in2, gateUp, down, out0, shape, 32, ", [&] {
    v4cuda::moeSplit<8, false>(hS.data(), weights.data(), experts.data(),
                               v4cuda::state::DenseExpertRows<bf16>{gateUpS.data(), c.D},
                               v4cuda::state::DenseExpertRows<bf16>{downS.data(), c.I}, out.data(), shape, kSlice,
                               accumulator.data(), done.data(), dyn);
  });
  std::vector<float> scale(c.present * c.D, 0.0f);
  scale = outputScale(c, h, weights, experts, gateUp, down, 1.5);
  expectRows(out, expected, c.present, c.D, "moe split decode", 1e-5f, &scale);
  for (float a : accumulator)
    ASSERT_EQ(a, 0.0f) << "the accumulator must be cleared for the next launch";
  for (unsigned v : done)
    ASSERT_EQ(v, 0u) << "per-token counters must be reset";
}

} // namespace
