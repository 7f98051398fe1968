// Kernels of the CUDA runtime's end-to-end test (CudaRuntimeTest.cpp): a toy
// model with the entry ABI of codegen/cuda/KernelEmitter.h (step ins, step
// outs, then dyn), a window ring, an entries cache and a dummy-filled bf16
// weight, small enough that the test recomputes every logit on the host.
// Built with -fmad=false so the host recomputation matches to rounding.
#include <cstdint>

#include <cuda_bf16.h>

#include "v4cuda/DummyFill.cuh"

namespace {
constexpr int kD = 16, kV = 32, kW = 8, kRate = 2; // equal CudaRuntimeTest.cpp's
} // namespace

// x[t] = table[ids[t]].   ins: ids, table   outs: x
extern "C" __global__ void test_embed(const int32_t *ids, const float *table, float *x, const int32_t *dyn) {
  const int t = blockIdx.x;
  if (t >= dyn[0])
    return;
  for (int c = threadIdx.x; c < kD; c += blockDim.x)
    x[t * kD + c] = table[ids[t] * kD + c];
}

// window[p % W] = x[t]; entries[p / rate] = x[t] when p % rate == rate - 1.
// ins: window, entries, x, positions   outs: window, entries (same slots)
extern "C" __global__ void test_append(const float *, const float *, const float *x, const int32_t *positions,
                                       float *window, float *entries, const int32_t *dyn) {
  if (threadIdx.x != 0 || blockIdx.x != 0)
    return;
  for (int t = 0; t < dyn[0]; ++t) {
    const int p = positions[t];
    for (int c = 0; c < kD; ++c)
      window[(p % kW) * kD + c] = x[t * kD + c];
    if (p % kRate == kRate - 1)
      for (int c = 0; c < kD; ++c)
        entries[(p / kRate) * kD + c] = x[t * kD + c];
  }
}

// logits[t, v] = p + sum over the ring of window . proj[v]
//                  + 0.5 * sum over visible entries (w < (p + 1) / rate) of entry . proj[v].
// ins: window, entries, positions, proj (bf16)   outs: logits
// Launched with 64 KiB of dynamic shared memory (over the 48 KiB default) to
// exercise the runtime's opt-in.
extern "C" __global__ void test_logits(const float *window, const float *entries, const int32_t *positions,
                                       const __nv_bfloat16 *proj, float *logits, const int32_t *dyn) {
  extern __shared__ float stage[];
  const int t = blockIdx.x;
  if (t >= dyn[0])
    return; // the whole block: before any barrier
  for (int i = threadIdx.x; i < kW * kD; i += blockDim.x)
    stage[i] = window[i];
  stage[16383] = 0.0f; // the last float of 64 KiB: fails without the opt-in
  __syncthreads();
  const int v = threadIdx.x;
  if (v >= kV)
    return;
  const int p = positions[t];
  float ring = 0.0f;
  for (int r = 0; r < kW; ++r)
    for (int c = 0; c < kD; ++c)
      ring += stage[r * kD + c] * __bfloat162float(proj[v * kD + c]);
  float compressed = 0.0f;
  for (int w = 0; w < (p + 1) / kRate; ++w)
    for (int c = 0; c < kD; ++c)
      compressed += entries[w * kD + c] * __bfloat162float(proj[v * kD + c]);
  logits[t * kV + v] = static_cast<float>(p) + ring + 0.5f * compressed;
}
