// The payload of a KV-cache page: what a session stores for tokens
// [i*P, (i+1)*P) and reads back to skip prefilling them.
//
// The page size P comes from the artifact's cache schema (pageTokensFor).
// Layout, version 1, integers and floats little-endian:
//   off 0   u8[4]  magic "V4PP"
//       4   u32    payload version (kPagePayloadVersion)
//       8   u32    window strategy (SwaCacheStrategy)
//      12   u32    S = cache slot count
//      16   i64    page tokens P
//      24   i64    page index i
//      32   S x 32-byte slot descriptors, in the program's slot order:
//             u8 kind, u8 dtype, u16 zero, i32 layer, i64 rows, i64 width, i64 rate
//   then, per slot in the same order:
//     Entries: its rows [i*P/rate, (i+1)*P/rate) (P/rate rows x width f32)
//     Window / CompressState (strategy full): all rows x width f32, the
//       slot as it is at position (i+1)*P. P is a multiple of every rate, so
//       the compressor's pending window is empty there and this snapshot is
//       the whole state.
// The descriptors let a reader refuse a page of another schema (a miss).
// Other strategies (periodic:P, zero) would add a version with fewer
// snapshots; the reader refuses what it does not know.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/artifact/Program.h"
#include "runtime/cpu/CacheBuffer.h"

namespace v4rt {

enum class SwaCacheStrategy : uint32_t {
  Full = 0, // every page keeps a snapshot of every window/compressor slot
};

inline constexpr char kPagePayloadMagic[4] = {'V', '4', 'P', 'P'};
inline constexpr uint32_t kPagePayloadVersion = 1;

// lcm of every Entries slot's rate; with no Entries slot, the largest Window
// rows rounded up to a multiple of 16 (16 at least).
int64_t pageTokensFor(const std::vector<CacheSlot> &slots);

// Bytes of one page's payload for this schema.
size_t pagePayloadSize(const std::vector<CacheSlot> &slots, int64_t pageTokens,
                       SwaCacheStrategy strategy);

// Serialises page `pageIndex` from a session's caches, which must be at
// position (pageIndex+1)*pageTokens exactly.
std::vector<uint8_t> encodePagePayload(const std::vector<CacheSlot> &slots,
                                       const std::vector<CacheBuffer> &caches, int64_t pageIndex,
                                       int64_t pageTokens, SwaCacheStrategy strategy);

// Empty when `payload` is page `pageIndex` of this exact schema, page size
// and strategy; otherwise a one-line reason (the page is then a miss).
std::string checkPagePayload(const std::vector<uint8_t> &payload,
                             const std::vector<CacheSlot> &slots, int64_t pageIndex,
                             int64_t pageTokens, SwaCacheStrategy strategy);

// Appends a checked page's Entries rows; the caches must hold exactly the
// rows of the pages before it.
void appendPageEntries(const std::vector<uint8_t> &payload, const std::vector<CacheSlot> &slots,
                       int64_t pageTokens, std::vector<CacheBuffer> &caches);
// Overwrites every fixed-size slot with a checked page's snapshot.
void restorePageSnapshot(const std::vector<uint8_t> &payload, const std::vector<CacheSlot> &slots,
                         int64_t pageTokens, std::vector<CacheBuffer> &caches);

} // namespace v4rt
