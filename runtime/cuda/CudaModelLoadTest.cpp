// CudaModel::load on the emulated driver when device memory runs out part
// way (tests/emulated-cuda's v4emuSetDeviceMemoryLimit): a one-line error
// naming what did not fit, no copy still queued from a weight staging buffer
// when the failed load frees it (the emulator aborts on that use after
// free), nothing left allocated, and the device usable afterwards.
#include <gtest/gtest.h>


#include <cstdint>
#include <string>
#include <vector>

#include "runtime/artifact/ArtifactReader.h"
#include "runtime/cuda/EmulatorQueries.h"
#include "runtime/cuda/CudaSession.h"
#include "runtime/cuda/Sm90aDeviceTest.h"
#include "runtime/cuda/TinyMixedTestArtifact.h"

namespace v4rt::cuda {
namespace {

class CudaModelLoad : public Sm90aDeviceTest {
protected:
  EmulatorQueries emu_; // the emulated driver's fault injection and limits

  void SetUp() override {
    Sm90aDeviceTest::SetUp();
    if (IsSkipped())
      return;
    emu_ = EmulatorQueries::find();
    if (!emu_.setDeviceMemoryLimit)
      GTEST_SKIP() << "needs the emulated driver's test queries (tests/emulated-cuda)";
    options_.maxContext = 64;
  }
  void TearDown() override { emu_.reset(); }
  uint64_t allocatedBytes() const {
    size_t freeBytes = 0, totalBytes = 0;
    EXPECT_EQ(device_->api().cuMemGetInfo(&freeBytes, &totalBytes), CUDA_SUCCESS);
    return totalBytes - freeBytes;
  }
  // The error of loading the artifact; empty when it loaded.
  std::string loadError() {
    try {
      loadTinyMixed(options_);
    } catch (const v4c::Error &e) {
      return e.what();
    }
    return "";
  }

  CudaLoadOptions options_;
};

TEST_F(CudaModelLoad, RunningOutOfDeviceMemoryPartWayIsAnErrorAndLeavesTheDeviceUsable) {

  // Room for the weights up to the first one uploaded from the file, whose
  // copy is then queued, and not for the next one.
  const std::vector<Weight> weights = Artifact::open(tinyMixedArtifactPath())->program().weights;
  uint64_t fitting = 0;
  size_t uploaded = weights.size();
  for (size_t w = 0; w < weights.size() && uploaded == weights.size(); ++w) {
    fitting += weights[w].size;
    if (!weights[w].isDummy() && weights[w].size > 0)
      uploaded = w;
  }
  ASSERT_LT(uploaded + 1, weights.size());
  ASSERT_GT(weights[uploaded + 1].size, 0u);
  emu_.setDeviceMemoryLimit(allocatedBytes() + fitting);
  const std::string error = loadError();
  emu_.setDeviceMemoryLimit(SIZE_MAX);
  EXPECT_NE(error.find("cuMemAlloc failed: CUDA_ERROR_OUT_OF_MEMORY"), std::string::npos) << error;
  EXPECT_NE(error.find("weight \"" + weights[uploaded + 1].name + "\""), std::string::npos) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;

  const std::unique_ptr<CudaModel> model = loadTinyMixed(options_);
  ASSERT_NE(model, nullptr);
  CudaSession session(*model);
  const std::vector<int32_t> ids = {5, 17, 300};
  std::vector<float> logits(static_cast<size_t>(model->vocabSize()));
  session.prefill(ids.data(), static_cast<int64_t>(ids.size()), logits.data(), /*lastRowOnly=*/true);
  EXPECT_EQ(session.position(), 3);
}

// Out of memory at any point of the load (weights, bucket buffers, the KV
// pool's first session): a one-line error, never an abort of the emulator.
TEST_F(CudaModelLoad, OutOfMemoryAnywhereInTheLoadIsAnError) {
  const uint64_t before = allocatedBytes();
  uint64_t footprint = 0;
  {
    const std::unique_ptr<CudaModel> model = loadTinyMixed(options_);
    ASSERT_NE(model, nullptr);
    CudaSession session(*model);
    const int32_t id = 5;
    session.prefill(&id, 1, nullptr);
    footprint = allocatedBytes() - before;
  }
  ASSERT_GT(footprint, 0u);
  std::vector<uint64_t> rooms = {footprint - 1}; // all but the session's last allocation
  for (uint64_t k = 0; k < 16; ++k)
    rooms.push_back(footprint * k / 16);
  for (const uint64_t room : rooms) {
    SCOPED_TRACE(std::to_string(room) + " of " + std::to_string(footprint) + " bytes");
    emu_.setDeviceMemoryLimit(before + room);
    std::string error;
    try {
      const std::unique_ptr<CudaModel> model = loadTinyMixed(options_);
      CudaSession session(*model);
      const int32_t id = 5;
      session.prefill(&id, 1, nullptr);
    } catch (const v4c::Error &e) {
      error = e.what();
    }
    emu_.setDeviceMemoryLimit(SIZE_MAX);
    EXPECT_NE(error, "");
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
    EXPECT_EQ(allocatedBytes(), before) << "a failed load left device memory allocated";
  }
}

} // namespace
} // namespace v4rt::cuda
