// Device fill of one dummy weight (`v4c compile --weights dummy`).
//
// Always part of a CUDA artifact's module. The runtime launches it once per
// weight whose recipe kind is not None, after allocating the weight's device
// copy; the values equal the host generator's (runtime/DummyWeights.h), which
// is the one definition. ABI (see also codegen/cuda/KernelEmitter.h):
//   v4_fill_dummy(dst, count, dtype, seed, weight_index, recipe_kind, scale, modulo)
//   dst: device address of the weight; count: its element count;
//   dtype: v4rt::DType code; seed: Program::dummySeed; weight_index: index in
//   Program::weights; recipe_kind/scale/modulo: the Weight's dummy recipe.
//   Grid-stride loop: any grid works; v4DummyFillBlock threads per block and
//   ceil(count / v4DummyFillBlock) blocks capped at 65535 is the intent.
#pragma once

#include <cstdint>

#include "runtime/DummyWeights.h"

namespace v4cuda {
constexpr unsigned v4DummyFillBlock = 256;
} // namespace v4cuda

extern "C" __global__ void v4_fill_dummy(void *dst, uint64_t count, uint32_t dtype, uint64_t seed,
                                         uint32_t weight_index, uint32_t recipe_kind, float scale, int32_t modulo) {
  const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  for (uint64_t e = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < count; e += stride)
    v4rt::dummyStore(dst, e, dtype, seed, weight_index, static_cast<v4rt::DummyKind>(recipe_kind), scale, modulo);
}
