// Round trip, identity, atomic replacement, crafted-invalid manifests and a
// weight beyond 4 GiB (sparse file) for the .v4a writer and reader.
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <xxhash.h>

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

class ArtifactTest : public ::testing::Test {
protected:
  Program program = sampleProgram();
  std::vector<std::vector<uint8_t>> payloads = samplePayloads(program);
  ScratchDir dir;
  std::string path = dir.file("model.v4a").string();

  void writeSample(const WriteOptions &options = {}) {
    writeArtifact(path, program, payloadSource(payloads), options);
  }
};

TEST_F(ArtifactTest, RoundTripPreservesEveryField) {
  // Weight 1 comes from a data pointer, the others from the callback.
  program.weights[1].data = payloads[1].data();
  writeSample();
  auto artifact = Artifact::open(path);
  const Program &read = artifact->program();

  EXPECT_EQ(read.target, "cpu");
  EXPECT_EQ(read.configJson, program.configJson);
  EXPECT_EQ(read.compileOptions, program.compileOptions);
  ASSERT_EQ(read.buckets.size(), 2u);
  EXPECT_TRUE(read.buckets[0] == program.buckets[0]);
  EXPECT_TRUE(read.buckets[1] == program.buckets[1]);
  EXPECT_EQ(read.buckets[1].kind, BucketKind::Decode);
  ASSERT_EQ(read.buckets[0].steps.size(), 3u);
  EXPECT_EQ(read.buckets[0].steps[2].attrs[1].floats,
            (std::vector<double>{1.0, 0.5, 0.25, -2.5e-300}));
  EXPECT_EQ(read.buckets[0].steps[2].attrs[1].ints, (std::vector<int64_t>{-3, 0, 7}));
  EXPECT_EQ(read.buckets[0].steps[2].attrs[0].str, "window+compressed");
  EXPECT_EQ(read.buckets[0].steps[2].outs[1].kind, ArgKind::Cache);
  EXPECT_EQ(read.buckets[0].steps[2].outs[1].index, 2u);
  EXPECT_EQ(read.buckets[0].steps[2].outs[2].offset, 512u);
  EXPECT_TRUE(read.kernels == program.kernels);
  EXPECT_EQ(read.kernels[2].binary, (std::vector<uint8_t>{0x7f, 'E', 'L', 'F', 0x00, 0x01, 0xfe}));
  EXPECT_TRUE(read.caches == program.caches);
  EXPECT_EQ(read.caches[2].rate, 4);
  EXPECT_TRUE(read.inputs == program.inputs);
  EXPECT_TRUE(read.outputs == program.outputs);

  ASSERT_EQ(read.weights.size(), 4u);
  const std::vector<uint64_t> expectedSizes = {640, 256, 91, 240};
  uint64_t previousEnd = 0;
  for (size_t i = 0; i < read.weights.size(); ++i) {
    const Weight &weight = read.weights[i];
    EXPECT_EQ(weight.name, program.weights[i].name);
    EXPECT_EQ(weight.dtype, program.weights[i].dtype);
    EXPECT_EQ(weight.shape, program.weights[i].shape);
    EXPECT_EQ(weight.size, expectedSizes[i]);
    EXPECT_EQ(weight.offset % 4096, 0u) << weight.name;
    EXPECT_GE(weight.offset, previousEnd);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(weight.data) % 4096, 0u) << weight.name;
    EXPECT_EQ(weight.checksum, XXH3_64bits(payloads[i].data(), payloads[i].size()));
    ASSERT_NE(weight.data, nullptr);
    EXPECT_EQ(std::memcmp(weight.data, payloads[i].data(), weight.size), 0) << weight.name;
    previousEnd = weight.offset + weight.size;
  }
  EXPECT_EQ(artifact->fileSize(), previousEnd); // the file ends with the last weight
  EXPECT_EQ(artifact->fileSize(), std::filesystem::file_size(path));
}

TEST_F(ArtifactTest, ProgramWithoutWeightsOrBucketsRoundTrips) {
  Program minimal;
  minimal.target = "sm_90a";
  minimal.modules = {{"sm_90a", {0x7f, 'E', 'L', 'F'}}}; // a CUDA program carries its module
  writeArtifact(path, minimal, nullptr);
  auto artifact = Artifact::open(path);
  EXPECT_TRUE(artifact->program() == minimal);
  EXPECT_EQ(artifact->fileSize(), 4096u); // header + manifest, padded to the (empty) blob
}

