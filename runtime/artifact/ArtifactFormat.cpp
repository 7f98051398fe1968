#include "runtime/artifact/ArtifactFormat.h"

#include <cstring>

#include <openssl/sha.h>

namespace v4rt::artifact {
namespace {

// Explicit little-endian encoding keeps the header portable across hosts.
void putLittleEndian(uint8_t *out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i)
    out[i] = static_cast<uint8_t>(value >> (8 * i));
}

uint64_t getLittleEndian(const uint8_t *in, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i)
    value |= static_cast<uint64_t>(in[i]) << (8 * i);
  return value;
}

} // namespace

void encodeHeader(const FileHeader &header, uint8_t *out) {
  std::memcpy(out, kMagic, sizeof(kMagic));
  putLittleEndian(out + 8, header.formatVersion, 4);
  putLittleEndian(out + 12, header.manifestSize, 4);
  putLittleEndian(out + 16, header.blobOffset, 8);
  putLittleEndian(out + 24, header.fileSize, 8);
  std::memcpy(out + 32, header.manifestSha256.data(), header.manifestSha256.size());
}

bool hasMagic(const uint8_t *bytes) {
  return std::memcmp(bytes, kMagic, sizeof(kMagic)) == 0;
}

FileHeader decodeHeader(const uint8_t *bytes) {
  FileHeader header;
  header.formatVersion = static_cast<uint32_t>(getLittleEndian(bytes + 8, 4));
  header.manifestSize = static_cast<uint32_t>(getLittleEndian(bytes + 12, 4));
  header.blobOffset = getLittleEndian(bytes + 16, 8);
  header.fileSize = getLittleEndian(bytes + 24, 8);
  std::memcpy(header.manifestSha256.data(), bytes + 32, header.manifestSha256.size());
  return header;
}

Sha256 sha256(const uint8_t *data, size_t size) {
  Sha256 digest;
  SHA256(data, size, digest.data());
  return digest;
}

std::string toHex(const Sha256 &digest) {
  static const char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(digest.size() * 2);
  for (uint8_t byte : digest) {
    hex.push_back(kDigits[byte >> 4]);
    hex.push_back(kDigits[byte & 15]);
  }
  return hex;
}

} // namespace v4rt::artifact
