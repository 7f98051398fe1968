// Seeded dummy weights (`v4c compile --weights dummy`): one generator for the
// host (CPU runtime, test checkpoints) and the device (the `v4_fill_dummy`
// entry of codegen/cuda/include/v4cuda/DummyFill.cuh).
//
// An artifact compiled with dummy weights stores no weight bytes; each weight
// carries a recipe (kind, scale, modulo) and the program a seed. Element `e`
// of weight `w` is a pure function of (seed, w, e, recipe), computed with
// integer arithmetic and one IEEE float multiply, and rounded to the weight's
// dtype with the bit-exact encoders below, so host and device produce the same
// bytes and a checkpoint written from these values compiles to the same model.
//
// Recipes (DummyKind), element value by kind:
//   Uniform:    scale * t / 2^23, t uniform in [-2^23, 2^23)  (float dtypes)
//   Constant:   scale                                         (float dtypes)
//   IntModulo:  (offset + e * step) mod modulo, step coprime with modulo, so any
//               `modulo` consecutive elements (a row of tid2eid) are distinct
//                                                             (I32, I64)
//   Bytes:      hash mod modulo (modulo in [1, 256]; 16 = an fp4 code)   (U8)
//   Exponent:   ue8m0 scale byte 127 + round(scale) + j, j uniform in
//               [-modulo, modulo] (modulo capped at 16), clamped to [1, 254] (U8)
// Float dtypes are F32, BF16, F16, F8E4M3 (rounded to nearest even; e4m3
// saturates at +-448 like __NV_SATFINITE).
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define V4_DUMMY_HD __host__ __device__ __forceinline__
#else
#define V4_DUMMY_HD inline
#endif

namespace v4rt {

enum class DummyKind : uint32_t { None = 0, Uniform = 1, Constant = 2, IntModulo = 3, Bytes = 4, Exponent = 5 };

// How one weight is filled; kind None = the weight's bytes are in the file.
struct DummyRecipe {
  DummyKind kind = DummyKind::None;
  float scale = 0.0f;
  int32_t modulo = 0;
};

// Dtype codes equal v4rt::DType (runtime/artifact/Program.h); repeated here so
// device code needs no other header.
enum : uint32_t { kDummyF32 = 0, kDummyBF16 = 1, kDummyF16 = 2, kDummyF8E4M3 = 3, kDummyI32 = 4, kDummyI64 = 5, kDummyU8 = 6 };

// splitmix64 of (seed, weight, element): independent streams per weight.
V4_DUMMY_HD uint64_t dummyHash(uint64_t seed, uint32_t weightIndex, uint64_t element) {
  uint64_t x = seed ^ (0x9E3779B97F4A7C15ull * (static_cast<uint64_t>(weightIndex) + 1));
  x += 0xD1B54A32D192ED03ull * (element + 1);
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  x ^= x >> 31;
  return x;
}

V4_DUMMY_HD uint32_t dummyFloatBits(float value) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(value);
#else
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
#endif
}

V4_DUMMY_HD float dummyBitsFloat(uint32_t bits) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(bits);
#else
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
#endif
}

// Float value of a Uniform / Constant element.
V4_DUMMY_HD float dummyFloat(uint64_t seed, uint32_t weightIndex, uint64_t element, DummyKind kind, float scale) {
  if (kind == DummyKind::Constant)
    return scale;
  // 24 random bits -> t in [-2^23, 2^23); t * 2^-23 is exact, so the only
  // rounding is the final multiply (identical on host and device).
  const int32_t t = static_cast<int32_t>(dummyHash(seed, weightIndex, element) >> 40) - (1 << 23);
  return scale * (static_cast<float>(t) * (1.0f / 8388608.0f));
}

V4_DUMMY_HD uint32_t dummyGcd(uint32_t a, uint32_t b) {
  while (b != 0) {
    const uint32_t r = a % b;
    a = b;
    b = r;
  }
  return a;
}

