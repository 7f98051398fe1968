// A GPU artifact through the C API where no CUDA device is (ctest runs this
// without the emulated driver): the open returns the CLI's one-line "no CUDA
// device" status, never a crash, and no model. Skipped where a device runs
// sm_90a.
#include <gtest/gtest.h>

#include "runtime/api/ApiTestSupport.h"
#include "runtime/api/v4rt.h"

namespace v4rt {
namespace {

TEST(CApiNoDevice, GpuArtifactGetsTheNoDeviceStatus) {
  const std::string gpu = apitest::compiledConformanceCase("tiny-mixed", "--target sm_90a --decode-batch 1");
  v4rt_model *model = nullptr;
  const std::string message = apitest::takeMessage(v4rt_model_open(gpu.c_str(), nullptr, &model));
  if (message.empty()) {
    const std::string device = v4rt_model_target(model);
    v4rt_model_close(model);
    GTEST_SKIP() << "a CUDA device runs " << device << " here";
  }
  EXPECT_EQ(model, nullptr);
  EXPECT_EQ(message.rfind("no CUDA device: ", 0), 0u) << message;
  const std::string suffix = "; this artifact targets sm_90a";
  ASSERT_GE(message.size(), suffix.size()) << message;
  EXPECT_EQ(message.substr(message.size() - suffix.size()), suffix) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  // The failure is remembered: a second open says the same, still no crash.
  EXPECT_EQ(apitest::takeMessage(v4rt_model_open(gpu.c_str(), nullptr, &model)), message);
}

} // namespace
} // namespace v4rt
