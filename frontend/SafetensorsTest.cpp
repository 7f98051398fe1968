#include "frontend/Safetensors.h"
#include "frontend/SafetensorsWriter.h"

#include "common/Error.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include <stdlib.h>

namespace v4c {
namespace {

using json = nlohmann::json;

std::string makeTempDir() {
  std::string pattern = ::testing::TempDir() + "/v4frontend-XXXXXX";
  char *made = ::mkdtemp(pattern.data());
  EXPECT_NE(made, nullptr);
  return pattern;
}

std::string fileBytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

// A file with an explicit 8-byte length, header text and data bytes.
void writeRaw(const std::string &path, uint64_t headerLength, const std::string &header, size_t dataBytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  for (int i = 0; i < 8; ++i)
    out.put(static_cast<char>(headerLength >> (8 * i)));
  out << header << std::string(dataBytes, '\x01');
}

void writeHeader(const std::string &path, const json &header, size_t dataBytes) {
  const std::string text = header.dump();
  writeRaw(path, text.size(), text, dataBytes);
}

std::string openError(const std::string &path) {
  try {
    SafetensorsFile::open(path);
  } catch (const Error &error) {
    return error.what();
  }
  return "";
}

json entry(const char *dtype, json shape, uint64_t begin, uint64_t end) {
  return {{"dtype", dtype}, {"shape", shape}, {"data_offsets", {begin, end}}};
}

class MalformedSafetensors : public ::testing::Test {
protected:
  void SetUp() override { path_ = makeTempDir() + "/bad.safetensors"; }

  // Asserts the error names the file first, then contains `problem`.
  void expectError(const std::string &problem) {
    const std::string message = openError(path_);
    EXPECT_EQ(message.rfind(path_ + ": ", 0), 0u) << message;
    EXPECT_NE(message.find(problem), std::string::npos) << "got: " << message << "\nwant: " << problem;
    EXPECT_EQ(message.find('\n'), std::string::npos);
  }

