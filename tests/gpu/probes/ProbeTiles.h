// The tile probes' inputs and the CPU reference's expectations
// (ProbeEmulated.cpp builds them with the host tests' harness,
// codegen/cuda/testing/KernelTestSupport.h, and runtime/cpu's kernels).
#pragma once

#include <cstdint>
#include <vector>

namespace v4probe {

struct TileProblem {
  int rows = 0, present = 0, cols = 0; // the output [rows, cols], rows >= present must stay unwritten
  std::vector<uint16_t> x, w;          // bf16 bits: x [kDenseT, kDenseK], w [kDenseN, kDenseK] (MoE: h, gate_up)
  std::vector<uint16_t> down;          // MoE: down [E, D, I] bf16 bits
  std::vector<float> routeWeights;     // MoE: [T, k]
  std::vector<int32_t> experts;        // MoE: [T, k]
  std::vector<uint8_t> codes, scales;  // fp8 tile: e4m3 weight codes and ue8m0 block scales
  std::vector<float> expected, scale;  // [present, cols]: the reference and sum |a * b| per output
  double relative = 1e-5;              // the host tests' bound: |got - expected| <= relative * max(1, scale)
};

// linear (bf16 x, bf16 w, f32 y): ref::linear.
TileProblem denseBf16Problem();
// linear_fp8 (bf16 x, e4m3 w in [128 x 128] blocks): ref::linearFp8.
TileProblem fp8Problem();
// moe (bf16 experts) through the wgmma grouped GEMM: ref::moe (MoeHostTestSupport.h's case data).
TileProblem moeProblem();

} // namespace v4probe