// Integer value of an IntModulo element, in [0, modulo).
V4_DUMMY_HD int64_t dummyInt(uint64_t seed, uint32_t weightIndex, uint64_t element, int32_t modulo) {
  if (modulo <= 1)
    return 0;
  const uint32_t m = static_cast<uint32_t>(modulo);
  const uint64_t base = dummyHash(seed, weightIndex, ~0ull); // one draw per weight
  const uint32_t offset = static_cast<uint32_t>(base % m);
  uint32_t step = 1 + static_cast<uint32_t>((base >> 32) % m);
  while (dummyGcd(step, m) != 1) // terminates: step reaches m + 1 at worst
    ++step;
  return static_cast<int64_t>((offset + (element % m) * step) % m);
}

// Byte value of a Bytes / Exponent element.
V4_DUMMY_HD uint8_t dummyByte(uint64_t seed, uint32_t weightIndex, uint64_t element, DummyKind kind, float scale,
                              int32_t modulo) {
  const uint64_t h = dummyHash(seed, weightIndex, element);
  if (kind == DummyKind::Bytes)
    return static_cast<uint8_t>(h % static_cast<uint64_t>(modulo >= 1 && modulo <= 256 ? modulo : 256));
  const int32_t span = modulo < 0 ? 0 : (modulo > 16 ? 16 : modulo);
  const int32_t center = 127 + static_cast<int32_t>(scale >= 0.0f ? scale + 0.5f : scale - 0.5f);
  int32_t e = center - span + static_cast<int32_t>(h % static_cast<uint64_t>(2 * span + 1));
  e = e < 1 ? 1 : (e > 254 ? 254 : e);
  return static_cast<uint8_t>(e);
}

// float -> bf16 bits, round to nearest even (= __float2bfloat16_rn). Also the
// compiler's f32 -> bf16 weight conversion (tools/v4c/WeightSource.cpp).
V4_DUMMY_HD uint16_t dummyToBf16(float value) {
  const uint32_t bits = dummyFloatBits(value);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u)
    return static_cast<uint16_t>((bits >> 16) | 0x40u); // quiet NaN
  return static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

// Rounds `sig >> shift` to nearest even (shift in [1, 63]).
V4_DUMMY_HD uint32_t dummyShiftRne(uint64_t sig, uint32_t shift) {
  if (shift >= 63)
    return 0;
  const uint64_t q = sig >> shift, rem = sig & ((1ull << shift) - 1), half = 1ull << (shift - 1);
  return static_cast<uint32_t>(q + ((rem > half || (rem == half && (q & 1))) ? 1 : 0));
}

// float -> IEEE half bits, round to nearest even (= __float2half_rn).
V4_DUMMY_HD uint16_t dummyToF16(float value) {
  const uint32_t bits = dummyFloatBits(value);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t absBits = bits & 0x7FFFFFFFu;
  if (absBits > 0x7F800000u)
    return static_cast<uint16_t>(sign | 0x7E00u);
  if (absBits >= 0x477FF000u) // >= 65520 rounds to infinity
    return static_cast<uint16_t>(sign | 0x7C00u);
  const int32_t exponent = static_cast<int32_t>(absBits >> 23) - 127;
  const uint64_t sig = (absBits & 0x7FFFFFu) | 0x800000u;
  if (absBits < 0x00800000u) // float subnormals are far below half's range
    return sign;
  if (exponent >= -14) // normal: 10 mantissa bits; a carry bumps the exponent
    return static_cast<uint16_t>(sign | (((static_cast<uint32_t>(exponent + 15) << 10) + dummyShiftRne(sig, 13) - 0x400u)));
  // subnormal: units of 2^-24
  return static_cast<uint16_t>(sign | dummyShiftRne(sig, static_cast<uint32_t>(-1 - exponent)));
}

