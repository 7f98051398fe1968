// The tiny-mixed program with one step's shape or attribute damaged the way a
// resealed manifest can be: each used to reach the CPU kernels and crash
// (or throw std::out_of_range); each must now be refused by checkProgram, and
// so by Artifact::open, with one line naming the step.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <memory>

#include "common/Error.h"
#include "runtime/TestArtifacts.h"
#include "runtime/artifact/ArtifactReader.h"
#include "runtime/artifact/ArtifactWriter.h"
#include "runtime/artifact/ProgramCheck.h"

namespace v4rt {
namespace {

// The compiled tiny-mixed artifact, open for the whole test process (its
// program's weights point into the mapping).
const Artifact &tinyMixed(const std::string &options = "--target cpu") {
  static std::map<std::string, std::unique_ptr<Artifact>> opened;
  std::unique_ptr<Artifact> &artifact = opened[options];
  if (!artifact)
    artifact = Artifact::open(test::compiledConformanceCase("tiny-mixed", options));
  return *artifact;
}

// checkProgram's message, or "accepted".
std::string verdict(const Program &program) {
  try {
    artifact::checkProgram(program);
  } catch (const v4c::Error &error) {
    return error.what();
  }
  return "accepted";
}

class StepContractsTest : public ::testing::Test {
protected:
  void SetUp() override { program = tinyMixed().program(); }

  // The first step of `kernel` in the prefill bucket; `index` gets its position.
  Step &firstStep(const std::string &kernel) {
    Bucket &bucket = prefill();
    for (size_t s = 0; s < bucket.steps.size(); ++s)
      if (program.kernels[bucket.steps[s].kernel].name == kernel) {
        index = s;
        return bucket.steps[s];
      }
    throw v4c::Error("tiny-mixed has no " + kernel + " step");
  }
  Bucket &prefill() {
    for (Bucket &bucket : program.buckets)
      if (bucket.kind == BucketKind::Prefill)
        return bucket;
    throw v4c::Error("tiny-mixed has no prefill bucket");
  }
  Attr &attr(Step &step, const std::string &name) {
    for (Attr &a : step.attrs)
      if (a.name == name)
        return a;
    throw v4c::Error("step has no attribute " + name);
  }
  // The message prefix naming the step found last.
  std::string where(const std::string &kernel) const {
    return "bucket \"prefill_64\" step " + std::to_string(index) + " (" + kernel + "): ";
  }

