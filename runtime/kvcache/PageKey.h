// Content keys of KV-cache pages: a sha256 chain over the prompt's pages.
//
// A page's key commits to every token before it (through the previous key),
// to the artifact that computed it and to an optional tenant salt, so two
// prompts share a page only when their whole prefix, model and tenant match.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace v4rt::kvcache {

struct PageKey {
  std::array<uint8_t, 32> bytes{};

  // 64 lowercase hex digits.
  std::string hex() const;
  // Parses 64 hex digits (either case); nullopt for anything else.
  static std::optional<PageKey> fromHex(std::string_view hex);

  bool operator==(const PageKey &other) const { return bytes == other.bytes; }
  bool operator!=(const PageKey &other) const { return bytes != other.bytes; }
};

struct PageKeyHash {
  size_t operator()(const PageKey &key) const;
};

// Domain separation: no other sha256 in the system hashes a message that
// starts with this tag.
inline constexpr std::string_view kPageKeyDomainTag = "v4c.kvcache.page-key.v1";

// sha256 of the concatenation (integers little-endian, u64 lengths):
//   u64 len(tag)       || tag
//   previous key (32 bytes; 32 zero bytes for the first page)
//   u64 len(identity)  || identity
//   u64 len(salt)      || salt
//   u64 count          || count x int32 token ids
PageKey chainKey(const PageKey *previous, const int32_t *tokenIds, size_t count,
                 std::string_view artifactIdentity, std::string_view tenantSalt);

// Keys of every COMPLETE page of a prompt: floor(count / pageTokens) keys,
// key[i] chained from key[i-1]. A trailing partial page gets no key.
std::vector<PageKey> prefixKeys(const int32_t *tokenIds, size_t count, size_t pageTokens,
                                std::string_view artifactIdentity, std::string_view tenantSalt);

} // namespace v4rt::kvcache
