// The payload of a KV-cache page: what a session stores for tokens
// [i*P, (i+1)*P) and reads back to skip prefilling them.
//
// The page size P comes from the artifact's cache schema (pageTokensFor).
// Layout, version 2, integers and floats little-endian:
//   off 0   u8[4]  magic "V4PP"
//       4   u32    payload version (kPagePayloadVersion)
//       8   u32    window strategy that wrote the page (SwaCacheKind)
//      12   u32    S = cache slot count
//      16   i64    page tokens P
//      24   i64    page index i
//      32   i64    the strategy's period (periodic:N; 0 otherwise)
//      40   u32    1: the page holds the fixed-size slots' snapshot; 0: not
//      44   u32    zero
//      48   S x 32-byte slot descriptors, in the program's slot order:
//             u8 kind, u8 dtype, u16 rope width (f8e4m3 slots; else 0), i32 layer,
//             i64 rows, i64 width, i64 rate
//   then, per slot in the same order:
//     Rows are in the slot's format (runtime/cpu/CacheStorage.h): f32, bf16,
//     or fp8 = per row e4m3 codes, ue8m0 scales (one per 64), bf16 rope part.
//     Entries: its rows [i*P/rate, (i+1)*P/rate) (P/rate rows x width)
//     Window / CompressState, only when the page holds the snapshot: all rows
//       x width, the slot as it is at position (i+1)*P. P is a multiple
//       of every rate, so the compressor's pending window is empty there and
//       this snapshot is the whole state.
// The descriptors let a reader refuse a page of another schema (a miss).
// A reader of any strategy uses a page of any strategy: the snapshot flag,
// not the writer's strategy, says what the page holds, and a session rebuilds
// the window state the pages lack (Session::restorePages).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/artifact/Program.h"
#include "runtime/cpu/CacheBuffer.h"
#include "runtime/kvcache/PageBytes.h"

namespace v4rt {

// How pages keep the sliding-window state (the Window and CompressState
// slots); the Entries rows are in every page.
enum class SwaCacheKind : uint32_t {
  Full = 0,     // every page keeps a snapshot of every fixed-size slot
  Periodic = 1, // pages ending at a multiple of `period` tokens keep one, others none
  Zero = 2,     // no page keeps one: sessions recompute the window state
};

struct SwaCacheStrategy {
  SwaCacheKind kind = SwaCacheKind::Full;
  int64_t period = 0; // Periodic: tokens between snapshots (a multiple of the page size)

  static const SwaCacheStrategy Full, Zero;
  static SwaCacheStrategy periodic(int64_t period) { return {SwaCacheKind::Periodic, period}; }