// float -> e4m3 (FN) bits, round to nearest even, saturating at +-448.
V4_DUMMY_HD uint8_t dummyToE4m3(float value) {
  const uint32_t bits = dummyFloatBits(value);
  const uint8_t sign = static_cast<uint8_t>((bits >> 24) & 0x80u);
  const uint32_t absBits = bits & 0x7FFFFFFFu;
  if (absBits > 0x7F800000u)
    return static_cast<uint8_t>(sign | 0x7Fu);
  if (absBits > 0x43E00000u) // > 448
    return static_cast<uint8_t>(sign | 0x7Eu);
  if (absBits < 0x00800000u)
    return sign;
  const int32_t exponent = static_cast<int32_t>(absBits >> 23) - 127;
  const uint64_t sig = (absBits & 0x7FFFFFu) | 0x800000u;
  uint32_t code;
  if (exponent >= -6) // normal: 3 mantissa bits; a carry bumps the exponent
    code = (static_cast<uint32_t>(exponent + 7) << 3) + dummyShiftRne(sig, 20) - 0x8u;
  else // subnormal: units of 2^-9
    code = dummyShiftRne(sig, static_cast<uint32_t>(14 - exponent));
  return static_cast<uint8_t>(sign | (code > 0x7Eu ? 0x7Eu : code));
}

// Writes element `element` of a dummy weight into `dst` (the weight's base
// address, element type `dtype`). Returns false for a kind/dtype pair the
// generator does not define (the compiler never produces one).
V4_DUMMY_HD bool dummyStore(void *dst, uint64_t element, uint32_t dtype, uint64_t seed, uint32_t weightIndex,
                            DummyKind kind, float scale, int32_t modulo) {
  if (kind == DummyKind::Uniform || kind == DummyKind::Constant) {
    const float v = dummyFloat(seed, weightIndex, element, kind, scale);
    switch (dtype) {
    case kDummyF32: static_cast<float *>(dst)[element] = v; return true;
    case kDummyBF16: static_cast<uint16_t *>(dst)[element] = dummyToBf16(v); return true;
    case kDummyF16: static_cast<uint16_t *>(dst)[element] = dummyToF16(v); return true;
    case kDummyF8E4M3: static_cast<uint8_t *>(dst)[element] = dummyToE4m3(v); return true;
    default: return false;
    }
  }
  if (kind == DummyKind::IntModulo) {
    const int64_t v = dummyInt(seed, weightIndex, element, modulo);
    if (dtype == kDummyI32)
      static_cast<int32_t *>(dst)[element] = static_cast<int32_t>(v);
    else if (dtype == kDummyI64)
      static_cast<int64_t *>(dst)[element] = v;
    else
      return false;
    return true;
  }
  if ((kind == DummyKind::Bytes || kind == DummyKind::Exponent) && dtype == kDummyU8) {
    static_cast<uint8_t *>(dst)[element] = dummyByte(seed, weightIndex, element, kind, scale, modulo);
    return true;
  }
  return false;
}

// True when dummyStore defines (kind, dtype).
V4_DUMMY_HD bool dummyRecipeFits(DummyKind kind, uint32_t dtype) {
  switch (kind) {
  case DummyKind::Uniform:
  case DummyKind::Constant: return dtype <= kDummyF8E4M3;
  case DummyKind::IntModulo: return dtype == kDummyI32 || dtype == kDummyI64;
  case DummyKind::Bytes:
  case DummyKind::Exponent: return dtype == kDummyU8;
  default: return false;
  }
}

// Host fill of a whole weight (`count` elements); false as for dummyStore.
inline bool fillDummyHost(void *dst, uint64_t count, uint32_t dtype, uint64_t seed, uint32_t weightIndex,
                          const DummyRecipe &recipe) {
  if (!dummyRecipeFits(recipe.kind, dtype))
    return false;
  for (uint64_t e = 0; e < count; ++e)
    dummyStore(dst, e, dtype, seed, weightIndex, recipe.kind, recipe.scale, recipe.modulo);
  return true;
}

} // namespace v4rt

#undef V4_DUMMY_HD
