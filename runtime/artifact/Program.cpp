#include "runtime/artifact/Program.h"

#include <algorithm>

#include "common/Error.h"

namespace v4rt {

size_t dtypeSize(DType dtype) {
  switch (dtype) {
  case DType::F32: return 4;
  case DType::BF16: return 2;
  case DType::F16: return 2;
  case DType::F8E4M3: return 1;
  case DType::I32: return 4;
  case DType::I64: return 8;
  case DType::U8: return 1;
  }
  throw v4c::Error("unknown dtype code " + std::to_string(static_cast<int>(dtype)));
}

const char *dtypeName(DType dtype) {
  switch (dtype) {
  case DType::F32: return "f32";
  case DType::BF16: return "bf16";
  case DType::F16: return "f16";
  case DType::F8E4M3: return "f8e4m3";
  case DType::I32: return "i32";
  case DType::I64: return "i64";
  case DType::U8: return "u8";
  }
  return "unknown";
}

uint64_t ArgRef::byteSize() const {
  uint64_t bytes = dtypeSize(dtype);
  for (int64_t dim : shape) {
    v4c::check(dim >= 0, "negative dimension " + std::to_string(dim) + " in a shape");
    v4c::check(!__builtin_mul_overflow(bytes, static_cast<uint64_t>(dim), &bytes),
               "shape is too large: its byte size overflows 64 bits");
  }
  return bytes;
}

std::vector<int64_t> decodeBatchSizes(const Program &program) {
  std::vector<int64_t> sizes;
  for (const Bucket &bucket : program.buckets)
    if (bucket.kind == BucketKind::Decode)
      sizes.push_back(bucket.batch);
  std::sort(sizes.begin(), sizes.end());
  sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
  return sizes;
}

} // namespace v4rt
