// Device helpers shared by every v4c CUDA kernel template.
//
// Every kernel loads its operands as float and computes in fp32 (the CPU
// reference kernels' arithmetic), whatever the storage type (f32, bf16, e4m3),
// and rounds once when it stores.
#pragma once

#include <cstdint>
#include <type_traits>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

namespace v4cuda {

__device__ __forceinline__ float toFloat(float v) { return v; }
__device__ __forceinline__ float toFloat(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float toFloat(half v) { return __half2float(v); }
__device__ __forceinline__ float toFloat(__nv_fp8_e4m3 v) { return static_cast<float>(v); }

template <typename T> __device__ __forceinline__ T fromFloat(float v);
template <> __device__ __forceinline__ float fromFloat<float>(float v) { return v; }
template <> __device__ __forceinline__ __nv_bfloat16 fromFloat<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <> __device__ __forceinline__ half fromFloat<half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_fp8_e4m3 fromFloat<__nv_fp8_e4m3>(float v) { return __nv_fp8_e4m3(v); }

// Tokens present in this run (see codegen/cuda/KernelEmitter.h, "Entry ABI").
__device__ __forceinline__ int presentTokens(const int32_t *dyn) { return dyn[0]; }

// float or double (the norms and mHC reduce in double, as the reference does).
template <typename T> __device__ __forceinline__ T warpSum(T v) {
  for (int offset = 16; offset > 0; offset >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}
__device__ __forceinline__ float warpMax(float v) {
  for (int offset = 16; offset > 0; offset >>= 1)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// Sum over the whole block (blockDim.x a multiple of 32, <= 1024). `scratch`
// holds 32 values of shared memory; every thread gets the total.
template <typename T> __device__ __forceinline__ T blockSum(T v, T *scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warpSum(v);
  __syncthreads(); // scratch may still be read by a previous call
  if (lane == 0)
    scratch[warp] = v;
  __syncthreads();
  const int warps = (blockDim.x + 31) >> 5;
  v = lane < warps ? scratch[lane] : T(0);
  return warpSum(v);
}

// V consecutive elements in one 4-, 8- or 16-byte load when V * sizeof(T) is
// one of those sizes (the caller guarantees that alignment), else one by one.
template <int V, typename T> __device__ __forceinline__ void loadElements(const T *p, T (&out)[V]) {
  constexpr int kBytes = V * static_cast<int>(sizeof(T));
  if constexpr (kBytes == 16 || kBytes == 8 || kBytes == 4) {
    using Raw = std::conditional_t<kBytes == 16, uint4, std::conditional_t<kBytes == 8, uint2, uint32_t>>;
    const Raw raw = *reinterpret_cast<const Raw *>(p);
    const T *elems = reinterpret_cast<const T *>(&raw);
#pragma unroll
    for (int i = 0; i < V; ++i)
      out[i] = elems[i];
  } else {
#pragma unroll
    for (int i = 0; i < V; ++i)
      out[i] = p[i];
  }
}

} // namespace v4cuda
