#include "runtime/PagePayload.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "common/Error.h"
#include "runtime/cpu/CacheStorage.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "page payloads are written as host bytes: little-endian hosts only");

namespace v4rt {
namespace {

constexpr size_t kHeaderBytes = 48;
constexpr size_t kDescriptorBytes = 32;

bool isFixed(const CacheSlot &slot) { return slot.kind != CacheKind::Entries; }

int64_t pageRows(const CacheSlot &slot, int64_t pageTokens) {
  return isFixed(slot) ? slot.rows : pageTokens / slot.rate;
}

// Bytes of one stored row of the slot: its rows are written in the slot's
// format (bf16, fp8 codes + scales + bf16 rope), not as the f32 they are held in.
size_t rowBytes(const CacheSlot &slot) { return cacheRowBytes(cacheRowFormat(slot), slot.width); }

// Little-endian fields written one after another from `out`.
class Writer {
public:
  explicit Writer(uint8_t *out) : out_(out) {}
  template <typename T> void put(T value) { raw(&value, sizeof(T)); }
  void raw(const void *data, size_t size) {
    std::memcpy(out_, data, size);
    out_ += size;
  }

private:
  uint8_t *out_;
};

template <typename T> T readAt(kvcache::ByteView bytes, size_t offset) {
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof(T));
  return value;
}

// Offset of slot `index`'s section in a payload of this schema (fixed-size
// slots have none without the snapshot).
size_t sectionOffset(const std::vector<CacheSlot> &slots, size_t index, int64_t pageTokens,
                     bool withSnapshot) {
  size_t offset = kHeaderBytes + kDescriptorBytes * slots.size();
  for (size_t s = 0; s < index; ++s)
    if (withSnapshot || !isFixed(slots[s]))
      offset += rowBytes(slots[s]) * pageRows(slots[s], pageTokens);
  return offset;
}

} // namespace

int64_t pageTokensFor(const std::vector<CacheSlot> &slots) {
  int64_t rateLcm = 0, widestWindow = 0;
  for (const CacheSlot &slot : slots) {
    if (slot.kind == CacheKind::Entries) {
      v4c::check(slot.rate > 0, "cache slot " + slot.name + " has rate " + std::to_string(slot.rate));
      rateLcm = rateLcm == 0 ? slot.rate : std::lcm(rateLcm, slot.rate);
    } else if (slot.kind == CacheKind::Window) {
      widestWindow = std::max(widestWindow, slot.rows);
    }
  }
  if (rateLcm > 0)
    return rateLcm;
  return std::max<int64_t>(16, (widestWindow + 15) / 16 * 16);
}

int64_t windowRebuildTokens(const std::vector<CacheSlot> &slots) {
  int64_t windows = 0, widestRate = 0;
  for (const CacheSlot &slot : slots) {
    if (slot.kind == CacheKind::Window)
      windows += slot.rows;
    else if (slot.kind == CacheKind::Entries)
      widestRate = std::max(widestRate, slot.rate);
  }
  return windows + widestRate;
}

size_t pagePayloadSize(const std::vector<CacheSlot> &slots, int64_t pageTokens,
                       bool withSnapshot) {
  return sectionOffset(slots, slots.size(), pageTokens, withSnapshot);
}

size_t pageSectionBytes(const CacheSlot &slot, int64_t pageTokens) {
  return rowBytes(slot) * static_cast<size_t>(pageRows(slot, pageTokens));
}

size_t pageSectionOffset(const std::vector<CacheSlot> &slots, size_t slot, int64_t pageTokens,
                         bool withSnapshot) {
  return sectionOffset(slots, slot, pageTokens, withSnapshot);
}

