// Placement of weights in the artifact blob, and its verification.
//
// Kept apart from file I/O so the 64-bit offset arithmetic (files over 2 GiB
// and 4 GiB) is unit-testable on synthetic layouts without writing them.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/artifact/Program.h"

namespace v4rt::artifact {

// Rounds `value` up to a multiple of `alignment` (a power of two); throws
// v4c::Error when the result does not fit in 64 bits.
uint64_t alignUp(uint64_t value, uint64_t alignment);

// product(shape) * dtypeSize(dtype); throws v4c::Error on a negative
// dimension or 64-bit overflow.
uint64_t shapeByteSize(DType dtype, const std::vector<int64_t> &shape);

// Sets every weight's size from its shape (a nonzero size already set must
// agree) and gives it the next 4096-aligned offset at or after `blobOffset`,
// in table order. Returns the file size: the end of the last weight, or
// `blobOffset` when there are none.
uint64_t layoutWeights(std::vector<Weight> &weights, uint64_t blobOffset);

// Verifies a layout read from a file of `fileSize` bytes whose blob starts at
// `blobOffset`: each offset aligned and >= blobOffset, each range inside the
// file, no two ranges overlapping, each size == shapeByteSize. Throws
// v4c::Error naming the offending weight.
void checkWeightLayout(const std::vector<Weight> &weights, uint64_t blobOffset,
                       uint64_t fileSize);

} // namespace v4rt::artifact
