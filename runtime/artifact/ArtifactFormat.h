// The on-disk layout of a .v4a file, shared by the writer, the reader and the
// tests.
//
//   [0, 64)                       FileHeader (below), little-endian
//   [64, 64 + manifestSize)       flatbuffers manifest (v4a.fbs, identifier "V4A1")
//   [.., blobOffset)              zero padding
//   [blobOffset, fileSize)        weights, each at a 4096-aligned absolute offset,
//                                 zero padding between them
//
// The manifest offset is not stored: for format version 1 the manifest always
// starts right after the 64-byte header. Weight offsets are uint64 values in
// the manifest, so the blob may extend far past the 2 GiB a flatbuffer can
// address.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace v4rt::artifact {

inline constexpr char kMagic[8] = {'V', '4', 'A', 'R', 'T', 'I', 'F', '\0'};
inline constexpr uint32_t kFormatVersion = 1;    // layout of the fixed header
inline constexpr uint32_t kSchemaVersion = 1;    // major version of v4a.fbs
inline constexpr uint32_t kSchemaMinor = 2;      // additive revisions of v4a.fbs (1: modules, launch dims, dummy weights; 2: cache rope_width)
inline constexpr uint64_t kHeaderSize = 64;
inline constexpr uint64_t kWeightAlignment = 4096; // page size: mmap without copies

using Sha256 = std::array<uint8_t, 32>;

// The 64-byte fixed header.
//   0  char[8]  magic "V4ARTIF\0"
//   8  u32      format version (kFormatVersion)
//  12  u32      manifest size in bytes (a flatbuffer is < 2 GiB)
//  16  u64      blob offset: 4096-aligned, >= 64 + manifest size
//  24  u64      total file size in bytes
//  32  u8[32]   sha256 of the manifest bytes (the artifact's identity)
struct FileHeader {
  uint32_t formatVersion = kFormatVersion;
  uint32_t manifestSize = 0;
  uint64_t blobOffset = 0;
  uint64_t fileSize = 0;
  Sha256 manifestSha256{};
};

// Serialises `header` (with the magic) into exactly kHeaderSize bytes.
void encodeHeader(const FileHeader &header, uint8_t *out);

// True when the first 8 bytes are the artifact magic.
bool hasMagic(const uint8_t *bytes);

// Decodes the fields after the magic; the caller has checked the magic and
// that kHeaderSize bytes are readable. Performs no validation.
FileHeader decodeHeader(const uint8_t *bytes);

Sha256 sha256(const uint8_t *data, size_t size);
std::string toHex(const Sha256 &digest);

} // namespace v4rt::artifact
