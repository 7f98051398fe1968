// A page's payload bytes and where they live: the heap (a std::vector,
// adopted without a copy) or a block of a PayloadAllocator, e.g. page-locked
// host memory on the CUDA backend (runtime/cuda/PinnedPayloadAllocator.h), so
// device <-> host copies of a page go straight to and from its payload.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace v4rt::kvcache {

// Where page payloads are allocated. Thread-safe. Blocks hold the allocator
// alive (shared_ptr), so a page may outlive the tier that made it.
class PayloadAllocator {
public:
  virtual ~PayloadAllocator() = default;
  // `bytes` (> 0) uninitialised bytes, or null when none can be had: the
  // caller then keeps the payload on the heap and counts it (pinFailures).
  virtual void *allocate(size_t bytes) = 0;
  virtual void release(void *block, size_t bytes) noexcept = 0;
  // True when blocks are page-locked (what the stats report as "pinned").
  virtual bool pinned() const = 0;
};

class PageBytes {
public:
  using value_type = uint8_t;
  using iterator = uint8_t *;
  using const_iterator = const uint8_t *;

  PageBytes() = default;
  // Adopts heap bytes (implicit: `page.payload = encode(...)` moves, never copies).
  PageBytes(std::vector<uint8_t> bytes) noexcept : heap_(std::move(bytes)) {}
  // `size` uninitialised bytes from `allocator`; on the heap (zeroed) when the
  // allocator is null or has none left (see placedIn()).
  static PageBytes allocate(const std::shared_ptr<PayloadAllocator> &allocator, size_t size);

  // Copies land on the heap: a copy is a private, mutable payload.
  PageBytes(const PageBytes &other) : heap_(other.begin(), other.end()) {}
  PageBytes &operator=(const PageBytes &other) {
    if (this != &other)
      *this = PageBytes(other);
    return *this;
  }
  PageBytes(PageBytes &&) noexcept = default;
  PageBytes &operator=(PageBytes &&) noexcept = default;

  uint8_t *data() { return block_ ? block_.get() + blockOffset_ : heap_.data(); }
  const uint8_t *data() const { return block_ ? block_.get() + blockOffset_ : heap_.data(); }
  size_t size() const { return block_ ? blockSize_ : heap_.size(); }
  bool empty() const { return size() == 0; }
  uint8_t *begin() { return data(); }
  uint8_t *end() { return data() + size(); }
  const uint8_t *begin() const { return data(); }
  const uint8_t *end() const { return data() + size(); }
  uint8_t &operator[](size_t i) { return data()[i]; }
  uint8_t operator[](size_t i) const { return data()[i]; }

  // Drops the first `bytes` (<= size()): a block keeps its memory and moves
  // its start (a page file read into a block sheds its header so).
  void dropFront(size_t bytes);

  // The allocator whose block holds the bytes; null: the heap.
  const PayloadAllocator *placedIn() const { return block_ ? allocator_ : nullptr; }
  bool pinned() const { return block_ && allocator_->pinned(); }

  bool operator==(const PageBytes &other) const;
  bool operator!=(const PageBytes &other) const { return !(*this == other); }

private:
  std::vector<uint8_t> heap_;
  std::shared_ptr<uint8_t> block_; // released through allocator_ by its deleter
  const PayloadAllocator *allocator_ = nullptr;
  size_t blockOffset_ = 0, blockSize_ = 0; // the bytes: [offset, offset + size) of the block
};

// Read-only bytes of a payload, from a PageBytes or a std::vector (the
// page payload codec reads both).
class ByteView {
public:
  ByteView(const std::vector<uint8_t> &bytes) : data_(bytes.data()), size_(bytes.size()) {}
  ByteView(const PageBytes &bytes) : data_(bytes.data()), size_(bytes.size()) {}
  ByteView(const uint8_t *data, size_t size) : data_(data), size_(size) {}
  const uint8_t *data() const { return data_; }
  size_t size() const { return size_; }
  uint8_t operator[](size_t i) const { return data_[i]; }

private:
  const uint8_t *data_;
  size_t size_;
};

} // namespace v4rt::kvcache
