#include "runtime/kvcache/Page.h"

#include <cstring>

#include <gtest/gtest.h>

#include "common/Error.h"
#include "runtime/kvcache/KvCacheTestSupport.h"

namespace v4rt::kvcache {
namespace {

using test::kTestIdentity;
using test::testPage;

void expectSamePage(const Page &actual, const Page &expected) {
  EXPECT_EQ(actual.key, expected.key);
  EXPECT_EQ(actual.pageIndex, expected.pageIndex);
  EXPECT_EQ(actual.tokens, expected.tokens);
  EXPECT_EQ(actual.payload, expected.payload);
}

DecodedPage decode(const std::vector<uint8_t> &bytes, const Page &expected,
                   std::string_view identity = kTestIdentity) {
  return decodePage(bytes.data(), bytes.size(), identity, expected.key);
}

TEST(Page, EncodeDecodeRoundTrip) {
  Page page = testPage(7, 10000, 3);
  std::vector<uint8_t> bytes = encodePage(page, kTestIdentity);
  ASSERT_EQ(bytes.size(), encodedPageSize(page, kTestIdentity));
  EXPECT_EQ(bytes.size(), 88 + std::strlen(kTestIdentity) + 10000);
  EXPECT_EQ(std::memcmp(bytes.data(), "V4KVPAGE", 8), 0);

  DecodedPage copied = decode(bytes, page);
  ASSERT_TRUE(copied) << copied.reason;
  EXPECT_EQ(copied.fault, PageFault::None);
  EXPECT_TRUE(copied.reason.empty());
  expectSamePage(*copied.page, page);

  DecodedPage moved = decodePage(std::vector<uint8_t>(bytes), kTestIdentity, page.key);
  ASSERT_TRUE(moved) << moved.reason;
  expectSamePage(*moved.page, page);
}

TEST(Page, EmptyPayloadAndEmptyIdentityRoundTrip) {
  Page page = testPage(0, 0);
  std::vector<uint8_t> bytes = encodePage(page, "");
  DecodedPage decoded = decode(bytes, page, "");
  ASSERT_TRUE(decoded) << decoded.reason;
  expectSamePage(*decoded.page, page);
}

TEST(Page, EveryTruncationIsATruncatedMiss) {
  Page page = testPage(1, 300);
  std::vector<uint8_t> bytes = encodePage(page, kTestIdentity);
  for (size_t size = 0; size < bytes.size(); ++size) {
    DecodedPage decoded = decodePage(bytes.data(), size, kTestIdentity, page.key);
    ASSERT_FALSE(decoded) << "size " << size;
    EXPECT_EQ(decoded.fault, PageFault::Truncated) << "size " << size << ": " << decoded.reason;
    EXPECT_FALSE(decoded.reason.empty());
  }
}

TEST(Page, BadMagic) {
  Page page = testPage(1, 64);
  std::vector<uint8_t> bytes = encodePage(page, kTestIdentity);
  bytes[3] ^= 0x20;
  DecodedPage decoded = decode(bytes, page);
  EXPECT_FALSE(decoded);
  EXPECT_EQ(decoded.fault, PageFault::BadMagic);
  EXPECT_NE(decoded.reason.find("magic"), std::string::npos) << decoded.reason;
}

TEST(Page, UnsupportedVersion) {
  Page page = testPage(1, 64);
  std::vector<uint8_t> bytes = encodePage(page, kTestIdentity);
  bytes[8] = 2; // format version 2
  DecodedPage decoded = decode(bytes, page);
  EXPECT_FALSE(decoded);
  EXPECT_EQ(decoded.fault, PageFault::UnsupportedVersion);
  EXPECT_NE(decoded.reason.find("version 2"), std::string::npos) << decoded.reason;
}

TEST(Page, ForeignArtifact) {
  Page page = testPage(1, 64);
  std::vector<uint8_t> bytes = encodePage(page, "another-artifact");
  DecodedPage decoded = decode(bytes, page);
  EXPECT_FALSE(decoded);
  EXPECT_EQ(decoded.fault, PageFault::ForeignArtifact);
  EXPECT_NE(decoded.reason.find("another-artifact"), std::string::npos) << decoded.reason;
}

TEST(Page, KeyMismatch) {
  Page page = testPage(1, 64);
  std::vector<uint8_t> bytes = encodePage(page, kTestIdentity);
  PageKey other = test::testKey(2);
  DecodedPage decoded = decodePage(bytes.data(), bytes.size(), kTestIdentity, other);
  EXPECT_FALSE(decoded);
  EXPECT_EQ(decoded.fault, PageFault::KeyMismatch);
  EXPECT_NE(decoded.reason.find(other.hex()), std::string::npos) << decoded.reason;
}

TEST(Page, PayloadChecksumMismatch) {
  Page page = testPage(1, 4096);
  std::vector<uint8_t> bytes = encodePage(page, kTestIdentity);
  bytes[bytes.size() - 100] ^= 0x01;
  DecodedPage decoded = decode(bytes, page);
  EXPECT_FALSE(decoded);
  EXPECT_EQ(decoded.fault, PageFault::PayloadChecksumMismatch);
}

TEST(Page, TrailingBytes) {
  Page page = testPage(1, 64);
  std::vector<uint8_t> bytes = encodePage(page, kTestIdentity);
  bytes.push_back(0);
  DecodedPage decoded = decode(bytes, page);
  EXPECT_FALSE(decoded);
  EXPECT_EQ(decoded.fault, PageFault::TrailingBytes);
}

TEST(Page, EveryHeaderByteFlipIsAMiss) {
  Page page = testPage(4, 128);
  std::vector<uint8_t> bytes = encodePage(page, kTestIdentity);
  size_t headerBytes = pageHeaderSize(kTestIdentity);
  for (size_t at = 0; at < headerBytes; ++at) {
    std::vector<uint8_t> damaged = bytes;
    damaged[at] ^= 0x10;
    DecodedPage decoded = decode(damaged, page);
    EXPECT_FALSE(decoded) << "flipped header byte " << at;
    EXPECT_NE(decoded.fault, PageFault::None);
  }
  // A flip in the page-index field is caught by the header checksum.
  std::vector<uint8_t> damaged = bytes;
  damaged[16 + std::strlen(kTestIdentity) + 32] ^= 0x01;
  EXPECT_EQ(decode(damaged, page).fault, PageFault::HeaderChecksumMismatch);
}

TEST(Page, FaultNamesAreDistinct) {
  EXPECT_STREQ(pageFaultName(PageFault::Truncated), "truncated");
  EXPECT_STREQ(pageFaultName(PageFault::ForeignArtifact), "foreign artifact");
  EXPECT_STREQ(pageFaultName(PageFault::PayloadChecksumMismatch), "payload checksum mismatch");
}

TEST(Page, OverlongIdentityIsAnError) {
  EXPECT_THROW(encodePage(testPage(0, 8), std::string(kMaxIdentityBytes + 1, 'x')), v4c::Error);
}

} // namespace
} // namespace v4rt::kvcache
