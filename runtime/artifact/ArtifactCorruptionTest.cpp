// A damaged .v4a must give one clear v4c::Error, never a crash: truncation at
// many lengths, single-byte flips across the whole file, and manifest edits
// that keep a valid sha256 (so only the Verifier and index checks stand
// between the bytes and the runtime). Run under -fsanitize=address too.
#include <cstring>
#include <random>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/Error.h"
#include "runtime/artifact/ArtifactFormat.h"
#include "runtime/artifact/ArtifactReader.h"
#include "runtime/artifact/ArtifactTestSupport.h"
#include "runtime/artifact/ArtifactWriter.h"

namespace v4rt {
namespace {

using namespace testing_support;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class ArtifactCorruptionTest : public ::testing::Test {
protected:
  void SetUp() override {
    program = sampleProgram();
    payloads = samplePayloads(program);
    writeArtifact(goodPath, program, payloadSource(payloads));
    original = readBytes(goodPath);
    header = artifact::decodeHeader(original.data());
    auto artifact = Artifact::open(goodPath);
    written = artifact->program();
  }

  // Bytes no check covers: between the manifest and the blob, and between
  // weights. Flipping them must not change what the reader returns.
  bool isPadding(uint64_t position) const {
    if (position < artifact::kHeaderSize + header.manifestSize)
      return false;
    for (const Weight &weight : written.weights)
      if (position >= weight.offset && position < weight.offset + weight.size)
        return false;
    return true;
  }

  // Opens `bytes` (written to a scratch file); returns the error or "".
  std::string openBytes(const std::vector<uint8_t> &bytes, Program *result = nullptr) {
    writeBytes(damagedPath, bytes);
    try {
      auto artifact = Artifact::open(damagedPath);
      if (result)
        *result = artifact->program();
      for (size_t i = 0; i < artifact->program().weights.size(); ++i) {
        const Weight &weight = artifact->program().weights[i];
        if (i < payloads.size() && weight.size == payloads[i].size()) {
          EXPECT_EQ(std::memcmp(weight.data, payloads[i].data(), weight.size), 0);
        }
      }
      return "";
    } catch (const v4c::Error &error) {
      return error.what();
    }
  }

  Program program;
  std::vector<std::vector<uint8_t>> payloads;
  ScratchDir dir;
  std::string goodPath = dir.file("model.v4a").string();
  std::string damagedPath = dir.file("damaged.v4a").string();
  std::vector<uint8_t> original;
  artifact::FileHeader header;
  Program written;
};

TEST_F(ArtifactCorruptionTest, TruncationAtAnyLengthIsReported) {
  const uint64_t manifestEnd = artifact::kHeaderSize + header.manifestSize;
  const uint64_t firstWeight = written.weights[0].offset;
  const std::vector<uint64_t> lengths = {0,
                                         7,
                                         8,
                                         63,
                                         64,
                                         artifact::kHeaderSize + header.manifestSize / 2,
                                         manifestEnd - 1,
                                         manifestEnd,
                                         header.blobOffset,
                                         firstWeight + written.weights[0].size / 2,
                                         written.weights[2].offset + 45,
                                         original.size() - 1};
  for (uint64_t length : lengths) {
    SCOPED_TRACE("length " + std::to_string(length));
    std::vector<uint8_t> prefix(original.begin(), original.begin() + length);
    const std::string message = openBytes(prefix);
    EXPECT_THAT(message, StartsWith(damagedPath + ": truncated: "));
    EXPECT_EQ(message.find('\n'), std::string::npos);
  }
  std::vector<uint8_t> prefix(original.begin(), original.begin() + 1000);
  EXPECT_EQ(openBytes(prefix), damagedPath + ": truncated: header says " +
                                   std::to_string(original.size()) + " bytes, file has 1000");
  prefix.resize(10);
  EXPECT_EQ(openBytes(prefix),
            damagedPath + ": truncated: file has 10 bytes, less than the 64-byte header");
}

TEST_F(ArtifactCorruptionTest, BadMagicTrailingDataAndUnknownFormat) {
  std::vector<uint8_t> bytes = original;
  bytes[3] = 'X';
  EXPECT_EQ(openBytes(bytes), damagedPath + ": not a v4c artifact (bad magic)");
  EXPECT_EQ(openBytes(std::vector<uint8_t>{'{', '"', 'a', '"', ':', ' ', '1', '2', '}', '\n'}),
            damagedPath + ": not a v4c artifact (bad magic)");

  bytes = original;
  bytes.push_back(0);
  EXPECT_THAT(openBytes(bytes), HasSubstr("but the file has " + std::to_string(original.size() + 1) +
                                          " (trailing data or a corrupted header)"));

  bytes = original;
  bytes[8] = 2; // format version
  EXPECT_EQ(openBytes(bytes),
            damagedPath + ": artifact format version 2 is not supported by this runtime (supports 1)");

  bytes = original;
  bytes[40] ^= 1; // sha256
  EXPECT_EQ(openBytes(bytes), damagedPath + ": manifest checksum mismatch (file corrupted?)");
}

TEST_F(ArtifactCorruptionTest, EveryFlippedByteIsRejectedUnlessItIsPadding) {
  // Every header and manifest byte, the edges of every weight, and a stride
  // through the rest of the file (padding and weight interiors).
  std::vector<uint64_t> positions;
  for (uint64_t p = 0; p < artifact::kHeaderSize + header.manifestSize; ++p)
    positions.push_back(p);
  for (const Weight &weight : written.weights) {
    positions.push_back(weight.offset);
    positions.push_back(weight.offset + weight.size - 1);
    positions.push_back(weight.offset + weight.size); // first padding byte
  }
  for (uint64_t p = artifact::kHeaderSize + header.manifestSize; p < original.size(); p += 67)
    positions.push_back(p);
  ASSERT_GT(positions.size(), 300u);

  size_t paddingFlips = 0;
  for (uint64_t position : positions) {
    if (position >= original.size())
      continue;
    SCOPED_TRACE("flipped byte " + std::to_string(position));
    std::vector<uint8_t> bytes = original;
    bytes[position] ^= 0xA5;
    Program read;
    const std::string message = openBytes(bytes, &read);
    if (isPadding(position)) {
      ++paddingFlips;
      EXPECT_EQ(message, "");
      EXPECT_TRUE(read == written);
    } else {
      EXPECT_THAT(message, StartsWith(damagedPath + ": "));
      EXPECT_EQ(message.find('\n'), std::string::npos);
    }
  }
  EXPECT_GT(paddingFlips, 10u);
}

// The sha256 is resealed after each edit, so a tamperer (or a buggy
// producer) gets past it: the Verifier, the enum and index checks must hold.
TEST_F(ArtifactCorruptionTest, ResealedManifestDamageNeverCrashes) {
  const size_t manifestSize = header.manifestSize;
  std::mt19937 generator(7);
  size_t rejected = 0, accepted = 0;
  auto tryBytes = [&](std::vector<uint8_t> &bytes) {
    resealManifest(bytes);
    Program read;
    const std::string message = openBytes(bytes, &read);
    if (message.empty()) {
      ++accepted; // a still-valid program (e.g. a changed float attribute)
    } else {
      ++rejected;
      EXPECT_THAT(message, StartsWith(damagedPath + ": "));
    }
  };
  // Every byte once with a fixed pattern, then random multi-byte damage.
  for (size_t p = 0; p < manifestSize; ++p) {
    std::vector<uint8_t> bytes = original;
    bytes[artifact::kHeaderSize + p] ^= 0xFF;
    tryBytes(bytes);
  }
  for (int round = 0; round < 300; ++round) {
    std::vector<uint8_t> bytes = original;
    for (int k = 0; k < 4; ++k)
      bytes[artifact::kHeaderSize + generator() % manifestSize] = static_cast<uint8_t>(generator());
    tryBytes(bytes);
  }
  // Both outcomes occur; the point is that neither was a crash.
  EXPECT_GT(rejected, manifestSize / 4);
  EXPECT_GT(accepted, 0u);
}

} // namespace
} // namespace v4rt
