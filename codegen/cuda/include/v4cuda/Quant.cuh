// v4.linear_fp8 (docs/quantization.md): e4m3 weights with one ue8m0 scale per
// [BR, BC] block, activations quantized at run time to e4m3 per 1 x BC group
// with a ue8m0 scale, products and sums in fp32. This is ref::linearFp8
// exactly: both operands are dequantized (power-of-two scales make that exact)
// and multiplied in fp32, on the matmul core of DenseLinear.cuh; or, on the
// wgmma path with 128-wide groups, the codes multiplied by e4m3 wgmma and each
// group's sum scaled (DenseWgmmaFp8.cuh), equal up to the order of additions.
#pragma once

#include <cstring>

#include <v4cuda/DenseLinear.cuh>

namespace v4cuda {

constexpr float kE4M3Max = 448.0f;

// The scalar functions below are also host code: DenseEmittersTest compiles
// them with nvcc for the host and checks them against runtime/cpu/Quantization.

__host__ __device__ __forceinline__ float floatFromBits(uint32_t bits) {
#ifdef __CUDA_ARCH__
  return __uint_as_float(bits);
#else
  float value;
  memcpy(&value, &bits, sizeof value);
  return value;
#endif
}

// The value of a ue8m0 byte, 2^(b - 127) (0xFF is the format's NaN), built
// from its bits: exact and cheap.
__host__ __device__ __forceinline__ float ue8m0Value(uint32_t b) {
  if (b == 0u)
    return floatFromBits(0x00400000u); // 2^-127, a subnormal
  if (b == 255u)
    return floatFromBits(0x7fc00000u);
  return floatFromBits(b << 23);
}

// quant::chooseUe8m0(amax, 448): the byte of the smallest power of two s with
// amax / s <= 448 (exponent clamped to [-127, 127]); amax 0 / non-finite -> s = 1.
__host__ __device__ __forceinline__ uint32_t chooseUe8m0(float amax) {
  if (!(amax > 0.0f) || isinf(amax))
    return 127u;
  int exponent = 0;
  frexpf(amax / kE4M3Max, &exponent);
  while (exponent > -127 && ldexpf(kE4M3Max, exponent - 1) >= amax)
    --exponent;
  while (ldexpf(kE4M3Max, exponent) < amax)
    ++exponent;
  exponent = exponent < -127 ? -127 : (exponent > 127 ? 127 : exponent);
  return static_cast<uint32_t>(exponent + 127);
}

// x -> e4m3 (round to nearest even, saturating at +-448, NaN stays NaN) -> float:
// quant::encodeE4M3 then the decode table.
__host__ __device__ __forceinline__ float e4m3RoundTrip(float x) { return static_cast<float>(__nv_fp8_e4m3(x)); }

// The e4m3 code of one activation element of a group with ue8m0 byte b:
// e4m3(x / s) (x / s == x * 2^(127 - b) exactly, and 2^(127 - b) is the byte
// 254 - b). The native e4m3 wgmma tile multiplies these codes.
__host__ __device__ __forceinline__ __nv_fp8_e4m3 activationCode(float x, uint32_t b) {
  return __nv_fp8_e4m3(x * ue8m0Value(254u - b));
}

// The element quantized: e4m3(x / s) * s.
__host__ __device__ __forceinline__ float quantizeActivation(float x, uint32_t b) {
  return static_cast<float>(activationCode(x, b)) * ue8m0Value(b);
}

// Activations quantized per (row, group of GROUP channels); the table holds
// each group's ue8m0 byte.
template <typename TX, int K, int GROUP> struct QuantRows {
  static constexpr int kGroups = (K + GROUP - 1) / GROUP;
  static constexpr bool kAligned = rowsAligned16<TX>(K, 0);
  static constexpr int kTableBytesPerRow = kGroups;
  static constexpr bool kMmaOk = true; // e4m3 value x 2^e: 4 significant bits
  const TX *x;
  const unsigned char *scales = nullptr; // [rows][kGroups] in shared memory
  int row0 = 0;

  __device__ void prologue(int firstRow, int rows, unsigned char *table, int present) {
    const int lane = threadIdx.x & 31, warps = blockDim.x >> 5;
    for (int pair = threadIdx.x >> 5; pair < rows * kGroups; pair += warps) {
      const int r = pair / kGroups, g = pair % kGroups, t = firstRow + r;
      float amax = 0.0f;
      if (t < present) {
        const TX *row = x + static_cast<int64_t>(t) * K;
        const int end = min(K, (g + 1) * GROUP);
        for (int k = g * GROUP + lane; k < end; k += 32)
          amax = fmaxf(amax, fabsf(toFloat(row[k]))); // fmaxf ignores NaN, as std::max does there
      }
      amax = warpMax(amax);
      if (lane == 0)
        table[pair] = static_cast<unsigned char>(chooseUe8m0(amax));
    }
    __syncthreads();
    scales = table;
    row0 = firstRow;
  }
  __device__ float quantized(float v, int t, int k) const {
    return quantizeActivation(v, scales[(t - row0) * kGroups + k / GROUP]);
  }
  __device__ float at(int t, int k) const { return quantized(toFloat(x[static_cast<int64_t>(t) * K + k]), t, k); }
  template <int V> __device__ void run(int t, int k, float (&out)[V]) const {
    loadFloats<V, kAligned>(x + static_cast<int64_t>(t) * K + k, out);
#pragma unroll
    for (int i = 0; i < V; ++i)
      out[i] = quantized(out[i], t, k + i);
  }

  // The native e4m3 tile (DenseWgmmaFp8.cuh): codes and group scales apart.
  static constexpr int kE4m3Group = GROUP;
  __device__ unsigned char codeAt(int t, int k) const {
    return activationCode(toFloat(x[static_cast<int64_t>(t) * K + k]), scales[(t - row0) * kGroups + k / GROUP]).__x;
  }
  // Codes of k .. k + 15 (one group: GROUP % 16 == 0, k % 16 == 0), packed.
  __device__ uint4 codes16(int t, int k) const {
    float v[16];
    loadFloats<16, kAligned>(x + static_cast<int64_t>(t) * K + k, v);
    const uint32_t b = scales[(t - row0) * kGroups + k / GROUP];
    __align__(16) __nv_fp8_e4m3 codes[16];
#pragma unroll
    for (int i = 0; i < 16; ++i)
      codes[i] = activationCode(v[i], b);
    return *reinterpret_cast<const uint4 *>(codes);
  }
  __device__ float groupScale(int t, int g) const { return ue8m0Value(scales[(t - row0) * kGroups + g]); }
};

// e4m3 codes [N, K] with scales [ceil(N/BR), ceil(K/BC)] (row-major bytes).
template <int K, int BR, int BC> struct Fp8Weights {
  static constexpr int kScaleCols = (K + BC - 1) / BC;
  static constexpr bool kAligned = K % 16 == 0;
  // 16 codes per load when they share one scale block.
  static constexpr int kVector = kAligned && BC % 16 == 0 ? 16 : 1;
  static constexpr bool kMmaOk = true;
  // run<V> may load V codes at once: rows V-aligned, k chunks in one scale block.
  template <int V> static constexpr bool kChunked = (V == 8 || V == 16) && K % V == 0 && BC % V == 0;
  const __nv_fp8_e4m3 *codes;
  const uint8_t *scales;
  __device__ float scale(int n, int k) const { return ue8m0Value(__ldg(scales + (n / BR) * kScaleCols + k / BC)); }
  __device__ float at(int n, int k) const {
    return static_cast<float>(codes[static_cast<int64_t>(n) * K + k]) * scale(n, k);
  }
  // The native e4m3 tile (DenseWgmmaFp8.cuh): the codes as stored, block scales apart.
  static constexpr int kE4m3Group = BC, kE4m3BlockRows = BR;
  // Rows 16-byte aligned: that tile copies the codes with cp.async from sourceCodes(n).
  static constexpr bool kCpAsyncCodesOk = kAligned;
  __device__ const __nv_fp8_e4m3 *sourceCodes(int n) const { return codes + static_cast<int64_t>(n) * K; }
  __device__ unsigned char codeAt(int n, int k) const { return codes[static_cast<int64_t>(n) * K + k].__x; }
  // Codes k .. k + 15 of row n (k % 16 == 0), packed: one 16-byte load when
  // the rows are 16-byte aligned.
  __device__ uint4 codes16(int n, int k) const {
    const __nv_fp8_e4m3 *row = codes + static_cast<int64_t>(n) * K + k;
    if constexpr (kAligned) {
      return __ldg(reinterpret_cast<const uint4 *>(row));
    } else {
      __align__(16) unsigned char packed[16];
#pragma unroll
      for (int i = 0; i < 16; ++i)
        packed[i] = row[i].__x;
      return *reinterpret_cast<const uint4 *>(packed);
    }
  }
  __device__ float blockScale(int n, int g) const { return ue8m0Value(__ldg(scales + (n / BR) * kScaleCols + g)); }

  template <int V> __device__ void run(int n, int k, float (&out)[V]) const {
    if constexpr (kChunked<V>) {
      const float s = scale(n, k);
      using Chunk = typename std::conditional<V == 16, uint4, uint2>::type;
      const Chunk raw = __ldg(reinterpret_cast<const Chunk *>(codes + static_cast<int64_t>(n) * K + k));
      const __nv_fp8_e4m3 *elems = reinterpret_cast<const __nv_fp8_e4m3 *>(&raw);
#pragma unroll
      for (int i = 0; i < V; ++i)
        out[i] = static_cast<float>(elems[i]) * s;
    } else {
#pragma unroll
      for (int i = 0; i < V; ++i)
        out[i] = at(n, k + i);
    }
  }
};

// v4.linear_fp8 x [T, K], w [N, K] e4m3, scale u8 -> y [T, N]; the
// activation group is the weight block's column count (ref::linearFp8).
template <typename TX, typename TY, int T_MAX, int K, int N, int BR, int BC, int KSPLIT>
__device__ __forceinline__ void linearFp8Gemv(const TX *x, const __nv_fp8_e4m3 *w, const uint8_t *scales, TY *y,
                                              const int32_t *dyn) {
  matmulGemv<T_MAX, K, N, KSPLIT>(QuantRows<TX, K, BC>{x}, Fp8Weights<K, BR, BC>{w, scales}, StoreRows<TY, N, N>{y},
                          blockIdx.x, dyn);
}
template <typename TX, typename TY, int K, int N, int BR, int BC, int BM, int BN, int MMA>
__device__ __forceinline__ void linearFp8Gemm(const TX *x, const __nv_fp8_e4m3 *w, const uint8_t *scales, TY *y,
                                              const int32_t *dyn) {
  matmulGemm<K, N, BM, BN, MMA>(QuantRows<TX, K, BC>{x}, Fp8Weights<K, BR, BC>{w, scales}, StoreRows<TY, N, N>{y},
                           blockIdx.x, dyn);
}

} // namespace v4cuda
