#include "runtime/kvcache/PageKey.h"

#include <cstring>

#include <openssl/evp.h>

#include "common/Error.h"

namespace v4rt::kvcache {

namespace {

// EVP context with RAII; one per chainKey call (cheap next to hashing 512 B).
class Sha256 {
public:
  Sha256() : context_(EVP_MD_CTX_new()) {
    v4c::check(context_ && EVP_DigestInit_ex(context_, EVP_sha256(), nullptr) == 1,
               "cannot initialise sha256 (OpenSSL EVP)");
  }
  ~Sha256() { EVP_MD_CTX_free(context_); }
  Sha256(const Sha256 &) = delete;
  Sha256 &operator=(const Sha256 &) = delete;

  void bytes(const void *data, size_t size) {
    if (size != 0)
      v4c::check(EVP_DigestUpdate(context_, data, size) == 1, "sha256 update failed (OpenSSL EVP)");
  }
  void u64(uint64_t value) {
    uint8_t little[8];
    for (int i = 0; i < 8; ++i)
      little[i] = static_cast<uint8_t>(value >> (8 * i));
    bytes(little, sizeof little);
  }
  void lengthPrefixed(std::string_view text) {
    u64(text.size());
    bytes(text.data(), text.size());
  }
  PageKey finish() {
    PageKey key;
    unsigned int length = 0;
    v4c::check(EVP_DigestFinal_ex(context_, key.bytes.data(), &length) == 1 && length == 32,
               "sha256 final failed (OpenSSL EVP)");
    return key;
  }

private:
  EVP_MD_CTX *context_;
};

int hexValue(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

} // namespace

std::string PageKey::hex() const {
  static const char digits[] = "0123456789abcdef";
  std::string text(64, '0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    text[2 * i] = digits[bytes[i] >> 4];
    text[2 * i + 1] = digits[bytes[i] & 15];
  }
  return text;
}

std::optional<PageKey> PageKey::fromHex(std::string_view hex) {
  if (hex.size() != 64)
    return std::nullopt;
  PageKey key;
  for (size_t i = 0; i < 32; ++i) {
    int high = hexValue(hex[2 * i]), low = hexValue(hex[2 * i + 1]);
    if (high < 0 || low < 0)
      return std::nullopt;
    key.bytes[i] = static_cast<uint8_t>(high << 4 | low);
  }
  return key;
}

size_t PageKeyHash::operator()(const PageKey &key) const {
  // The key is already a uniform hash: its first bytes are a fine bucket index.
  size_t value;
  std::memcpy(&value, key.bytes.data(), sizeof value);
  return value;
}

PageKey chainKey(const PageKey *previous, const int32_t *tokenIds, size_t count,
                 std::string_view artifactIdentity, std::string_view tenantSalt) {
  v4c::check(tokenIds != nullptr || count == 0, "chainKey: null token ids with a non-zero count");
  Sha256 hash;
  hash.lengthPrefixed(kPageKeyDomainTag);
  static const PageKey zero{};
  hash.bytes((previous ? previous : &zero)->bytes.data(), 32);
  hash.lengthPrefixed(artifactIdentity);
  hash.lengthPrefixed(tenantSalt);
  hash.u64(count);
  for (size_t i = 0; i < count; ++i) {
    uint32_t id = static_cast<uint32_t>(tokenIds[i]);
    uint8_t little[4] = {static_cast<uint8_t>(id), static_cast<uint8_t>(id >> 8),
                         static_cast<uint8_t>(id >> 16), static_cast<uint8_t>(id >> 24)};
    hash.bytes(little, 4);
  }
  return hash.finish();
}

std::vector<PageKey> prefixKeys(const int32_t *tokenIds, size_t count, size_t pageTokens,
                                std::string_view artifactIdentity, std::string_view tenantSalt) {
  v4c::check(pageTokens > 0, "prefixKeys: pageTokens must be positive");
  std::vector<PageKey> keys;
  keys.reserve(count / pageTokens);
  for (size_t page = 0; page < count / pageTokens; ++page)
    keys.push_back(chainKey(keys.empty() ? nullptr : &keys.back(), tokenIds + page * pageTokens,
                            pageTokens, artifactIdentity, tenantSalt));
  return keys;
}

} // namespace v4rt::kvcache
