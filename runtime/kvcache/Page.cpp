#include "runtime/kvcache/Page.h"

#include <cstring>

#include <xxhash.h>

#include "common/Error.h"

namespace v4rt::kvcache {

namespace {

constexpr size_t kFixedHeaderBytes = 88; // header size without the identity bytes

void putU32(uint8_t *out, uint32_t value) {
  for (int i = 0; i < 4; ++i)
    out[i] = static_cast<uint8_t>(value >> (8 * i));
}
void putU64(uint8_t *out, uint64_t value) {
  for (int i = 0; i < 8; ++i)
    out[i] = static_cast<uint8_t>(value >> (8 * i));
}
uint32_t getU32(const uint8_t *in) {
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i)
    value |= static_cast<uint32_t>(in[i]) << (8 * i);
  return value;
}
uint64_t getU64(const uint8_t *in) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i)
    value |= static_cast<uint64_t>(in[i]) << (8 * i);
  return value;
}

DecodedPage fault(PageFault kind, std::string reason) {
  DecodedPage result;
  result.fault = kind;
  result.reason = std::move(reason);
  return result;
}

// Checks everything but copies nothing; on success fills `header` fields of
// `page` (not the payload) and the payload offset.
DecodedPage validate(const uint8_t *data, size_t size, std::string_view expectedIdentity,
                     const PageKey &expectedKey, Page &page, size_t &payloadOffset) {
  if (size < 16)
    return fault(PageFault::Truncated, "truncated page: " + std::to_string(size) + " bytes, no header");
  if (std::memcmp(data, kPageMagic, sizeof kPageMagic) != 0)
    return fault(PageFault::BadMagic, "not a KV page (bad magic)");
  uint32_t version = getU32(data + 8);
  if (version != kPageFormatVersion)
    return fault(PageFault::UnsupportedVersion,
                 "page format version " + std::to_string(version) + ", expected " +
                     std::to_string(kPageFormatVersion));
  uint32_t identityBytes = getU32(data + 12);
  if (identityBytes > kMaxIdentityBytes)
    return fault(PageFault::HeaderChecksumMismatch,
                 "page header damaged: identity length " + std::to_string(identityBytes));
  size_t headerBytes = kFixedHeaderBytes + identityBytes;
  if (size < headerBytes)
    return fault(PageFault::Truncated, "truncated page: " + std::to_string(size) +
                                           " bytes, header needs " + std::to_string(headerBytes));
  const uint8_t *fields = data + 16 + identityBytes;
  if (XXH3_64bits(data, headerBytes - 8) != getU64(fields + 64))
    return fault(PageFault::HeaderChecksumMismatch, "page header checksum mismatch");
  std::string_view identity(reinterpret_cast<const char *>(data + 16), identityBytes);
  if (identity != expectedIdentity)
    return fault(PageFault::ForeignArtifact, "page from another artifact (" + std::string(identity) + ")");
  std::memcpy(page.key.bytes.data(), fields, 32);
  if (page.key != expectedKey)
    return fault(PageFault::KeyMismatch, "page holds key " + page.key.hex() + ", expected " + expectedKey.hex());
  page.pageIndex = static_cast<int64_t>(getU64(fields + 32));
  page.tokens = static_cast<int64_t>(getU64(fields + 40));
  uint64_t payloadBytes = getU64(fields + 48);
  if (size - headerBytes < payloadBytes)
    return fault(PageFault::Truncated, "truncated page: payload " + std::to_string(size - headerBytes) +
                                           " of " + std::to_string(payloadBytes) + " bytes");
  if (size - headerBytes > payloadBytes)
    return fault(PageFault::TrailingBytes, std::to_string(size - headerBytes - payloadBytes) +
                                               " bytes after the page payload");
  if (XXH3_64bits(data + headerBytes, payloadBytes) != getU64(fields + 56))
    return fault(PageFault::PayloadChecksumMismatch, "page payload checksum mismatch");
  payloadOffset = headerBytes;
  return {};
}

} // namespace

