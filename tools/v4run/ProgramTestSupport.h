// Building blocks of the hand-made programs in v4run's unit tests
// (DecodeTrafficTest.cpp, StepWorkTest.cpp): argument references and
// weights with their byte sizes.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/artifact/Program.h"

namespace v4run::test {

using v4rt::ArgKind;
using v4rt::ArgRef;
using v4rt::DType;

inline v4rt::ArgRef weight(uint32_t index) {
  return v4rt::ArgRef{v4rt::ArgKind::Weight, index, 0, v4rt::DType::F32, {}};
}
inline v4rt::ArgRef cache(uint32_t index, v4rt::DType dtype = v4rt::DType::F32) {
  return v4rt::ArgRef{v4rt::ArgKind::Cache, index, 0, dtype, {}};
}
inline v4rt::ArgRef arena(v4rt::DType dtype, std::vector<int64_t> shape) {
  return v4rt::ArgRef{v4rt::ArgKind::Arena, 0, 0, dtype, shape};
}

// A weight of `shape`; its size is bytesPerElement (default: the dtype's) per element.
inline v4rt::Weight makeWeight(const char *name, std::vector<int64_t> shape, v4rt::DType dtype,
                               uint64_t bytesPerElement = 0) {
  v4rt::Weight w;
  w.name = name;
  w.dtype = dtype;
  w.shape = shape;
  w.size = bytesPerElement ? bytesPerElement : v4rt::dtypeSize(dtype);
  for (int64_t d : shape)
    w.size *= static_cast<uint64_t>(d);
  return w;
}

} // namespace v4run::test
