// The CUDA backend end to end on a toy artifact whose kernels
// (testdata/RuntimeTestKernels.cu, a real sm_90a cubin built by nvcc) the
// test recomputes on the host: weights uploaded and dummy-filled, chunked
// prefill, decode replayed from a CUDA graph vs plain launches, cache state
// across runs, step-by-step read-back, the context limit. Skipped, with the
// reason, where no CUDA device can run sm_90a.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <unistd.h>

#include "runtime/artifact/ArtifactWriter.h"
#include "runtime/cuda/CudaModel.h"
#include "runtime/cuda/CudaSession.h"
#include "runtime/cuda/HostConvert.h"

namespace v4rt::cuda {
namespace {

constexpr int64_t kD = 16, kV = 32, kW = 8, kRate = 2, kChunk = 4, kMaxContext = 40;
constexpr uint64_t kSeed = 1234;

std::vector<uint8_t> testCubin() {
  const char *overridden = std::getenv("V4_TEST_CUBIN"); // the GPU machine: carried next to the test
  const std::string path = overridden ? overridden : V4_TEST_CUBIN;
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw v4c::Error("cannot read the test cubin " + path + " (set V4_TEST_CUBIN)");
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

ArgRef arg(ArgKind kind, uint32_t index, DType dtype, std::vector<int64_t> shape) {
  return ArgRef{kind, index, 0, dtype, std::move(shape)};
}

Bucket bucket(const char *name, BucketKind kind, int64_t T) {
  Bucket b;
  b.name = name;
  b.kind = kind;
  b.tokens = T;
  b.arenaBytes = static_cast<uint64_t>(T * kD) * sizeof(float);
  const ArgRef ids = arg(ArgKind::Input, 0, DType::I32, {T}), positions = arg(ArgKind::Input, 1, DType::I32, {T});
  const ArgRef x = arg(ArgKind::Arena, 0, DType::F32, {T, kD});
  const ArgRef window = arg(ArgKind::Cache, 0, DType::F32, {kW, kD}), entries = arg(ArgKind::Cache, 1, DType::F32, {});
  Step embed;
  embed.kernel = 0;
  embed.ins = {ids, arg(ArgKind::Weight, 0, DType::F32, {kV, kD})};
  embed.outs = {x};
  embed.grid[0] = static_cast<uint32_t>(T);
  embed.block[0] = 32;
  Step append;
  append.kernel = 1;
  append.ins = {window, entries, x, positions};
  append.outs = {window, entries};
  Step logits;
  logits.kernel = 2;
  logits.ins = {window, entries, positions, arg(ArgKind::Weight, 1, DType::BF16, {kV, kD})};
  logits.outs = {arg(ArgKind::Output, 0, DType::F32, {T, kV})};
  logits.grid[0] = static_cast<uint32_t>(T);
  logits.block[0] = 64;
  logits.sharedBytes = 64 * 1024;
  b.steps = {embed, append, logits};
  return b;
}

struct ToyArtifact {
  std::string path;
  std::vector<float> table; // weight 0, in the file
  ~ToyArtifact() { std::remove(path.c_str()); }
};

std::unique_ptr<ToyArtifact> writeToyArtifact() {
  auto toy = std::make_unique<ToyArtifact>();
  toy->path = ::testing::TempDir() + "/cuda-runtime-test-" + std::to_string(getpid()) + ".v4a";
  for (int64_t i = 0; i < kV * kD; ++i)
    toy->table.push_back(static_cast<float>((i * 37) % 101) / 101.0f - 0.5f);
  Program p;
  p.target = "sm_90a";
  p.configJson = R"({"max_position_embeddings": 64})";
  p.compileOptions = "{}";
  p.modules.push_back({"sm_90a", testCubin()});
  p.kernels = {{"test_embed", {}, 0}, {"test_append", {}, 0}, {"test_logits", {}, 0}};
  Weight table;
  table.name = "table";
  table.shape = {kV, kD};
  table.data = reinterpret_cast<const uint8_t *>(toy->table.data());
  Weight proj;
  proj.name = "proj";
  proj.dtype = DType::BF16;
  proj.shape = {kV, kD};
  proj.size = kV * kD * 2;
  proj.dummy = DummyRecipe{DummyKind::Uniform, 0.5f, 0};
  p.weights = {table, proj};
  p.dummySeed = kSeed;
  CacheSlot window;
  window.name = "window";
  window.kind = CacheKind::Window;
  window.rows = kW;
  window.width = kD;
  CacheSlot entries;
  entries.name = "entries";
  entries.kind = CacheKind::Entries;
  entries.width = kD;
  entries.rate = kRate;
  p.caches = {window, entries};
  p.inputs = {{"ids", DType::I32, 1}, {"positions", DType::I32, 1}};
  p.outputs = {{"logits", DType::F32, kV}};
  p.buckets = {bucket("prefill_4", BucketKind::Prefill, kChunk), bucket("decode_1", BucketKind::Decode, 1)};
  writeArtifact(toy->path, p, [](size_t, uint8_t *, size_t) { FAIL() << "every weight has bytes or a recipe"; });
  return toy;
}

// The toy model on the host, run in the same chunks.
class HostToy {
public:
  explicit HostToy(const std::vector<float> &table) : table_(table), window_(kW * kD), entries_(kMaxContext * kD) {
    std::vector<uint16_t> bits(kV * kD);
    fillDummyHost(bits.data(), bits.size(), static_cast<uint32_t>(DType::BF16), kSeed, 1,
                  DummyRecipe{DummyKind::Uniform, 0.5f, 0});
    for (uint16_t b : bits)
      proj_.push_back(bf16ToFloat(b));
  }
  const std::vector<float> &proj() const { return proj_; }
  // Feeds `ids` as one run; returns its ids.size() x V logits.
  std::vector<float> run(const std::vector<int32_t> &ids) {
    const int64_t n = static_cast<int64_t>(ids.size());
    for (int64_t t = 0; t < n; ++t) {
      const int64_t p = position_ + t;
      std::copy_n(&table_[ids[t] * kD], kD, &window_[(p % kW) * kD]);
      if (p % kRate == kRate - 1)
        std::copy_n(&table_[ids[t] * kD], kD, &entries_[(p / kRate) * kD]);
    }
    std::vector<float> logits(n * kV);
    for (int64_t t = 0; t < n; ++t) {
      const int64_t p = position_ + t;
      for (int64_t v = 0; v < kV; ++v) {
        float ring = 0.0f, compressed = 0.0f;
        for (int64_t i = 0; i < kW * kD; ++i)
          ring += window_[i] * proj_[v * kD + i % kD];
        for (int64_t i = 0; i < (p + 1) / kRate * kD; ++i)
          compressed += entries_[i] * proj_[v * kD + i % kD];
        logits[t * kV + v] = static_cast<float>(p) + ring + 0.5f * compressed;
      }
    }
    position_ += n;
    return logits;
  }

private:
  const std::vector<float> &table_;
  std::vector<float> proj_, window_, entries_;
  int64_t position_ = 0;
};

void expectClose(const std::vector<float> &gpu, const std::vector<float> &host, const std::string &what) {
  ASSERT_EQ(gpu.size(), host.size()) << what;
  for (size_t i = 0; i < host.size(); ++i)
    ASSERT_NEAR(gpu[i], host[i], 1e-5f * (1.0f + std::fabs(host[i]))) << what << " element " << i;
}

class CudaRuntime : public ::testing::Test {
protected:
  void SetUp() override {
    toy_ = writeToyArtifact();
    try {
      CudaLoadOptions options;
      options.maxContext = kMaxContext;
      model_ = CudaModel::load(toy_->path, options);
    } catch (const NoCudaDevice &e) {
      GTEST_SKIP() << e.what();
    }
  }
  std::unique_ptr<ToyArtifact> toy_;
  std::unique_ptr<CudaModel> model_;
};

const std::vector<int32_t> kPrompt = {3, 17, 5, 30, 1, 9, 22, 8, 14, 27}; // chunks 4, 4, 2
const std::vector<int32_t> kDecoded = {6, 31, 0, 12, 19};

TEST_F(CudaRuntime, PrefillAndDecodeMatchTheHost) {
  EXPECT_EQ(model_->prefillBucket().bucket->name, "prefill_4");
  EXPECT_EQ(model_->decodeBucket().bucket->name, "decode_1");
  HostToy host(toy_->table);
  CudaSession session(*model_);
  std::vector<float> logits(kPrompt.size() * kV);
  session.prefill(kPrompt.data(), static_cast<int64_t>(kPrompt.size()), logits.data());
  std::vector<float> expected;
  for (size_t start = 0; start < kPrompt.size(); start += kChunk) {
    const auto end = kPrompt.begin() + std::min(kPrompt.size(), start + kChunk);
    const std::vector<float> chunk = host.run({kPrompt.begin() + start, end});
    expected.insert(expected.end(), chunk.begin(), chunk.end());
  }
  expectClose(logits, expected, "prefill");
  for (int32_t id : kDecoded) {
    std::vector<float> step(kV);
    session.decode(id, step.data()); // the first capture, then replays
    expectClose(step, host.run({id}), "decode of " + std::to_string(id));
    EXPECT_GT(session.lastDecodeMilliseconds(), 0.0f);
  }
  EXPECT_EQ(session.position(), static_cast<int64_t>(kPrompt.size() + kDecoded.size()));
}

TEST_F(CudaRuntime, GraphReplayEqualsPlainLaunches) {
  CudaSessionOptions plain;
  plain.useGraphs = false;
  CudaSession graphed(*model_), launched(*model_, plain);
  std::vector<float> a(kV), b(kV);
  graphed.prefill(kPrompt.data(), 6, a.data(), true);
  launched.prefill(kPrompt.data(), 6, b.data(), true);
  EXPECT_EQ(a, b);
  for (int32_t id : kDecoded) {
    graphed.decode(id, a.data());
    launched.decode(id, b.data());
    EXPECT_EQ(a, b) << "decode of " << id;
  }
}

TEST_F(CudaRuntime, StepwiseRunsReadBackEveryOutput) {
  HostToy host(toy_->table);
  CudaSession session(*model_);
  std::vector<std::string> seen;
  session.setStepObserver([&](const StepReport &report) {
    const Step &step = report.bucket->bucket->steps[report.stepIndex];
    seen.push_back(report.bucket->bucket->name + ":" + std::to_string(report.stepIndex));
    if (report.stepIndex == 0) { // x = the table rows of the ids
      const std::vector<float> x = session.readArgument(*report.bucket, step.outs[0], report.tokens);
      ASSERT_EQ(x.size(), static_cast<size_t>(report.tokens * kD));
      for (int64_t t = 0; t < report.tokens; ++t)
        for (int64_t c = 0; c < kD; ++c)
          ASSERT_EQ(x[t * kD + c], toy_->table[kPrompt[report.position + t] * kD + c]);
    }
  });
  std::vector<float> logits(kV);
  session.prefill(kPrompt.data(), 5, logits.data(), true); // runs of 4 and 1 tokens
  const std::vector<std::string> expected = {"prefill_4:0", "prefill_4:1", "prefill_4:2",
                                             "prefill_4:0", "prefill_4:1", "prefill_4:2"};
  EXPECT_EQ(seen, expected);
  // The dummy weight on the device equals the host generator's.
  const Step &logitsStep = model_->decodeBucket().bucket->steps[2];
  EXPECT_EQ(session.readArgument(model_->decodeBucket(), logitsStep.ins[3], 0), host.proj());
  // The window ring holds the last W = 8 ids' rows in slot p % 8 (5 written so far).
  const std::vector<float> window = session.readArgument(model_->decodeBucket(), logitsStep.ins[0], kW);
  ASSERT_EQ(window.size(), static_cast<size_t>(kW * kD));
  for (int64_t p = 0; p < 5; ++p)
    EXPECT_EQ(window[p * kD], toy_->table[kPrompt[p] * kD]) << "position " << p;
  EXPECT_EQ(window[5 * kD], 0.0f); // never written: a fresh session is zeros
}

TEST_F(CudaRuntime, RefusesPositionsPastTheMaximumContext) {
  CudaSession session(*model_);
  std::vector<int32_t> ids(kMaxContext, 1);
  session.prefill(ids.data(), kMaxContext - 1, nullptr);
  session.decode(2, nullptr); // position 39: the last one
  try {
    session.decode(2, nullptr);
    FAIL() << "position 40 must be refused";
  } catch (const v4c::Error &e) {
    EXPECT_NE(std::string(e.what()).find("would exceed the session's maximum context of 40 tokens"),
              std::string::npos)
        << e.what();
  }
}

} // namespace
} // namespace v4rt::cuda
