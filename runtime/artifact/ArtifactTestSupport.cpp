#include "runtime/artifact/ArtifactTestSupport.h"

#include <algorithm>
#include <fstream>
#include <random>

#include <gtest/gtest.h>
#include <unistd.h>

#include "common/Error.h"
#include "runtime/artifact/ArtifactFormat.h"

namespace v4rt {

bool operator==(const ArgRef &a, const ArgRef &b) {
  return a.kind == b.kind && a.index == b.index && a.offset == b.offset && a.dtype == b.dtype &&
         a.shape == b.shape;
}
bool operator==(const Attr &a, const Attr &b) {
  return a.name == b.name && a.ints == b.ints && a.floats == b.floats && a.str == b.str;
}
bool operator==(const Step &a, const Step &b) {
  return a.kernel == b.kernel && a.ins == b.ins && a.outs == b.outs && a.attrs == b.attrs &&
         std::equal(a.grid, a.grid + 3, b.grid) && std::equal(a.block, a.block + 3, b.block) &&
         a.sharedBytes == b.sharedBytes;
}
bool operator==(const Bucket &a, const Bucket &b) {
  return a.name == b.name && a.kind == b.kind && a.tokens == b.tokens && a.batch == b.batch &&
         a.arenaBytes == b.arenaBytes && a.naiveBytes == b.naiveBytes && a.steps == b.steps;
}
bool operator==(const Kernel &a, const Kernel &b) {
  return a.name == b.name && a.binary == b.binary && a.module == b.module;
}
bool operator==(const Module &a, const Module &b) { return a.target == b.target && a.binary == b.binary; }
bool operator==(const CacheSlot &a, const CacheSlot &b) {
  return a.name == b.name && a.layer == b.layer && a.kind == b.kind && a.rows == b.rows &&
         a.width == b.width && a.rate == b.rate && a.dtype == b.dtype;
}
bool operator==(const IoSlot &a, const IoSlot &b) {
  return a.name == b.name && a.dtype == b.dtype && a.width == b.width;
}
bool operator==(const Weight &a, const Weight &b) {
  return a.name == b.name && a.dtype == b.dtype && a.shape == b.shape && a.offset == b.offset &&
         a.size == b.size && a.checksum == b.checksum && a.dummy.kind == b.dummy.kind &&
         a.dummy.scale == b.dummy.scale && a.dummy.modulo == b.dummy.modulo;
}
bool operator==(const Program &a, const Program &b) {
  return a.target == b.target && a.configJson == b.configJson &&
         a.compileOptions == b.compileOptions && a.buckets == b.buckets &&
         a.kernels == b.kernels && a.caches == b.caches && a.inputs == b.inputs &&
         a.outputs == b.outputs && a.weights == b.weights && a.modules == b.modules &&
         a.dummySeed == b.dummySeed;
}

namespace testing_support {
namespace {

ArgRef arena(uint64_t offset, DType dtype, std::vector<int64_t> shape) {
  ArgRef ref;
  ref.kind = ArgKind::Arena;
  ref.offset = offset;
  ref.dtype = dtype;
  ref.shape = std::move(shape);
  return ref;
}

ArgRef slot(ArgKind kind, uint32_t index, DType dtype, std::vector<int64_t> shape) {
  ArgRef ref;
  ref.kind = kind;
  ref.index = index;
  ref.dtype = dtype;
  ref.shape = std::move(shape);
  return ref;
}

Weight weight(const std::string &name, DType dtype, std::vector<int64_t> shape) {
  Weight result;
  result.name = name;
  result.dtype = dtype;
  result.shape = std::move(shape);
  return result;
}

} // namespace

Program sampleProgram() {
  Program program;
  program.target = "cpu";
  program.configJson = R"({"hidden_size":16,"num_hidden_layers":2})";
  program.compileOptions = R"({"quantize":"bf16","buckets":[4]})";

  // Not v4 op names: these steps exercise the format, not a model, so the
  // op shape contracts (StepContracts.h) do not apply to them.
  program.kernels = {{"test.embed", {}},
                     {"test.rms_norm", {}},
                     {"fused_linear_0", {0x7f, 'E', 'L', 'F', 0x00, 0x01, 0xfe}}};
  program.caches = {
      {"layers.0.window", 0, CacheKind::Window, 128, 16, 0, DType::F32},
      {"layers.1.compress_state", 1, CacheKind::CompressState, 8, 64, 0, DType::BF16},
      {"layers.1.entries", 1, CacheKind::Entries, 0, 16, 4, DType::F32},
  };
  program.inputs = {{"ids", DType::I32, 1}, {"positions", DType::I32, 1}};
  program.outputs = {{"logits", DType::F32, 10}};
  program.weights = {weight("embed.weight", DType::F32, {10, 16}),
                     weight("layers.0.attn.wq_a.weight", DType::BF16, {8, 16}),
                     weight("layers.0.ffn.w1.scale", DType::F8E4M3, {7, 13}), // 91 bytes
                     weight("tid2eid", DType::I64, {10, 3})};

  Bucket prefill;
  prefill.name = "prefill_4";
  prefill.kind = BucketKind::Prefill;
  prefill.tokens = 4;
  prefill.batch = 1;
  prefill.arenaBytes = 1024;
  prefill.naiveBytes = 1536;
  prefill.steps = {
      {0,
       {slot(ArgKind::Input, 0, DType::I32, {4}), slot(ArgKind::Weight, 0, DType::F32, {10, 16})},
       {arena(0, DType::F32, {4, 16})},
       {}},
      {1,
       {arena(0, DType::F32, {4, 16})},
       {arena(256, DType::F32, {4, 16})},
       {{"eps", {}, {1e-6}, ""}, {"group", {16}, {}, ""}}},
      {2,
       {arena(256, DType::F32, {4, 16}), slot(ArgKind::Weight, 1, DType::BF16, {8, 16}),
        slot(ArgKind::Weight, 2, DType::F8E4M3, {7, 13}),
        slot(ArgKind::Input, 1, DType::I32, {4}),
        slot(ArgKind::Cache, 0, DType::F32, {128, 16})},
       {slot(ArgKind::Cache, 1, DType::BF16, {8, 64}),
        slot(ArgKind::Cache, 2, DType::F32, {1, 16}), arena(512, DType::F32, {4, 8}),
        slot(ArgKind::Output, 0, DType::F32, {4, 10})},
       {{"mode", {}, {}, "window+compressed"},
        {"inv_freq", {-3, 0, 7}, {1.0, 0.5, 0.25, -2.5e-300}, "mixed"}}},
  };

  Bucket decode;
  decode.name = "decode_2";
  decode.kind = BucketKind::Decode;
  decode.tokens = 2;
  decode.batch = 2;
  decode.arenaBytes = 4096;
  decode.naiveBytes = 4096;
  decode.steps = {
      {0,
       {slot(ArgKind::Input, 0, DType::I32, {2}), slot(ArgKind::Weight, 3, DType::I64, {10, 3})},
       {arena(4096 - 128, DType::F32, {2, 16})}, // ends exactly at arenaBytes
       {{"top_k", {3}, {}, ""}}},
      {2,
       {arena(4096 - 128, DType::F32, {2, 16})},
       {slot(ArgKind::Output, 0, DType::F32, {2, 10})},
       {}},
  };
  program.buckets = {prefill, decode};
  return program;
}

std::vector<std::vector<uint8_t>> samplePayloads(const Program &program) {
  std::vector<std::vector<uint8_t>> payloads;
  for (size_t i = 0; i < program.weights.size(); ++i) {
    const Weight &weight = program.weights[i];
    ArgRef ref;
    ref.dtype = weight.dtype;
    ref.shape = weight.shape;
    std::vector<uint8_t> bytes(ref.byteSize());
    std::mt19937 generator(static_cast<uint32_t>(1234 + i));
    for (uint8_t &byte : bytes)
      byte = static_cast<uint8_t>(generator());
    payloads.push_back(std::move(bytes));
  }
  return payloads;
}

std::function<void(size_t, uint8_t *, size_t)>
payloadSource(const std::vector<std::vector<uint8_t>> &payloads) {
  return [&payloads](size_t index, uint8_t *dst, size_t size) {
    ASSERT_LT(index, payloads.size());
    ASSERT_EQ(size, payloads[index].size());
    std::copy(payloads[index].begin(), payloads[index].end(), dst);
  };
}

ScratchDir::ScratchDir() {
  static int counter = 0;
  root_ = std::filesystem::temp_directory_path() /
          ("v4artifact_test." + std::to_string(::getpid()) + "." + std::to_string(counter++));
  std::filesystem::remove_all(root_);
  std::filesystem::create_directories(root_);
}

ScratchDir::~ScratchDir() {
  std::error_code ignored;
  std::filesystem::remove_all(root_, ignored);
}

std::vector<std::string> ScratchDir::entries() const {
  std::vector<std::string> names;
  for (const auto &entry : std::filesystem::directory_iterator(root_))
    names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<uint8_t> readBytes(const std::filesystem::path &path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

void writeBytes(const std::filesystem::path &path, const std::vector<uint8_t> &bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char *>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

void resealManifest(std::vector<uint8_t> &file) {
  artifact::FileHeader header = artifact::decodeHeader(file.data());
  header.manifestSha256 =
      artifact::sha256(file.data() + artifact::kHeaderSize, header.manifestSize);
  artifact::encodeHeader(header, file.data());
}

void patchManifest(const std::filesystem::path &path,
                   const std::function<void(uint8_t *manifest, size_t size)> &edit) {
  std::vector<uint8_t> file = readBytes(path);
  const artifact::FileHeader header = artifact::decodeHeader(file.data());
  edit(file.data() + artifact::kHeaderSize, header.manifestSize);
  resealManifest(file);
  writeBytes(path, file);
}

std::string errorOf(const std::function<void()> &action) {
  try {
    action();
  } catch (const v4c::Error &error) {
    return error.what();
  }
  ADD_FAILURE() << "expected a v4c::Error";
  return "";
}

} // namespace testing_support
} // namespace v4rt