  std::string path_;
};

TEST_F(MalformedSafetensors, ShorterThanLength) {
  std::ofstream(path_, std::ios::binary) << "abcde";
  expectError("file is 5 bytes, shorter than the 8-byte header length");
}

TEST_F(MalformedSafetensors, HeaderOver100MB) {
  writeRaw(path_, 200000000ull, "{}", 0);
  expectError("header length 200000000 exceeds the 100 MB limit");
}

TEST_F(MalformedSafetensors, HeaderPastEndOfFile) {
  writeRaw(path_, 1000, "{}", 0);
  expectError("header length 1000 runs past the end of the file (10 bytes)");
}

TEST_F(MalformedSafetensors, HeaderNotJson) {
  writeRaw(path_, 5, "{nope", 0);
  expectError("header is not valid JSON");
}

TEST_F(MalformedSafetensors, HeaderNotObject) {
  writeHeader(path_, json::array({1, 2}), 0);
  expectError("header is not a JSON object");
}

TEST_F(MalformedSafetensors, EntryWithoutFields) {
  writeHeader(path_, {{"a", {{"shape", {2}}, {"data_offsets", {0, 8}}}}}, 8);
  expectError("tensor \"a\": missing \"dtype\"");
  writeHeader(path_, {{"a", {{"dtype", "F32"}, {"data_offsets", {0, 8}}}}}, 8);
  expectError("tensor \"a\": missing \"shape\"");
  writeHeader(path_, {{"a", {{"dtype", "F32"}, {"shape", {2}}}}}, 8);
  expectError("tensor \"a\": missing \"data_offsets\"");
}

TEST_F(MalformedSafetensors, UnknownDType) {
  writeHeader(path_, {{"a", entry("F64", {1}, 0, 8)}}, 8);
  expectError("tensor \"a\": unknown dtype \"F64\"");
}

TEST_F(MalformedSafetensors, NegativeOrFractionalDims) {
  writeHeader(path_, {{"a", entry("F32", {2, -2}, 0, 8)}}, 8);
  expectError("tensor \"a\": dimension 1 is -2; dimensions must be non-negative integers");
  writeHeader(path_, {{"a", entry("F32", {2.5}, 0, 8)}}, 8);
  expectError("dimension 0 is 2.5; dimensions must be non-negative integers");
}

TEST_F(MalformedSafetensors, ShapeProductOverflows) {
  writeHeader(path_, {{"a", entry("F32", {4294967296ll, 4294967296ll}, 0, 8)}}, 8);
  expectError("tensor \"a\": shape [4294967296,4294967296] has more elements than fit in 64 bits");
  // Elements fit in int64, bytes (x 8) do not fit in 64 bits.
  writeHeader(path_, {{"a", entry("I64", {4611686018427387904ll}, 0, 8)}}, 8);
  expectError("shape [4611686018427387904] x I64 overflows the byte count");
}

TEST_F(MalformedSafetensors, OffsetsOutsideDataSection) {
  writeHeader(path_, {{"a", entry("F32", {25}, 0, 100)}}, 8);
  expectError("tensor \"a\": data_offsets [0,100] are not a range inside the data section of 8 bytes");
  writeHeader(path_, {{"a", entry("F32", {1}, 8, 4)}}, 8);
  expectError("data_offsets [8,4] are not a range inside the data section");
  writeHeader(path_, {{"a", {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {-4, 0}}}}}, 8);
  expectError("\"data_offsets\" must be two non-negative integers");
}

TEST_F(MalformedSafetensors, ShapeTimesDTypeDisagreesWithOffsets) {
  writeHeader(path_, {{"a", entry("F32", {3}, 0, 8)}}, 8);
  expectError("tensor \"a\": shape [3] x F32 (4 bytes) = 12 bytes but data_offsets cover 8");
}

TEST_F(MalformedSafetensors, OverlappingTensors) {
  writeHeader(path_, {{"a", entry("F32", {2}, 0, 8)}, {"b", entry("F32", {2}, 4, 12)}}, 12);
  expectError("tensors \"a\" and \"b\" overlap");
}

TEST_F(MalformedSafetensors, GapBetweenTensors) {
  writeHeader(path_, {{"a", entry("F32", {1}, 0, 4)}, {"b", entry("F32", {1}, 8, 12)}}, 12);
  expectError("bytes [4, 8) of the data section belong to no tensor (gap before \"b\")");
  writeHeader(path_, {{"a", entry("F32", {1}, 0, 4)}}, 8);
  expectError("bytes [4, 8) of the data section belong to no tensor (gap at the end)");
}

TEST_F(MalformedSafetensors, MissingFile) {
  const std::string message = openError(path_ + ".absent");
  EXPECT_NE(message.find(path_ + ".absent: cannot open"), std::string::npos) << message;
}

TEST(Safetensors, AcceptsTensorsInAnyOrderAndZeroSized) {
  const std::string path = makeTempDir() + "/ok.safetensors";
  writeHeader(path,
              {{"late", entry("F32", {2}, 8, 16)},
               {"early", entry("I32", {2}, 0, 8)},
               {"empty", entry("BF16", {0, 3}, 16, 16)},
               {"__metadata__", {{"format", "pt"}}}},
              16);
  auto file = SafetensorsFile::open(path);
  ASSERT_EQ(file->tensors().size(), 3u);
  EXPECT_EQ(file->metadata().at("format"), "pt");
  const TensorView *late = file->find("late");
  ASSERT_NE(late, nullptr);
  EXPECT_EQ(late->nbytes, 8u);
  EXPECT_EQ(late->shape, (std::vector<int64_t>{2}));
  EXPECT_EQ(late->file, path);
  EXPECT_EQ(file->find("empty")->numel(), 0);
  EXPECT_TRUE(toF32(*file->find("empty")).empty());
  EXPECT_EQ(file->find("missing"), nullptr);
  EXPECT_EQ(toI32(*file->find("early")), (std::vector<int32_t>{0x01010101, 0x01010101}));
}

TEST(Safetensors, ExactDecoders) {
  EXPECT_EQ(bf16ToFloat(0x3F80), 1.0f);
  EXPECT_EQ(bf16ToFloat(0xC040), -3.0f);
  EXPECT_EQ(f16ToFloat(0x3C00), 1.0f);
  EXPECT_EQ(f16ToFloat(0x7BFF), 65504.0f);
  EXPECT_EQ(f16ToFloat(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(f16ToFloat(0x8400), -std::ldexp(1.0f, -14));
  EXPECT_TRUE(std::isinf(f16ToFloat(0xFC00)) && f16ToFloat(0xFC00) < 0);
  EXPECT_TRUE(std::isnan(f16ToFloat(0x7E00)));
  EXPECT_EQ(f8e4m3ToFloat(0x38), 1.0f);
  EXPECT_EQ(f8e4m3ToFloat(0xB8), -1.0f);
  EXPECT_EQ(f8e4m3ToFloat(0x7E), 448.0f);
  EXPECT_EQ(f8e4m3ToFloat(0x01), std::ldexp(1.0f, -9));
  EXPECT_EQ(f8e4m3ToFloat(0x0F), 1.875f * std::ldexp(1.0f, -6)); // exponent 1, mantissa 7
  EXPECT_EQ(f8e4m3ToFloat(0x08), std::ldexp(1.0f, -6)); // smallest normal
  EXPECT_EQ(f8e4m3ToFloat(0x07), 7.0f * std::ldexp(1.0f, -9)); // largest subnormal
  EXPECT_TRUE(std::isnan(f8e4m3ToFloat(0x7F)));
}

TEST(Safetensors, ConvertsEveryDTypeThroughAFile) {
  const std::string path = makeTempDir() + "/dtypes.safetensors";
  std::vector<TensorToWrite> tensors = {
      {"bf16", "BF16", {2}, {0x80, 0x3F, 0x40, 0xC0}},          // 1, -3
      {"f16", "F16", {2}, {0x00, 0x3C, 0xFF, 0x7B}},            // 1, 65504
      {"f8", "F8_E4M3", {3}, {0x38, 0x7E, 0x01}},               // 1, 448, 2^-9
      {"i64", "I64", {2}, {7, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}}, // 7, -1
      {"big", "I64", {1}, {0, 0, 0, 0x80, 0, 0, 0, 0}},         // 2^31
      {"scale", "F8_E8M0", {1}, {127}},
  };
  tensors.push_back(f32Tensor("f32", {1, 2}, {0.5f, -2.25f}));
  writeSafetensors(path, tensors);
  auto file = SafetensorsFile::open(path);
  EXPECT_EQ(toF32(*file->find("bf16")), (std::vector<float>{1.0f, -3.0f}));
  EXPECT_EQ(toF32(*file->find("f16")), (std::vector<float>{1.0f, 65504.0f}));
  EXPECT_EQ(toF32(*file->find("f8")), (std::vector<float>{1.0f, 448.0f, std::ldexp(1.0f, -9)}));
  EXPECT_EQ(toF32(*file->find("f32")), (std::vector<float>{0.5f, -2.25f}));
  EXPECT_EQ(toI32(*file->find("i64")), (std::vector<int32_t>{7, -1}));
  EXPECT_EQ(file->find("scale")->dtype, v4rt::DType::U8);
  EXPECT_EQ(file->find("scale")->dtypeName, "F8_E8M0");
  try {
    toI32(*file->find("big"));
    FAIL() << "expected a range error";
  } catch (const Error &error) {
    EXPECT_EQ(std::string(error.what()), path + ": tensor \"big\": element 0 (2147483648) does not fit in int32");
  }
  try {
    toF32(*file->find("i64"));
    FAIL() << "expected a dtype error";
  } catch (const Error &error) {
    EXPECT_NE(std::string(error.what()).find("tensor \"i64\" has dtype I64; a floating-point tensor"),
              std::string::npos);
  }
  EXPECT_THROW(toI32(*file->find("f32")), Error);
  EXPECT_THROW(writeSafetensors(path, {{"x", "F32", {2}, {0, 0, 0}}}), Error);
}

// Random corruption of a valid file's header and length never crashes: open
// either succeeds or throws v4c::Error.
TEST(Safetensors, CorruptedHeadersFailCleanly) {
  const std::string dir = makeTempDir();
  const std::string good = dir + "/good.safetensors";
  writeSafetensors(good, {f32Tensor("a", {2, 3}, {1, 2, 3, 4, 5, 6}), {"b", "I64", {1}, std::vector<uint8_t>(8, 0)}});
  const std::string original = fileBytes(good);
  std::mt19937 random(1234);
  int opened = 0, rejected = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::string bytes = original;
    const int flips = 1 + static_cast<int>(random() % 3);
    for (int i = 0; i < flips; ++i) {
      // Mostly the header (where the structure is), sometimes the length.
      const size_t at = random() % 4 == 0 ? random() % 8 : 8 + random() % (bytes.size() - 8 - 32);
      bytes[at] = static_cast<char>(random() % 2 ? random() % 256 : std::string("0123456789[]{},:-.").at(random() % 18));
    }
    const std::string path = dir + "/mutated.safetensors";
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
    try {
      auto file = SafetensorsFile::open(path);
      for (const TensorView &view : file->tensors()) {
        ASSERT_LE(view.data + view.nbytes, view.data + bytes.size());
        if (view.dtype == v4rt::DType::I64 || view.dtype == v4rt::DType::I32)
          (void)toI32(view);
        else if (view.dtype != v4rt::DType::U8)
          (void)toF32(view);
      }
      ++opened;
    } catch (const Error &error) {
      EXPECT_EQ(std::string(error.what()).rfind(path + ": ", 0), 0u) << error.what();
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 1000); // the corruption is real
  EXPECT_EQ(opened + rejected, 3000);
}

// Values of the conformance checkpoint against bytes decoded here from the
// raw file, independently of SafetensorsFile.
TEST(Safetensors, ConformanceCheckpointMatchesRawBytes) {
  const std::string path = std::string(V4_CONFORMANCE_DIR) + "/tiny-mixed/model.safetensors";
  const std::string raw = fileBytes(path);
  uint64_t headerLength = 0;
  std::memcpy(&headerLength, raw.data(), 8);
  const json header = json::parse(raw.substr(8, headerLength));
  const size_t dataStart = 8 + headerLength;

  auto file = SafetensorsFile::open(path);
  EXPECT_EQ(file->tensors().size(), header.size() - 1); // minus __metadata__
  const TensorView *embed = file->find("model.embed_tokens.weight");
  ASSERT_NE(embed, nullptr);
  EXPECT_EQ(embed->dtype, v4rt::DType::F32);
  EXPECT_EQ(embed->shape, (std::vector<int64_t>{512, 64}));
  const uint64_t begin = header["model.embed_tokens.weight"]["data_offsets"][0];
  std::vector<float> expected(4);
  std::memcpy(expected.data(), raw.data() + dataStart + begin, 16);
  std::vector<float> values = toF32(*embed);
  ASSERT_EQ(values.size(), 512u * 64u);
  EXPECT_EQ(std::vector<float>(values.begin(), values.begin() + 4), expected);
  EXPECT_NE(expected[0], 0.0f);

  const TensorView *hash = file->find("model.layers.0.ffn.gate.tid2eid");
  ASSERT_NE(hash, nullptr);
  EXPECT_EQ(hash->dtype, v4rt::DType::I64);
  std::vector<int32_t> ids = toI32(*hash);
  const uint64_t hashBegin = header["model.layers.0.ffn.gate.tid2eid"]["data_offsets"][0];
  for (size_t i = 0; i < 6; ++i) {
    int64_t rawId;
    std::memcpy(&rawId, raw.data() + dataStart + hashBegin + 8 * i, 8);
    EXPECT_EQ(ids[i], rawId);
    EXPECT_GE(ids[i], 0);
    EXPECT_LT(ids[i], 8);
  }
}

} // namespace
} // namespace v4c