TEST_F(ArtifactTest, IdentityIsTheManifestSha256) {
  writeSample();
  const std::string identity = Artifact::open(path)->identity();
  ASSERT_EQ(identity.size(), 64u);
  EXPECT_EQ(identity.find_first_not_of("0123456789abcdef"), std::string::npos);

  // Recompute it from the file: sha256 over [64, 64 + manifestSize).
  const std::vector<uint8_t> bytes = readBytes(path);
  const artifact::FileHeader header = artifact::decodeHeader(bytes.data());
  EXPECT_EQ(identity, artifact::toHex(artifact::sha256(bytes.data() + 64, header.manifestSize)));

  writeSample(); // same program, same identity
  EXPECT_EQ(Artifact::open(path)->identity(), identity);
  program.buckets[0].arenaBytes += 4096; // different program, different identity
  writeSample();
  EXPECT_NE(Artifact::open(path)->identity(), identity);
}

TEST_F(ArtifactTest, WriterReplacesAtomicallyAndLeavesNoTempFile) {
  writeSample();
  const std::string firstIdentity = Artifact::open(path)->identity();
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"model.v4a"});

  // A source that fails midway: the old artifact stays intact, no temp file.
  auto failing = [](size_t index, uint8_t *, size_t) {
    if (index == 2)
      throw v4c::Error("checkpoint shard missing");
  };
  program.target = "sm_90a";
  program.modules = {{"sm_90a", {0x7f, 'E', 'L', 'F'}}};
  const std::string message = errorOf([&] { writeArtifact(path, program, failing); });
  EXPECT_THAT(message, HasSubstr("checkpoint shard missing"));
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"model.v4a"});
  EXPECT_EQ(Artifact::open(path)->identity(), firstIdentity);

  // A successful rewrite replaces the file in one step.
  writeSample();
  auto replaced = Artifact::open(path);
  EXPECT_EQ(replaced->program().target, "sm_90a");
  EXPECT_NE(replaced->identity(), firstIdentity);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"model.v4a"});
}

TEST_F(ArtifactTest, WriterRejectsInvalidProgramsBeforeCreatingFiles) {
  program.buckets[1].steps[0].outs[0].offset = 4096 - 64; // 128 bytes from here overflow
  EXPECT_THAT(errorOf([&] { writeSample(); }),
              HasSubstr("bucket \"decode_2\" step 0 output 0: arena bytes [4032, +128) exceed "
                        "the bucket's arena of 4096 bytes"));
  program = sampleProgram();
  program.weights[2].size = 92; // shape [7,13] f8 needs 91
  EXPECT_THAT(errorOf([&] { writeSample(); }),
              HasSubstr("has size 92 but its shape and dtype need 91 bytes"));
  program = sampleProgram();
  EXPECT_THAT(errorOf([&] { writeArtifact(path, program, nullptr); }),
              HasSubstr("has no data pointer and no weight source"));
  EXPECT_TRUE(dir.entries().empty());
}

// Kernels loop on integer attributes and index `ins` by operandSegmentSizes:
// neither may carry a value no compiler writes.
TEST_F(ArtifactTest, WriterAndReaderRejectImplausibleAttributes) {
  program.buckets[1].steps[0].attrs[0].ints = {int64_t{1} << 40}; // top_k
  EXPECT_THAT(errorOf([&] { writeSample(); }),
              HasSubstr("bucket \"decode_2\" step 0: attribute \"top_k\" holds 1099511627776, outside "
                        "[-1048576, 1048576] (file corrupted?)"));
  program = sampleProgram();
  program.buckets[0].steps[1].attrs[1].ints = {-(int64_t{1} << 20)}; // the bound itself is fine
  writeSample();
  EXPECT_EQ(Artifact::open(path)->program().buckets[0].steps[1].attrs[1].ints[0], -(int64_t{1} << 20));

  WriteOptions unchecked;
  unchecked.validate = false;
  program = sampleProgram();
  program.buckets[0].steps[2].attrs.push_back({"operandSegmentSizes", {1, 2, 1}, {}, ""}); // 5 inputs
  writeSample(unchecked);
  EXPECT_EQ(errorOf([&] { Artifact::open(path); }),
            path + ": bucket \"prefill_4\" step 2: operandSegmentSizes add up to 4 operands but the step "
                   "has 5 inputs");
  program.buckets[0].steps[2].attrs.back().ints = {3, -1, 3};
  writeSample(unchecked);
  EXPECT_THAT(errorOf([&] { Artifact::open(path); }), HasSubstr("operandSegmentSizes holds a negative size -1"));
  program.buckets[0].steps[2].attrs.back().ints = {1, 0, 4};
  writeSample();
  EXPECT_EQ(Artifact::open(path)->program().buckets[0].steps[2].operandIndex(2), 1);
}