void writePagePayloadHeader(const std::vector<CacheSlot> &slots, int64_t pageIndex, int64_t pageTokens,
                            SwaCacheStrategy strategy, uint8_t *out) {
  const bool withSnapshot = strategy.keepsSnapshotAt((pageIndex + 1) * pageTokens);
  Writer header(out);
  header.raw(kPagePayloadMagic, 4);
  header.put<uint32_t>(kPagePayloadVersion);
  header.put<uint32_t>(static_cast<uint32_t>(strategy.kind));
  header.put<uint32_t>(static_cast<uint32_t>(slots.size()));
  header.put<int64_t>(pageTokens);
  header.put<int64_t>(pageIndex);
  header.put<int64_t>(strategy.kind == SwaCacheKind::Periodic ? strategy.period : 0);
  header.put<uint32_t>(withSnapshot ? 1 : 0);
  header.put<uint32_t>(0);
  for (const CacheSlot &slot : slots) {
    header.put<uint8_t>(static_cast<uint8_t>(slot.kind));
    header.put<uint8_t>(static_cast<uint8_t>(slot.dtype));
    header.put<uint16_t>(static_cast<uint16_t>(slot.ropeWidth));
    header.put<int32_t>(slot.layer);
    header.put<int64_t>(slot.rows);
    header.put<int64_t>(slot.width);
    header.put<int64_t>(slot.rate);
  }
}

std::vector<uint8_t> encodePagePayloadSections(const std::vector<CacheSlot> &slots,
                                               const std::vector<const uint8_t *> &sections,
                                               int64_t pageIndex, int64_t pageTokens,
                                               SwaCacheStrategy strategy) {
  v4c::check(sections.size() == slots.size(), "page payload: sections do not match the schema");
  const bool withSnapshot = strategy.keepsSnapshotAt((pageIndex + 1) * pageTokens);
  // Header, then the sections appended in slot order (no zero fill first).
  std::vector<uint8_t> payload;
  payload.reserve(pagePayloadSize(slots, pageTokens, withSnapshot));
  payload.resize(sectionOffset(slots, 0, pageTokens, withSnapshot));
  writePagePayloadHeader(slots, pageIndex, pageTokens, strategy, payload.data());
  for (size_t s = 0; s < slots.size(); ++s) {
    if (isFixed(slots[s]) && !withSnapshot)
      continue;
    v4c::check(sections[s] != nullptr, "page payload: no rows given for cache " + slots[s].name);
    payload.insert(payload.end(), sections[s], sections[s] + pageSectionBytes(slots[s], pageTokens));
  }
  return payload;
}

std::vector<uint8_t> encodePagePayload(const std::vector<CacheSlot> &slots,
                                       const std::vector<CacheBuffer> &caches, int64_t pageIndex,
                                       int64_t pageTokens, SwaCacheStrategy strategy) {
  v4c::check(caches.size() == slots.size(), "page payload: session caches do not match the schema");
  const bool withSnapshot = strategy.keepsSnapshotAt((pageIndex + 1) * pageTokens);
  // Each section in the slot's stored format (f32 rows held by the CPU
  // session are rounded to bf16/fp8 bytes here).
  std::vector<std::vector<uint8_t>> encoded(slots.size());
  std::vector<const uint8_t *> sections(slots.size(), nullptr);
  for (size_t s = 0; s < slots.size(); ++s) {
    const CacheSlot &slot = slots[s];
    const CacheBuffer &cache = caches[s];
    if (isFixed(slot) && !withSnapshot)
      continue;
    const int64_t rows = pageRows(slot, pageTokens);
    const int64_t first = isFixed(slot) ? 0 : pageIndex * rows;
    v4c::check(cache.width == slot.width && cache.rows >= first + rows,
               "page payload: cache " + slot.name + " holds " + std::to_string(cache.rows) +
                   " rows, page " + std::to_string(pageIndex) + " needs rows up to " +
                   std::to_string(first + rows));
    encoded[s].resize(rowBytes(slot) * rows);
    encodeCacheRows(cache.format, cache.row(first), rows, slot.width, encoded[s].data());
    sections[s] = encoded[s].data();
  }
  return encodePagePayloadSections(slots, sections, pageIndex, pageTokens, strategy);
}

const uint8_t *pageSection(kvcache::ByteView payload, const std::vector<CacheSlot> &slots,
                           size_t slot, int64_t pageTokens) {
  const bool withSnapshot = pageHasSnapshot(payload);
  if (isFixed(slots.at(slot)) && !withSnapshot)
    return nullptr;
  return payload.data() + sectionOffset(slots, slot, pageTokens, withSnapshot);
}

