// Schema minor 1: device modules, per-step launch dims and dummy weights
// (no bytes in the file) round-trip, and the reader rejects inconsistent ones.
#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/Error.h"
#include "runtime/artifact/ArtifactFormat.h"
#include "runtime/artifact/ArtifactReader.h"
#include "runtime/artifact/ArtifactTestSupport.h"
#include "runtime/artifact/ArtifactWriter.h"
#include "runtime/artifact/v4a_generated.h"

namespace v4rt {
namespace {

using namespace testing_support;
using ::testing::HasSubstr;

class ArtifactCudaTest : public ::testing::Test {
protected:
  ScratchDir dir;
  std::string path = dir.file("model.v4a").string();

  // sampleProgram() for sm_90a: one module, generated entries, launch dims,
  // and weights 0 and 3 generated from recipes.
  static Program cudaProgram() {
    Program program = sampleProgram();
    program.target = "sm_90a";
    program.modules = {{"sm_90a", {0x7f, 'E', 'L', 'F', 2, 1, 1, 0x33}}};
    for (Kernel &kernel : program.kernels) {
      kernel.binary.clear();
      kernel.module = 0;
    }
    uint32_t x = 1;
    for (Bucket &bucket : program.buckets)
      for (Step &step : bucket.steps) {
        step.grid[0] = x++, step.grid[1] = 3, step.grid[2] = 1;
        step.block[0] = 128, step.block[1] = 2, step.block[2] = 1;
        step.sharedBytes = 1024 * x;
      }
    program.dummySeed = 0x1234567890abcdefull;
    program.weights[0].dummy = {DummyKind::Uniform, 0.25f, 0};
    program.weights[3].dummy = {DummyKind::IntModulo, 0.0f, 3};
    return program;
  }
};

TEST_F(ArtifactCudaTest, ModulesLaunchDimsAndDummyWeightsRoundTrip) {
  Program program = cudaProgram();
  const std::vector<std::vector<uint8_t>> payloads = samplePayloads(program);
  writeArtifact(path, program, payloadSource(payloads));
  auto artifact = Artifact::open(path);
  const Program &read = artifact->program();

  Program expected = program; // the writer fills sizes, offsets, checksums
  for (size_t i = 0; i < expected.weights.size(); ++i) {
    expected.weights[i].size = read.weights[i].size;
    expected.weights[i].offset = read.weights[i].offset;
    expected.weights[i].checksum = read.weights[i].checksum;
  }
  EXPECT_TRUE(read == expected);
  EXPECT_EQ(read.buckets[1].steps[0].grid[0], program.buckets[1].steps[0].grid[0]);
  // Dummy weights keep their logical size but have no bytes in the file.
  EXPECT_EQ(read.weights[0].size, 10u * 16 * 4);
  EXPECT_EQ(read.weights[0].offset, 0u);
  EXPECT_EQ(read.weights[0].checksum, 0u);
  EXPECT_EQ(read.weights[0].data, nullptr);
  EXPECT_EQ(read.weights[3].data, nullptr);
  ASSERT_NE(read.weights[1].data, nullptr);
  EXPECT_EQ(std::memcmp(read.weights[1].data, payloads[1].data(), payloads[1].size()), 0);
  // The blob holds weights 1 and 2 only: two 4096-aligned slots.
  const uint64_t blobEnd = read.weights[2].offset + read.weights[2].size;
  EXPECT_EQ(artifact->fileSize(), blobEnd);
  EXPECT_LE(artifact->fileSize(), read.weights[1].offset + 4096 + 91);
}

TEST_F(ArtifactCudaTest, WriterRejectsInconsistentCudaPrograms) {
  Program program = cudaProgram();
  const auto payloads = samplePayloads(program);
  auto write = [&](const Program &candidate) { writeArtifact(path, candidate, payloadSource(payloads)); };

  Program noModule = program;
  noModule.modules.clear();
  EXPECT_THAT(errorOf([&] { write(noModule); }),
              HasSubstr("target \"sm_90a\" needs exactly one device module, the program has 0"));

  Program emptyCubin = program;
  emptyCubin.modules[0].binary.clear();
  EXPECT_THAT(errorOf([&] { write(emptyCubin); }), HasSubstr("module 0 has an empty cubin"));

  Program wrongTarget = program;
  wrongTarget.modules[0].target = "sm_80";
  EXPECT_THAT(errorOf([&] { write(wrongTarget); }),
              HasSubstr("module 0 is compiled for \"sm_80\" but the program's target is \"sm_90a\""));

  Program badIndex = program;
  badIndex.kernels[2].module = 1;
  EXPECT_THAT(errorOf([&] { write(badIndex); }),
              HasSubstr("kernel 2 \"fused_linear_0\": module index 1 is out of range (the program has 1)"));

  Program zeroDims = program;
  zeroDims.buckets[0].steps[1].block[1] = 0;
  EXPECT_THAT(errorOf([&] { write(zeroDims); }), HasSubstr("step 1: launch dimensions grid ("));

  Program cpuWithModule = program;
  cpuWithModule.target = "cpu";
  EXPECT_THAT(errorOf([&] { write(cpuWithModule); }),
              HasSubstr("a cpu program must not carry device modules (it has 1)"));

  Program badRecipe = program;
  badRecipe.weights[1].dummy = {DummyKind::IntModulo, 0.0f, 4}; // bf16 weight, integer recipe
  EXPECT_THAT(errorOf([&] { write(badRecipe); }), HasSubstr("dummy recipe kind 3 cannot fill dtype"));
}

TEST_F(ArtifactCudaTest, ReaderRejectsCraftedModuleIndexAndDummyKind) {
  Program program = cudaProgram();
  writeArtifact(path, program, payloadSource(samplePayloads(program)));
  patchManifest(path, [](uint8_t *manifest, size_t) {
    fb::GetMutableProgram(manifest)->mutable_kernels()->GetMutableObject(1)->mutate_module_index(7);
  });
  EXPECT_THAT(errorOf([&] { Artifact::open(path); }),
              HasSubstr("kernel 1 \"test.rms_norm\": module index 7 is out of range"));

  writeArtifact(path, program, payloadSource(samplePayloads(program)));
  patchManifest(path, [](uint8_t *manifest, size_t) {
    fb::GetMutableProgram(manifest)->mutable_weights()->GetMutableObject(0)->mutate_dummy_kind(99);
  });
  EXPECT_THAT(errorOf([&] { Artifact::open(path); }),
              HasSubstr("weight \"embed.weight\": unknown dummy recipe kind 99"));

  // A real weight whose recipe is cleared must have file bytes: offset 0 is not in the blob.
  writeArtifact(path, program, payloadSource(samplePayloads(program)));
  patchManifest(path, [](uint8_t *manifest, size_t) {
    fb::GetMutableProgram(manifest)->mutable_weights()->GetMutableObject(0)->mutate_dummy_kind(0);
  });
  EXPECT_THAT(errorOf([&] { Artifact::open(path); }), HasSubstr("weight \"embed.weight\" offset 0"));
}

} // namespace
} // namespace v4rt