TEST_F(ArtifactTest, ReaderRejectsArenaArgumentPastArenaBytes) {
  program.buckets[0].steps[1].outs[0].offset = 1000; // [1000, +256) > 1024
  WriteOptions unchecked;
  unchecked.validate = false;
  writeSample(unchecked);
  EXPECT_EQ(errorOf([&] { Artifact::open(path); }),
            path + ": bucket \"prefill_4\" step 1 output 0: arena bytes [1000, +256) exceed the "
                   "bucket's arena of 1024 bytes");
}

TEST_F(ArtifactTest, ReaderRejectsOutOfRangeIndicesFromTheWriter) {
  WriteOptions unchecked;
  unchecked.validate = false;
  program.buckets[0].steps[0].ins[1].index = 4; // only 4 weights
  writeSample(unchecked);
  EXPECT_THAT(errorOf([&] { Artifact::open(path); }),
              HasSubstr("bucket \"prefill_4\" step 0 input 1: weight index 4 is out of range"));

  program = sampleProgram();
  program.buckets[1].steps[1].outs[0].index = 1; // only 1 output
  writeSample(unchecked);
  EXPECT_THAT(errorOf([&] { Artifact::open(path); }), HasSubstr("output index 1 is out of range"));

  program = sampleProgram();
  program.buckets[0].steps[2].ins[4].shape = {128, -16};
  writeSample(unchecked);
  EXPECT_THAT(errorOf([&] { Artifact::open(path); }), HasSubstr("negative dimension -16"));

  program = sampleProgram();
  program.caches[2].rate = 0;
  writeSample(unchecked);
  EXPECT_THAT(errorOf([&] { Artifact::open(path); }),
              HasSubstr("cache slot 2 \"layers.1.entries\": an entries cache needs a positive rate"));

  program = sampleProgram();
  program.buckets[0].steps[2].ins[1].shape = {9, 16}; // reads 288 bytes of a 256-byte weight
  writeSample(unchecked);
  EXPECT_THAT(errorOf([&] { Artifact::open(path); }),
              HasSubstr("reads 288 bytes of weight \"layers.0.attn.wq_a.weight\""));
}

// Edits that keep the manifest a valid flatbuffer with a correct sha256:
// only the reader's own index and layout checks can catch these.
TEST_F(ArtifactTest, ReaderRejectsCraftedManifests) {
  struct Case {
    const char *expected;
    std::function<void(fb::Program *)> edit;
  };
  const std::vector<Case> cases = {
      {"artifact schema version 2 is not supported by this runtime (supports 1)",
       [](fb::Program *p) { ASSERT_TRUE(p->mutate_schema_version(2)); }},
      {"bucket \"prefill_4\" step 1: kernel index 3 is out of range (the program has 3 kernels)",
       [](fb::Program *p) {
         ASSERT_TRUE(p->mutable_buckets()->GetMutableObject(0)->mutable_steps()->GetMutableObject(1)->mutate_kernel(3));
       }},
      {"is not 4096-aligned",
       [](fb::Program *p) {
         auto *w = p->mutable_weights()->GetMutableObject(1);
         ASSERT_TRUE(w->mutate_offset(w->offset() + 8));
       }},
      {"overlaps weight",
       [](fb::Program *p) {
         auto *weights = p->mutable_weights();
         ASSERT_TRUE(weights->GetMutableObject(2)->mutate_offset(weights->Get(1)->offset()));
       }},
      {"lie outside the file",
       [](fb::Program *p) {
         ASSERT_TRUE(p->mutable_weights()->GetMutableObject(3)->mutate_offset(uint64_t{1} << 40));
       }},
      {"lie outside the file",
       [](fb::Program *p) {
         // offset + size wraps around 2^64: must not pass as "inside".
         auto *w = p->mutable_weights()->GetMutableObject(0);
         ASSERT_TRUE(w->mutate_offset(~uint64_t{0} - 4095));
       }},
      {"lies before the weight blob",
       [](fb::Program *p) { ASSERT_TRUE(p->mutable_weights()->GetMutableObject(0)->mutate_offset(0)); }},
      {"has size 641 but its shape and dtype need 640 bytes",
       [](fb::Program *p) { ASSERT_TRUE(p->mutable_weights()->GetMutableObject(0)->mutate_size(641)); }},
      {"weight \"embed.weight\": unknown dtype code 7",
       [](fb::Program *p) {
         ASSERT_TRUE(p->mutable_weights()->GetMutableObject(0)->mutate_dtype(static_cast<fb::DType>(7)));
       }},
      {"unknown argument kind code 9",
       [](fb::Program *p) {
         auto *step = p->mutable_buckets()->GetMutableObject(1)->mutable_steps()->GetMutableObject(0);
         ASSERT_TRUE(step->mutable_ins()->GetMutableObject(0)->mutate_kind(static_cast<fb::ArgKind>(9)));
       }},
      {"shape is too large",
       [](fb::Program *p) {
         auto *step = p->mutable_buckets()->GetMutableObject(0)->mutable_steps()->GetMutableObject(0);
         auto *shape = step->mutable_outs()->GetMutableObject(0)->mutable_shape();
         ASSERT_EQ(shape->size(), 2u);
         shape->Mutate(0, int64_t{1} << 40);
         shape->Mutate(1, int64_t{1} << 40);
       }},
      {"cache slot 0 \"layers.0.window\": rows -128 must be positive",
       [](fb::Program *p) { ASSERT_TRUE(p->mutable_caches()->GetMutableObject(0)->mutate_rows(-128)); }},
      {"bucket \"decode_2\": batch 0 must be at least 1",
       [](fb::Program *p) { ASSERT_TRUE(p->mutable_buckets()->GetMutableObject(1)->mutate_batch(0)); }},
      {"checksum mismatch (file corrupted?)",
       [](fb::Program *p) {
         auto *w = p->mutable_weights()->GetMutableObject(3);
         ASSERT_TRUE(w->mutate_checksum(w->checksum() ^ 1));
       }},
  };
  for (const Case &testCase : cases) {
    SCOPED_TRACE(testCase.expected);
    writeSample();
    patchManifest(path, [&](uint8_t *manifest, size_t) { testCase.edit(fb::GetMutableProgram(manifest)); });
    const std::string message = errorOf([&] { Artifact::open(path); });
    EXPECT_THAT(message, HasSubstr(testCase.expected));
    EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos);
  }
}

