#include "runtime/kvcache/PageBytes.h"

#include <cstring>

namespace v4rt::kvcache {

PageBytes PageBytes::allocate(const std::shared_ptr<PayloadAllocator> &allocator, size_t size) {
  PageBytes bytes;
  void *block = allocator && size > 0 ? allocator->allocate(size) : nullptr;
  if (!block) {
    bytes.heap_.resize(size);
    return bytes;
  }
  // The deleter owns a reference: the allocator outlives every block it gave.
  std::shared_ptr<PayloadAllocator> owner = allocator;
  bytes.block_ = std::shared_ptr<uint8_t>(static_cast<uint8_t *>(block),
                                          [owner, size](uint8_t *p) { owner->release(p, size); });
  bytes.allocator_ = allocator.get();
  bytes.blockSize_ = size;
  return bytes;
}

void PageBytes::dropFront(size_t bytes) {
  if (block_) {
    blockOffset_ += bytes;
    blockSize_ -= bytes;
  } else {
    heap_.erase(heap_.begin(), heap_.begin() + static_cast<std::ptrdiff_t>(bytes));
  }
}

bool PageBytes::operator==(const PageBytes &other) const {
  return size() == other.size() && (size() == 0 || std::memcmp(data(), other.data(), size()) == 0);
}

} // namespace v4rt::kvcache