std::string checkPagePayload(kvcache::ByteView payload,
                             const std::vector<CacheSlot> &slots, int64_t pageIndex,
                             int64_t pageTokens) {
  const size_t headerEnd = kHeaderBytes + kDescriptorBytes * slots.size();
  if (payload.size() < kHeaderBytes || std::memcmp(payload.data(), kPagePayloadMagic, 4) != 0)
    return "not a page payload (bad magic)";
  if (readAt<uint32_t>(payload, 4) != kPagePayloadVersion)
    return "payload version " + std::to_string(readAt<uint32_t>(payload, 4)) + " is not " +
           std::to_string(kPagePayloadVersion);
  if (readAt<uint32_t>(payload, 8) > static_cast<uint32_t>(SwaCacheKind::Zero) ||
      readAt<uint32_t>(payload, 40) > 1)
    return "unknown window strategy or snapshot flag";
  const bool strategyKeepsSnapshot =
      pageStrategy(payload).keepsSnapshotAt((pageIndex + 1) * pageTokens);
  if (strategyKeepsSnapshot != pageHasSnapshot(payload))
    return "snapshot flag disagrees with the page's window strategy";
  if (readAt<uint32_t>(payload, 12) != slots.size())
    return "page has " + std::to_string(readAt<uint32_t>(payload, 12)) + " cache slots, model has " +
           std::to_string(slots.size());
  if (readAt<int64_t>(payload, 16) != pageTokens || readAt<int64_t>(payload, 24) != pageIndex)
    return "page size or index differs from the one asked for";
  if (payload.size() < headerEnd)
    return "payload truncated in its slot descriptors";
  for (size_t s = 0; s < slots.size(); ++s) {
    const size_t at = kHeaderBytes + kDescriptorBytes * s;
    const CacheSlot &slot = slots[s];
    if (payload[at] != static_cast<uint8_t>(slot.kind) ||
        payload[at + 1] != static_cast<uint8_t>(slot.dtype) ||
        readAt<uint16_t>(payload, at + 2) != slot.ropeWidth ||
        readAt<int32_t>(payload, at + 4) != slot.layer ||
        readAt<int64_t>(payload, at + 8) != slot.rows ||
        readAt<int64_t>(payload, at + 16) != slot.width ||
        readAt<int64_t>(payload, at + 24) != slot.rate)
      return "cache slot " + std::to_string(s) + " (" + slot.name + ") has another schema";
  }
  const size_t expected = pagePayloadSize(slots, pageTokens, pageHasSnapshot(payload));
  if (payload.size() != expected)
    return "payload has " + std::to_string(payload.size()) + " bytes, schema says " +
           std::to_string(expected);
  return "";
}

bool pageHasSnapshot(kvcache::ByteView payload) {
  return readAt<uint32_t>(payload, 40) == 1;
}

SwaCacheStrategy pageStrategy(kvcache::ByteView payload) {
  return {static_cast<SwaCacheKind>(readAt<uint32_t>(payload, 8)), readAt<int64_t>(payload, 32)};
}

void appendPageEntries(kvcache::ByteView payload, const std::vector<CacheSlot> &slots,
                       int64_t pageTokens, std::vector<CacheBuffer> &caches) {
  for (size_t s = 0; s < slots.size(); ++s) {
    if (isFixed(slots[s]))
      continue;
    CacheBuffer &cache = caches[s];
    const int64_t rows = pageRows(slots[s], pageTokens), first = cache.rows;
    cache.resizeRows(first + rows);
    const size_t offset = sectionOffset(slots, s, pageTokens, pageHasSnapshot(payload));
    decodeCacheRows(cache.format, payload.data() + offset, rows, cache.width, cache.row(first));
  }
}

void restorePageSnapshot(kvcache::ByteView payload, const std::vector<CacheSlot> &slots,
                         int64_t pageTokens, std::vector<CacheBuffer> &caches) {
  v4c::check(pageHasSnapshot(payload), "page payload: this page keeps no window snapshot");
  for (size_t s = 0; s < slots.size(); ++s) {
    if (!isFixed(slots[s]))
      continue;
    CacheBuffer &cache = caches[s];
    cache.resizeRows(slots[s].rows);
    decodeCacheRows(cache.format, payload.data() + sectionOffset(slots, s, pageTokens, true),
                    slots[s].rows, cache.width, cache.row(0));
  }
}

} // namespace v4rt