  Program program;
  size_t index = 0;
};

TEST_F(StepContractsTest, TheCompiledProgramsKeepEveryContract) {
  EXPECT_EQ(verdict(program), "accepted");
  for (const char *options : {"--target cpu --precision fp8 --experts fp4 --kv-cache fp8",
                              "--target cpu --no-fuse --kv-cache bf16 --decode-batch 1,4"})
    EXPECT_EQ(verdict(tinyMixed(options).program()), "accepted") << options;
}

TEST_F(StepContractsTest, LinearRowWidthMustMatchTheWeight) {
  Step &step = firstStep("v4.linear");
  const int64_t K = step.ins[0].shape[1];
  step.ins[0].shape[1] = 191; // a flipped low byte: reads past the weight
  EXPECT_EQ(verdict(program), where("v4.linear") + "weight has shape [64, " + std::to_string(K) +
                                  "], the op needs [64, 191]");
}

TEST_F(StepContractsTest, EmbedTableMustNotBeACacheSlot) {
  Step &step = firstStep("v4.embed");
  step.ins[1].kind = ArgKind::Cache; // the kernel would read a CacheBuffer as the table
  step.ins[1].index = 0;
  EXPECT_EQ(verdict(program), where("v4.embed") + "table must be a tensor, not cache slot 0");
}

TEST_F(StepContractsTest, RopeDimMustFitTheHead) {
  Step &step = firstStep("v4.rope");
  attr(step, "rope_dim").ints = {200}; // ropeVector would rotate past the head and inv_freq
  EXPECT_EQ(verdict(program), where("v4.rope") + "attribute 'rope_dim' is 200, outside [0, 32]");
}

TEST_F(StepContractsTest, RopeNeedsHalfRopeDimFrequencies) {
  Step &step = firstStep("v4.rope");
  attr(step, "inv_freq").floats.pop_back();
  EXPECT_EQ(verdict(program), where("v4.rope") + "attribute 'inv_freq' holds 1 floats, the op needs 2");
}

TEST_F(StepContractsTest, HcPostStreamsMustHoldHcCopies) {
  Step &step = firstStep("v4.hc_post");
  attr(step, "hc").ints = {8}; // hcPost would read 8 streams of 4
  EXPECT_EQ(verdict(program), where("v4.hc_post") + "streams has shape [64, 256], the op needs [64, 512]");
}

TEST_F(StepContractsTest, MoeWeightsAndExpertsMustAgreeOnTopK) {
  Step &step = firstStep("v4.moe");
  step.ins[1].shape[1] = 4; // top-k 4 over experts [64, 2]: garbage expert ids
  EXPECT_EQ(verdict(program), where("v4.moe") + "experts has shape [64, 2], the op needs [64, 4]");
}

TEST_F(StepContractsTest, MoeDownProjectionMustMatchGateUp) {
  Step &step = firstStep("v4.moe");
  step.ins[3].shape = {16, 48, 64}; // same bytes, twice the experts
  EXPECT_EQ(verdict(program), where("v4.moe") + "down has shape [8, 64, 48], the op needs [16, 64, 24]");
}

TEST_F(StepContractsTest, HashRouterTableMustBeRankTwo) {
  Step &step = firstStep("v4.hash_router");
  step.ins[2].shape = {1024}; // inDim(2, 1) used to throw std::out_of_range
  EXPECT_EQ(verdict(program), where("v4.hash_router") + "tid2eid has shape [1024], the op needs rank 2");
}

TEST_F(StepContractsTest, AttentionHeadsMustMatchQ) {
  Step &step = firstStep("v4.attention");
  attr(step, "num_heads").ints = {5};
  EXPECT_EQ(verdict(program), where("v4.attention") + "q has shape [64, 128], the op needs [64, 160]");
}

TEST_F(StepContractsTest, AttentionWindowMustBeTheCacheRows) {
  Step &step = firstStep("v4.attention");
  attr(step, "window").ints = {9};
  EXPECT_EQ(verdict(program),
            where("v4.attention") + "window is cache slot \"layers.0.window\" of 8 rows, the op's window is 9");
}

TEST_F(StepContractsTest, TopKMustNotExceedTheExperts) {
  Step &step = firstStep("v4.router");
  attr(step, "top_k").ints = {9};
  EXPECT_EQ(verdict(program), where("v4.router") + "attribute 'top_k' is 9, outside [1, 8]");
}

TEST_F(StepContractsTest, CompressStateMustBeACompressStateSlot) {
  Step &step = firstStep("v4.linear_compress");
  step.ins[6].index = 0; // the layer-0 window cache
  EXPECT_EQ(verdict(program), where("v4.linear_compress") +
                                  "state is cache slot \"layers.0.window\", not a compress-state cache");
}

TEST_F(StepContractsTest, InputSlotsAreNotActivationRows) {
  Step &step = firstStep("v4.linear");
  step.ins[0].kind = ArgKind::Input; // x would be read from the 64 token ids
  step.ins[0].index = 0;
  EXPECT_EQ(verdict(program), where("v4.linear") + "x is input \"ids\" of shape [64], the step reads it as f32[64, 32]");
}

TEST_F(StepContractsTest, PositionsMustBeTheProgramInput) {
  Step &step = firstStep("v4.cache_append");
  step.ins[2].kind = ArgKind::Arena; // arena bytes as positions: ring slots far outside the cache
  step.ins[2].offset = 0;
  EXPECT_EQ(verdict(program), where("v4.cache_append") + "positions must be the program's \"positions\" input");
}

TEST_F(StepContractsTest, LogitsMustBeTokensByVocab) {
  Bucket &bucket = prefill();
  Step &step = bucket.steps.back();
  index = bucket.steps.size() - 1;
  ASSERT_EQ(step.outs[0].kind, ArgKind::Output);
  step.outs[0].shape = {32, 1024}; // same bytes, half the rows
  EXPECT_EQ(verdict(program), where("v4.norm_linear") + "result 0 has shape [32, 1024], the op needs [64, 512]");
}

TEST_F(StepContractsTest, MissingAttributeIsNamedWithItsStep) {
  Step &step = firstStep("v4.rms_norm");
  attr(step, "group").name = "groupp";
  EXPECT_EQ(verdict(program), where("v4.rms_norm") + "is missing attribute 'group'");
}

// What v4run sees: the reader refuses the resealed file, naming it.
TEST_F(StepContractsTest, ArtifactOpenRefusesABrokenContract) {
  Step &step = firstStep("v4.linear");
  step.ins[0].shape[1] = 191;
  const std::string path = std::string(TEST_SCRATCH_DIR) + "/broken-contract.v4a";
  WriteOptions options;
  options.validate = false;
  writeArtifact(path, program, nullptr, options);
  try {
    Artifact::open(path);
    ADD_FAILURE() << "opened an artifact whose step breaks its contract";
  } catch (const v4c::Error &error) {
    EXPECT_EQ(std::string(error.what()),
              path + ": " + where("v4.linear") + "weight has shape [64, 32], the op needs [64, 191]");
  }
  std::filesystem::remove(path);
}

} // namespace
} // namespace v4rt