TEST_F(ArtifactTest, ChecksumVerificationCanBeSkipped) {
  writeSample();
  std::vector<uint8_t> bytes = readBytes(path);
  const uint64_t offset = Artifact::open(path)->program().weights[2].offset;
  bytes[offset + 90] ^= 0x40; // last byte of the odd-sized weight
  writeBytes(path, bytes);
  EXPECT_EQ(errorOf([&] { Artifact::open(path); }),
            path + ": weight \"layers.0.ffn.w1.scale\" checksum mismatch (file corrupted?)");
  OpenOptions trusting;
  trusting.verifyChecksums = false;
  auto artifact = Artifact::open(path, trusting);
  EXPECT_EQ(artifact->program().weights[2].data[90], payloads[2][90] ^ 0x40);
}

TEST_F(ArtifactTest, MissingAndNonRegularFilesAreClearErrors) {
  EXPECT_THAT(errorOf([&] { Artifact::open(path); }), HasSubstr(path + ": cannot open: "));
  const std::string directory = dir.file("sub").string();
  std::filesystem::create_directory(directory);
  EXPECT_EQ(errorOf([&] { Artifact::open(directory); }), directory + ": not a regular file");
}

// True when `directory` stores a 1 GiB ftruncate'd file without blocks.
bool supportsSparseFiles(const std::filesystem::path &directory) {
  const std::string probe = (directory / "sparse.probe").string();
  int fd = ::open(probe.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0)
    return false;
  bool sparse = ::ftruncate(fd, off_t{1} << 30) == 0;
  struct stat info {};
  sparse = sparse && ::fstat(fd, &info) == 0 && info.st_blocks * 512 < (1 << 20);
  ::close(fd);
  ::unlink(probe.c_str());
  return sparse;
}

TEST_F(ArtifactTest, WeightsAfterASparseHoleBeyondFourGiB) {
  if (!supportsSparseFiles(dir.file("")))
    GTEST_SKIP() << "the temp filesystem cannot make sparse files";
  WriteOptions farBlob;
  farBlob.minBlobOffset = (uint64_t{4} << 30) + 100; // rounded up to the next 4096
  writeSample(farBlob);

  struct stat info {};
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_LT(info.st_blocks * 512, 64 << 20) << "the hole should not take disk space";

  auto artifact = Artifact::open(path);
  const Program &read = artifact->program();
  EXPECT_EQ(read.weights[0].offset, (uint64_t{4} << 30) + 4096);
  EXPECT_GT(artifact->fileSize(), uint64_t{1} << 32);
  for (size_t i = 0; i < read.weights.size(); ++i) {
    EXPECT_GT(read.weights[i].offset, uint64_t{1} << 32);
    EXPECT_EQ(std::memcmp(read.weights[i].data, payloads[i].data(), payloads[i].size()), 0);
  }
  EXPECT_EQ(read.weights[3].offset + read.weights[3].size, artifact->fileSize());
}

} // namespace
} // namespace v4rt
