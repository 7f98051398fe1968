#include "runtime/kvcache/PageKey.h"

#include <algorithm>

#include "common/Error.h"

#include <gtest/gtest.h>
#include <openssl/sha.h>

namespace v4rt::kvcache {
namespace {

constexpr size_t kPage = 128;

std::vector<int32_t> promptTokens(size_t count) {
  std::vector<int32_t> tokens(count);
  for (size_t i = 0; i < count; ++i)
    tokens[i] = static_cast<int32_t>((i * 7919 + 13) % 129280);
  return tokens;
}

// Independent construction of the documented message, hashed with SHA256().
PageKey referenceKey(const std::vector<uint8_t> &previous, const std::vector<int32_t> &tokens,
                     const std::string &identity, const std::string &salt) {
  std::vector<uint8_t> message;
  auto appendU64 = [&](uint64_t value) {
    for (int i = 0; i < 8; ++i)
      message.push_back(static_cast<uint8_t>(value >> (8 * i)));
  };
  auto appendText = [&](const std::string &text) {
    appendU64(text.size());
    message.insert(message.end(), text.begin(), text.end());
  };
  appendText("v4c.kvcache.page-key.v1");
  message.insert(message.end(), previous.begin(), previous.end());
  appendText(identity);
  appendText(salt);
  appendU64(tokens.size());
  for (int32_t token : tokens) {
    uint32_t bits = static_cast<uint32_t>(token);
    for (int i = 0; i < 4; ++i)
      message.push_back(static_cast<uint8_t>(bits >> (8 * i)));
  }
  PageKey key;
  SHA256(message.data(), message.size(), key.bytes.data());
  return key;
}

TEST(PageKey, FirstPageMatchesIndependentSha256OfTheDocumentedMessage) {
  std::vector<int32_t> tokens = {1, -2, 70000, 0x7fffffff, -2147483647 - 1};
  PageKey key = chainKey(nullptr, tokens.data(), tokens.size(), "artifact-id", "tenant");
  EXPECT_EQ(key, referenceKey(std::vector<uint8_t>(32, 0), tokens, "artifact-id", "tenant"));
}

TEST(PageKey, ChainedPageMatchesIndependentSha256WithThePreviousKey) {
  std::vector<int32_t> first = promptTokens(kPage);
  std::vector<int32_t> second(first.rbegin(), first.rend());
  PageKey previous = chainKey(nullptr, first.data(), first.size(), "id", "");
  PageKey key = chainKey(&previous, second.data(), second.size(), "id", "");
  std::vector<uint8_t> previousBytes(previous.bytes.begin(), previous.bytes.end());
  EXPECT_EQ(key, referenceKey(previousBytes, second, "id", ""));
}

TEST(PageKey, PinnedVectorsComputedWithPythonHashlib) {
  // Computed once outside C++ (python3 hashlib + struct.pack('<Q'/'<i')) and
  // pinned, so neither the construction nor its encoding can drift.
  PageKey empty = chainKey(nullptr, nullptr, 0, "", "");
  EXPECT_EQ(empty.hex(), "0c99f27717731021684be69c84eacc6abb56e12e36b20f56602caa575694f9e5");
  std::vector<int32_t> first = {1, -2, 70000}, second = {5, 6};
  PageKey key1 = chainKey(nullptr, first.data(), first.size(), "id", "s");
  PageKey key2 = chainKey(&key1, second.data(), second.size(), "id", "s");
  EXPECT_EQ(key1.hex(), "88d04d57fea20c2049fb553fcbce4116b131c2e7a3f18595662258b4834d705c");
  EXPECT_EQ(key2.hex(), "f2dd55eb01260b22a75a909f360a3acc1805bd02447100179a54c6b03af2105f");
}

TEST(PageKey, SameInputGivesSameKeys) {
  std::vector<int32_t> tokens = promptTokens(5 * kPage);
  EXPECT_EQ(prefixKeys(tokens.data(), tokens.size(), kPage, "id", "salt"),
            prefixKeys(tokens.data(), tokens.size(), kPage, "id", "salt"));
}

TEST(PageKey, PrefixKeysCoverOnlyCompletePagesAndChain) {
  std::vector<int32_t> tokens = promptTokens(3 * kPage + 77);
  std::vector<PageKey> keys = prefixKeys(tokens.data(), tokens.size(), kPage, "id", "");
  ASSERT_EQ(keys.size(), 3u);
  EXPECT_EQ(keys[0], chainKey(nullptr, tokens.data(), kPage, "id", ""));
  EXPECT_EQ(keys[1], chainKey(&keys[0], tokens.data() + kPage, kPage, "id", ""));
  EXPECT_EQ(keys[2], chainKey(&keys[1], tokens.data() + 2 * kPage, kPage, "id", ""));
  EXPECT_TRUE(prefixKeys(tokens.data(), kPage - 1, kPage, "id", "").empty());
  // A longer prompt with the same start shares the leading keys.
  std::vector<int32_t> longer = promptTokens(6 * kPage);
  std::vector<PageKey> longerKeys = prefixKeys(longer.data(), longer.size(), kPage, "id", "");
  ASSERT_EQ(longerKeys.size(), 6u);
  EXPECT_TRUE(std::equal(keys.begin(), keys.end(), longerKeys.begin()));
}

TEST(PageKey, ChangingAnEarlierTokenChangesThatKeyAndEveryLaterOne) {
  std::vector<int32_t> tokens = promptTokens(6 * kPage);
  std::vector<PageKey> base = prefixKeys(tokens.data(), tokens.size(), kPage, "id", "");
  tokens[2 * kPage + 5] += 1; // inside page 2
  std::vector<PageKey> changed = prefixKeys(tokens.data(), tokens.size(), kPage, "id", "");
  EXPECT_EQ(changed[0], base[0]);
  EXPECT_EQ(changed[1], base[1]);
  for (size_t page = 2; page < base.size(); ++page)
    EXPECT_NE(changed[page], base[page]) << "page " << page;
}

TEST(PageKey, SaltAndIdentityChangeEveryKey) {
  std::vector<int32_t> tokens = promptTokens(4 * kPage);
  std::vector<PageKey> base = prefixKeys(tokens.data(), tokens.size(), kPage, "id", "");
  std::vector<PageKey> salted = prefixKeys(tokens.data(), tokens.size(), kPage, "id", "tenant-7");
  std::vector<PageKey> foreign = prefixKeys(tokens.data(), tokens.size(), kPage, "id2", "");
  for (size_t page = 0; page < base.size(); ++page) {
    EXPECT_NE(salted[page], base[page]) << "page " << page;
    EXPECT_NE(foreign[page], base[page]) << "page " << page;
    EXPECT_NE(salted[page], foreign[page]) << "page " << page;
  }
}

TEST(PageKey, LengthPrefixesKeepIdentityAndSaltApart) {
  // Without length prefixes ("ab","c") and ("a","bc") would hash the same bytes.
  std::vector<int32_t> tokens = promptTokens(8);
  EXPECT_NE(chainKey(nullptr, tokens.data(), tokens.size(), "ab", "c"),
            chainKey(nullptr, tokens.data(), tokens.size(), "a", "bc"));
}

TEST(PageKey, HexRoundTripsAndRejectsBadText) {
  std::vector<int32_t> tokens = promptTokens(kPage);
  PageKey key = chainKey(nullptr, tokens.data(), tokens.size(), "id", "");
  std::string hex = key.hex();
  ASSERT_EQ(hex.size(), 64u);
  EXPECT_EQ(hex.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(PageKey::fromHex(hex), key);
  EXPECT_FALSE(PageKey::fromHex(hex.substr(1)));
  EXPECT_FALSE(PageKey::fromHex(hex.substr(0, 63) + "g"));
}

TEST(PageKey, RejectsAZeroPageSize) {
  std::vector<int32_t> tokens = promptTokens(4);
  EXPECT_THROW(prefixKeys(tokens.data(), tokens.size(), 0, "id", ""), v4c::Error);
}

} // namespace
} // namespace v4rt::kvcache
