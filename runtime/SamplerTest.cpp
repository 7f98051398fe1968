// Greedy picks the argmax; sampling is reproducible per seed and stays
// inside the top-p nucleus.
#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "common/Error.h"
#include "runtime/Sampler.h"

namespace v4rt {
namespace {

TEST(Sampler, GreedyTakesArgmaxAndLowestIdOnTies) {
  const std::vector<float> logits = {0.5f, 3.0f, 3.0f, -1.0f};
  Sampler sampler(SamplingOptions{});
  EXPECT_EQ(sampler.next(logits.data(), 4), 1);
}

TEST(Sampler, SameSeedSameTokens) {
  const std::vector<float> logits = {1.0f, 1.1f, 0.9f, 1.05f, 0.2f};
  SamplingOptions options{1.0, 1.0, 42};
  Sampler a(options), b(options);
  std::vector<int32_t> first, second;
  for (int i = 0; i < 50; ++i) {
    first.push_back(a.next(logits.data(), 5));
    second.push_back(b.next(logits.data(), 5));
  }
  EXPECT_EQ(first, second);
  EXPECT_GT(std::set<int32_t>(first.begin(), first.end()).size(), 2u);
}

TEST(Sampler, TopPKeepsOnlyTheNucleus) {
  // Probabilities ~ 0.64, 0.24, 0.09, 0.03: top-p 0.8 keeps ids 0 and 1.
  const std::vector<float> logits = {3.0f, 2.0f, 1.0f, 0.0f};
  Sampler sampler(SamplingOptions{1.0, 0.8, 7});
  for (int i = 0; i < 200; ++i) {
    const int32_t id = sampler.next(logits.data(), 4);
    EXPECT_TRUE(id == 0 || id == 1) << id;
  }
}

TEST(Sampler, RejectsBadOptions) {
  EXPECT_THROW(Sampler(SamplingOptions{-1.0, 1.0, 0}), v4c::Error);
  EXPECT_THROW(Sampler(SamplingOptions{1.0, 0.0, 0}), v4c::Error);
  EXPECT_THROW(Sampler(SamplingOptions{1.0, 1.5, 0}), v4c::Error);
}

} // namespace
} // namespace v4rt
