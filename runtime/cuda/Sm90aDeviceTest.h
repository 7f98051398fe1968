// Test support: a gtest fixture on device 0 opened for sm_90a (the emulated
// driver of tests/emulated-cuda, or a GPU) with a stream of its own; the test
// is skipped, with the reason, where there is no such device. A derived
// fixture's SetUp calls Sm90aDeviceTest::SetUp() first and returns when
// IsSkipped().
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "runtime/cuda/CudaDriver.h"
#include "runtime/cuda/DeviceObjects.h"

namespace v4rt::cuda {

class Sm90aDeviceTest : public ::testing::Test {
protected:
  void SetUp() override {
    try {
      device_ = &CudaDevice::open("sm_90a");
    } catch (const NoCudaDevice &e) {
      GTEST_SKIP() << e.what();
    }
    device_->makeCurrent();
    stream_ = std::make_unique<Stream>(device_->api());
  }

  const DriverApi &api() const { return device_->api(); }

  const CudaDevice *device_ = nullptr;
  std::unique_ptr<Stream> stream_;
};

} // namespace v4rt::cuda
