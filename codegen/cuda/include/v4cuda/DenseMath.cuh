// Scalar math and reductions of the dense kernel family (Dense, HyperConnection,
// Router, Quant). Each scalar function mirrors runtime/cpu/VectorMath.h so the
// GPU computes the CPU reference's expressions (accurate expf/log1pf/sqrt: the
// generated code is never compiled with --use_fast_math).
#pragma once

#include <cstdint>

#include <v4cuda/Common.cuh>

namespace v4cuda {

// Rows to process: dyn[0], never more than the bucket's static T_MAX rows
// (grid-stride kernels would otherwise run past their buffers on a bad count).
template <int T_MAX> __device__ __forceinline__ int presentRows(const int32_t *dyn) {
  return min(presentTokens(dyn), T_MAX);
}

__device__ __forceinline__ float sigmoidRef(float x) { return 1.0f / (1.0f + expf(-x)); }
__device__ __forceinline__ float siluRef(float x) { return x / (1.0f + expf(-x)); }
// torch softplus with beta 1, threshold 20.
__device__ __forceinline__ float softplusRef(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
// silu(min(g, L)) * clamp(u, -L, L) (ref::swiglu).
__device__ __forceinline__ float swigluRef(float gate, float up, float limit) {
  return siluRef(fminf(gate, limit)) * fminf(fmaxf(up, -limit), limit);
}

// 1 / sqrt(mean + eps) from a sum of squares accumulated in double, exactly
// ref::inverseRms's final expression.
__device__ __forceinline__ float inverseRmsFromSum(double sumSquares, int count, double eps) {
  return static_cast<float>(1.0 / sqrt(sumSquares / static_cast<double>(count) + eps));
}

// Elements of T in one 16-byte load.
template <typename T> constexpr int kElemsPer16 = static_cast<int>(16 / sizeof(T));

// True when rows of `rowElems` elements starting `offsetElems` into a 16-byte
// aligned buffer can be read with 16-byte loads.
template <typename T> __host__ __device__ constexpr bool rowsAligned16(long long rowElems, long long offsetElems) {
  return 16 % sizeof(T) == 0 && (rowElems * sizeof(T)) % 16 == 0 && (offsetElems * sizeof(T)) % 16 == 0;
}

// Loads V consecutive elements as floats: with 16-byte loads when the caller
// vouches for alignment (kAligned) and V fills whole 16-byte chunks, else
// element by element. kReadOnly: through the read-only cache (__ldg), only
// for memory no thread writes during the kernel.
template <int V, bool kAligned, bool kReadOnly = true, typename T>
__device__ __forceinline__ void loadFloats(const T *p, float (&out)[V]) {
  if constexpr (kAligned && (V * sizeof(T)) % 16 == 0) {
    constexpr int kPer = kElemsPer16<T>;
#pragma unroll
    for (int c = 0; c < V / kPer; ++c) {
      const uint4 *chunk = reinterpret_cast<const uint4 *>(p + c * kPer);
      const uint4 raw = kReadOnly ? __ldg(chunk) : *chunk;
      const T *elems = reinterpret_cast<const T *>(&raw);
#pragma unroll
      for (int i = 0; i < kPer; ++i)
        out[c * kPer + i] = toFloat(elems[i]);
    }
  } else {
#pragma unroll
    for (int i = 0; i < V; ++i)
      out[i] = toFloat(p[i]);
  }
}

// The kernel's dynamic shared memory (LaunchDims::sharedBytes), one name for
// the whole dense family.
__device__ __forceinline__ unsigned char *denseSharedMemory() {
  extern __shared__ __align__(128) unsigned char v4cudaDenseShared[];
  return v4cudaDenseShared;
}

} // namespace v4cuda
