#include "runtime/artifact/WeightLayout.h"

#include <algorithm>
#include <string>

#include "common/Error.h"
#include "runtime/artifact/ArtifactFormat.h"

namespace v4rt::artifact {
namespace {

std::string quoted(const std::string &name) { return "\"" + name + "\""; }

} // namespace

uint64_t alignUp(uint64_t value, uint64_t alignment) {
  uint64_t padded = 0;
  if (__builtin_add_overflow(value, alignment - 1, &padded))
    throw v4c::Error("offset " + std::to_string(value) + " cannot be aligned: it overflows 64 bits");
  return padded & ~(alignment - 1);
}

uint64_t shapeByteSize(DType dtype, const std::vector<int64_t> &shape) {
  ArgRef ref;
  ref.dtype = dtype;
  ref.shape = shape;
  return ref.byteSize();
}

uint64_t layoutWeights(std::vector<Weight> &weights, uint64_t blobOffset) {
  uint64_t cursor = alignUp(blobOffset, kWeightAlignment);
  uint64_t end = cursor;
  for (Weight &weight : weights) {
    if (weight.name.empty())
      throw v4c::Error("a weight has an empty name");
    uint64_t bytes = 0;
    try {
      bytes = shapeByteSize(weight.dtype, weight.shape);
    } catch (const v4c::Error &error) {
      throw v4c::Error("weight " + quoted(weight.name) + ": " + error.what());
    }
    if (weight.size != 0 && weight.size != bytes)
      throw v4c::Error("weight " + quoted(weight.name) + " has size " + std::to_string(weight.size) +
                   " but its shape and dtype need " + std::to_string(bytes) + " bytes");
    weight.size = bytes;
    if (weight.isDummy()) { // generated at load time: no bytes in the blob
      if (!dummyRecipeFits(weight.dummy.kind, static_cast<uint32_t>(weight.dtype)))
        throw v4c::Error("weight " + quoted(weight.name) + ": dummy recipe kind " +
                         std::to_string(static_cast<uint32_t>(weight.dummy.kind)) + " cannot fill dtype " +
                         dtypeName(weight.dtype));
      weight.offset = 0;
      continue;
    }
    weight.offset = alignUp(cursor, kWeightAlignment);
    if (__builtin_add_overflow(weight.offset, bytes, &end))
      throw v4c::Error("weight " + quoted(weight.name) + " ends past 2^64 bytes");
    cursor = end;
  }
  return end;
}

void checkWeightLayout(const std::vector<Weight> &weights, uint64_t blobOffset,
                       uint64_t fileSize) {
  std::vector<size_t> byOffset;
  byOffset.reserve(weights.size());
  for (size_t i = 0; i < weights.size(); ++i) {
    const Weight &weight = weights[i];
    const std::string name = "weight " + quoted(weight.name);
    uint64_t expected = 0;
    try {
      expected = shapeByteSize(weight.dtype, weight.shape);
    } catch (const v4c::Error &error) {
      throw v4c::Error(name + ": " + error.what());
    }
    if (weight.size != expected)
      throw v4c::Error(name + " has size " + std::to_string(weight.size) + " but its shape and dtype need " +
                   std::to_string(expected) + " bytes");
    if (weight.isDummy()) {
      if (weight.offset != 0)
        throw v4c::Error(name + " is a dummy weight (generated at load) but has file offset " +
                         std::to_string(weight.offset) + " instead of 0");
      if (!dummyRecipeFits(weight.dummy.kind, static_cast<uint32_t>(weight.dtype)))
        throw v4c::Error(name + ": dummy recipe kind " + std::to_string(static_cast<uint32_t>(weight.dummy.kind)) +
                         " cannot fill dtype " + dtypeName(weight.dtype));
      continue;
    }
    if (weight.offset % kWeightAlignment != 0)
      throw v4c::Error(name + " offset " + std::to_string(weight.offset) + " is not 4096-aligned");
    if (weight.offset < blobOffset)
      throw v4c::Error(name + " offset " + std::to_string(weight.offset) +
                                                " lies before the weight blob at " +
                                                std::to_string(blobOffset));
    // offset <= fileSize first, so fileSize - offset cannot wrap.
    if (weight.offset > fileSize || weight.size > fileSize - weight.offset)
      throw v4c::Error(name + " bytes [" + std::to_string(weight.offset) + ", +" +
                   std::to_string(weight.size) + ") lie outside the file of " +
                   std::to_string(fileSize) + " bytes");
    byOffset.push_back(i);
  }
  // Empty weights occupy no bytes, so ties sort them first and they never overlap.
  std::sort(byOffset.begin(), byOffset.end(), [&](size_t a, size_t b) {
    if (weights[a].offset != weights[b].offset)
      return weights[a].offset < weights[b].offset;
    return weights[a].size < weights[b].size;
  });
  uint64_t coveredEnd = 0;
  const Weight *coveredBy = nullptr;
  for (size_t index : byOffset) {
    const Weight &current = weights[index];
    if (current.size == 0)
      continue;
    if (coveredBy != nullptr && current.offset < coveredEnd)
      throw v4c::Error("weight " + quoted(current.name) + " overlaps weight " +
                       quoted(coveredBy->name));
    // Every range is inside the file, so offset + size cannot wrap.
    coveredEnd = current.offset + current.size;
    coveredBy = &current;
  }
}

} // namespace v4rt::artifact