  // Whether the page that ends at token `pageEnd` keeps the snapshot.
  bool keepsSnapshotAt(int64_t pageEnd) const {
    return kind == SwaCacheKind::Full ||
           (kind == SwaCacheKind::Periodic && period > 0 && pageEnd % period == 0);
  }
  // "full", "periodic:N" or "zero" (what parseSwaCacheStrategy reads).
  std::string name() const {
    return kind == SwaCacheKind::Full       ? "full"
           : kind == SwaCacheKind::Periodic ? "periodic:" + std::to_string(period)
                                            : "zero";
  }
  bool operator==(const SwaCacheStrategy &other) const {
    return kind == other.kind && period == other.period;
  }
  bool operator!=(const SwaCacheStrategy &other) const { return !(*this == other); }
};
inline const SwaCacheStrategy SwaCacheStrategy::Full{SwaCacheKind::Full, 0};
inline const SwaCacheStrategy SwaCacheStrategy::Zero{SwaCacheKind::Zero, 0};

inline constexpr char kPagePayloadMagic[4] = {'V', '4', 'P', 'P'};
inline constexpr uint32_t kPagePayloadVersion = 2;

// lcm of every Entries slot's rate; with no Entries slot, the largest Window
// rows rounded up to a multiple of 16 (16 at least).
int64_t pageTokensFor(const std::vector<CacheSlot> &slots);

// Tokens before a boundary B from which re-running the model, starting from
// the empty window state and with every Entries row below B restored (and
// kept), rebuilds the window and compressor state at B exactly: a layer's
// window rows depend on its input over the last W tokens and on nothing
// older, so the error of the missing window shrinks out by W per layer (the
// sum of every Window slot's rows), plus the largest rate (the compressor's
// previous window). The rebuild starts at max(0, B - this) rounded down to a
// page boundary (a multiple of every rate).
int64_t windowRebuildTokens(const std::vector<CacheSlot> &slots);

// Bytes of one page's payload for this schema, with or without the snapshot.
size_t pagePayloadSize(const std::vector<CacheSlot> &slots, int64_t pageTokens,
                       bool withSnapshot);

// Serialises page `pageIndex` from a session's caches, which must be at
// position (pageIndex+1)*pageTokens exactly; the strategy says whether the
// snapshot goes in.
std::vector<uint8_t> encodePagePayload(const std::vector<CacheSlot> &slots,
                                       const std::vector<CacheBuffer> &caches, int64_t pageIndex,
                                       int64_t pageTokens, SwaCacheStrategy strategy);

// Bytes of slot `slot`'s section of a page: its pageTokens/rate Entries rows,
// or every row of a fixed-size slot, in the slot's stored format.
size_t pageSectionBytes(const CacheSlot &slot, int64_t pageTokens);

// The same payload from sections already in the slots' stored format (the
// CUDA backend's device rows are exactly that, docs/cuda-compile.md):
// sections[s] holds pageSectionBytes of slot s; a fixed-size slot's is read
// only when the strategy keeps the snapshot at the page's end (else may be null).
std::vector<uint8_t> encodePagePayloadSections(const std::vector<CacheSlot> &slots,
                                               const std::vector<const uint8_t *> &sections,
                                               int64_t pageIndex, int64_t pageTokens,
                                               SwaCacheStrategy strategy);

// Where slot `slot`'s section starts in a payload with or without the
// snapshot (a fixed-size slot has none without it); pageSectionOffset(slots,
// 0, ...) is the bytes of the header and descriptors.
size_t pageSectionOffset(const std::vector<CacheSlot> &slots, size_t slot, int64_t pageTokens,
                         bool withSnapshot);
// Writes page `pageIndex`'s header and slot descriptors (pageSectionOffset(
// slots, 0, ...) bytes) at `out`: with the sections written in place at
// their offsets, that is the whole payload (the CUDA backend copies device
// rows straight into a pinned payload so).
void writePagePayloadHeader(const std::vector<CacheSlot> &slots, int64_t pageIndex, int64_t pageTokens,
                            SwaCacheStrategy strategy, uint8_t *out);

// Slot `slot`'s section (pageSectionBytes of it) in a checked payload; null
// for a fixed-size slot of a page without the snapshot.
const uint8_t *pageSection(kvcache::ByteView payload, const std::vector<CacheSlot> &slots,
                           size_t slot, int64_t pageTokens);

// Empty when `payload` is page `pageIndex` of this exact schema and page
// size (written under any strategy); otherwise a one-line reason (the page is
// then a miss).
std::string checkPagePayload(kvcache::ByteView payload,
                             const std::vector<CacheSlot> &slots, int64_t pageIndex,
                             int64_t pageTokens);

// Of a checked page: whether it holds the fixed-size slots' snapshot, and the
// strategy that wrote it.
bool pageHasSnapshot(kvcache::ByteView payload);
SwaCacheStrategy pageStrategy(kvcache::ByteView payload);

// Appends a checked page's Entries rows; the caches must hold exactly the
// rows of the pages before it.
void appendPageEntries(kvcache::ByteView payload, const std::vector<CacheSlot> &slots,
                       int64_t pageTokens, std::vector<CacheBuffer> &caches);
// Overwrites every fixed-size slot with a checked page's snapshot (the page
// must have one).
void restorePageSnapshot(kvcache::ByteView payload, const std::vector<CacheSlot> &slots,
                         int64_t pageTokens, std::vector<CacheBuffer> &caches);

} // namespace v4rt