size_t pageHeaderSize(std::string_view artifactIdentity) {
  return kFixedHeaderBytes + artifactIdentity.size();
}

size_t encodedPageSize(const Page &page, std::string_view artifactIdentity) {
  return pageHeaderSize(artifactIdentity) + page.payload.size();
}

std::vector<uint8_t> encodePage(const Page &page, std::string_view artifactIdentity) {
  v4c::check(artifactIdentity.size() <= kMaxIdentityBytes,
             "artifact identity of " + std::to_string(artifactIdentity.size()) +
                 " bytes is too long for a KV page (max " + std::to_string(kMaxIdentityBytes) + ")");
  size_t headerBytes = pageHeaderSize(artifactIdentity);
  std::vector<uint8_t> bytes(headerBytes + page.payload.size());
  uint8_t *out = bytes.data();
  std::memcpy(out, kPageMagic, sizeof kPageMagic);
  putU32(out + 8, kPageFormatVersion);
  putU32(out + 12, static_cast<uint32_t>(artifactIdentity.size()));
  if (!artifactIdentity.empty())
    std::memcpy(out + 16, artifactIdentity.data(), artifactIdentity.size());
  uint8_t *fields = out + 16 + artifactIdentity.size();
  std::memcpy(fields, page.key.bytes.data(), 32);
  putU64(fields + 32, static_cast<uint64_t>(page.pageIndex));
  putU64(fields + 40, static_cast<uint64_t>(page.tokens));
  putU64(fields + 48, page.payload.size());
  putU64(fields + 56, XXH3_64bits(page.payload.data(), page.payload.size()));
  putU64(fields + 64, XXH3_64bits(out, headerBytes - 8));
  if (!page.payload.empty())
    std::memcpy(out + headerBytes, page.payload.data(), page.payload.size());
  return bytes;
}

const char *pageFaultName(PageFault fault) {
  switch (fault) {
  case PageFault::None: return "none";
  case PageFault::Truncated: return "truncated";
  case PageFault::BadMagic: return "bad magic";
  case PageFault::UnsupportedVersion: return "unsupported version";
  case PageFault::HeaderChecksumMismatch: return "header checksum mismatch";
  case PageFault::ForeignArtifact: return "foreign artifact";
  case PageFault::KeyMismatch: return "key mismatch";
  case PageFault::TrailingBytes: return "trailing bytes";
  case PageFault::PayloadChecksumMismatch: return "payload checksum mismatch";
  }
  return "unknown";
}

std::string_view pageNamedIdentity(const uint8_t *data, size_t size) {
  if (size < 16)
    return {};
  const uint32_t length = getU32(data + 12);
  if (length > kMaxIdentityBytes || 16 + static_cast<size_t>(length) > size)
    return {};
  return std::string_view(reinterpret_cast<const char *>(data + 16), length);
}

DecodedPage decodePage(const uint8_t *data, size_t size, std::string_view expectedIdentity,
                       const PageKey &expectedKey) {
  Page page;
  size_t payloadOffset = 0;
  DecodedPage result = validate(data, size, expectedIdentity, expectedKey, page, payloadOffset);
  if (result.fault != PageFault::None)
    return result;
  page.payload = std::vector<uint8_t>(data + payloadOffset, data + size);
  result.page = std::move(page);
  return result;
}

DecodedPage decodePage(std::vector<uint8_t> &&bytes, std::string_view expectedIdentity,
                       const PageKey &expectedKey) {
  return decodePage(PageBytes(std::move(bytes)), expectedIdentity, expectedKey);
}

DecodedPage decodePage(PageBytes &&bytes, std::string_view expectedIdentity, const PageKey &expectedKey) {
  Page page;
  size_t payloadOffset = 0;
  DecodedPage result = validate(bytes.data(), bytes.size(), expectedIdentity, expectedKey, page, payloadOffset);
  if (result.fault != PageFault::None)
    return result;
  bytes.dropFront(payloadOffset);
  page.payload = std::move(bytes);
  result.page = std::move(page);
  return result;
}

} // namespace v4rt::kvcache
