// A KV-cache page and its self-describing byte format (the disk tier's file).
//
// The payload is opaque here: the session serialises, per layer, the span's
// compressed entries, indexer keys and optional window state. Decoding never
// throws on bad content: a page that fails any check is a cache MISS with a
// reason, so a damaged cache can cost time but never correctness.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/kvcache/PageBytes.h"
#include "runtime/kvcache/PageKey.h"

namespace v4rt::kvcache {

struct Page {
  PageKey key;
  int64_t pageIndex = 0; // position of the page in its prompt: tokens [index*T, (index+1)*T)
  int64_t tokens = 0;    // tokens covered (pageTokens for every keyed page)
  PageBytes payload;     // heap, or pinned host memory on the CUDA backend
};

// Pages are immutable once built (their key is their content), so tiers and
// sessions share them by pointer; an evicted page stays valid for its holders.
using PagePtr = std::shared_ptr<const Page>;

// On-disk layout, integers little-endian:
//   off 0   u8[8]  magic "V4KVPAGE"
//       8   u32    format version (kPageFormatVersion)
//      12   u32    L = artifact identity length (<= kMaxIdentityBytes)
//      16   u8[L]  artifact identity
//   16+L    u8[32] page key
//   48+L    i64    page index
//   56+L    i64    token count
//   64+L    u64    payload length
//   72+L    u64    XXH3-64 of the payload
//   80+L    u64    XXH3-64 of header bytes [0, 80+L)
//   88+L    payload
inline constexpr char kPageMagic[8] = {'V', '4', 'K', 'V', 'P', 'A', 'G', 'E'};
inline constexpr uint32_t kPageFormatVersion = 1;
inline constexpr uint32_t kMaxIdentityBytes = 4096;

size_t pageHeaderSize(std::string_view artifactIdentity);
// Bytes encodePage produces for `page`.
size_t encodedPageSize(const Page &page, std::string_view artifactIdentity);
std::vector<uint8_t> encodePage(const Page &page, std::string_view artifactIdentity);

enum class PageFault : uint8_t {
  None,
  Truncated,              // fewer bytes than the header or its payload length says
  BadMagic,               // not a page file
  UnsupportedVersion,     // written by another format version
  HeaderChecksumMismatch, // header bytes damaged
  ForeignArtifact,        // computed by another artifact (identity differs)
  KeyMismatch,            // file holds another key than the one asked for
  TrailingBytes,          // more bytes than header + payload
  PayloadChecksumMismatch // payload bytes damaged
};
const char *pageFaultName(PageFault fault);

struct DecodedPage {
  std::optional<Page> page; // set iff fault == None
  PageFault fault = PageFault::None;
  std::string reason; // one line, for logs; empty on success
  explicit operator bool() const { return page.has_value(); }
};

// The artifact identity a page's header names (empty when the header is too
// damaged to say; decodePage then reports what is wrong): lets a page of any
// artifact be checked against its own identity (v4run cache verify).
std::string_view pageNamedIdentity(const uint8_t *data, size_t size);

// Validates everything in the layout above against the expected identity and
// key. Never throws on bad content.
DecodedPage decodePage(const uint8_t *data, size_t size, std::string_view expectedIdentity,
                       const PageKey &expectedKey);
// Same, reusing `bytes` as the payload storage (no second copy of a big page).
DecodedPage decodePage(std::vector<uint8_t> &&bytes, std::string_view expectedIdentity,
                       const PageKey &expectedKey);
// Same, for a file read into a payload block (e.g. pinned memory): the
// page's payload is the block past the header.
DecodedPage decodePage(PageBytes &&bytes, std::string_view expectedIdentity, const PageKey &expectedKey);

} // namespace v4rt::kvcache
