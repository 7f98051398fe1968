// RoPE inverse frequencies, bit-for-bit as transformers 5.17 computes them.
//
// transformers builds inv_freq with float32 torch ops; every step below is the
// same float32 operation in the same order (this file is compiled with
// -ffp-contract=off so no multiply-add is fused into an FMA that torch would
// not use). Only the YaRN correction range is computed in double, as Python
// does.
#include "models/config/ModelConfig.h"

#include "common/Error.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace v4c {
namespace {

// torch.pow(python_float, float32_tensor): float32 result. The double pow
// rounded once to float is the correctly rounded float32 power.
float pow32(float base, float exponent) {
  return static_cast<float>(std::pow(static_cast<double>(base), static_cast<double>(exponent)));
}

// base ** (arange(0, dim, 2).float() / dim) in float32.
std::vector<float> positionFrequencies(double theta, int64_t dim) {
  std::vector<float> freqs(static_cast<size_t>(dim / 2));
  const float base = static_cast<float>(theta);
  const float dimF = static_cast<float>(dim);
  for (int64_t i = 0; i < dim / 2; ++i) {
    const float exponent = static_cast<float>(2 * i) / dimF;
    freqs[static_cast<size_t>(i)] = pow32(base, exponent);
  }
  return freqs;
}

// YaRN's find_correction_dim, in double like the Python original.
double correctionDim(double rotations, int64_t dim, double base, double originalMax) {
  return (static_cast<double>(dim) * std::log(originalMax / (rotations * 2.0 * M_PI))) /
         (2.0 * std::log(base));
}

} // namespace

std::vector<float> RopeParams::invFreq() const {
  check(ropeDim > 0 && ropeDim % 2 == 0,
        "rope: rope dimension " + std::to_string(ropeDim) + " must be positive and even");
  check(theta > 0, "rope: rope_theta must be positive");
  const std::vector<float> posFreqs = positionFrequencies(theta, ropeDim);
  const size_t half = posFreqs.size();
  std::vector<float> inv(half);

  if (type == "default") {
    for (size_t i = 0; i < half; ++i)
      inv[i] = 1.0f / posFreqs[i];
    return inv;
  }
  check(type == "yarn", "rope: unknown rope_type \"" + type + "\" (expected default or yarn)");
  check(factor > 0, "rope: yarn factor must be positive");
  check(originalMaxPositionEmbeddings > 0,
        "rope: yarn needs a positive original_max_position_embeddings");

  const double originalMax = static_cast<double>(originalMaxPositionEmbeddings);
  double low = correctionDim(betaFast, ropeDim, theta, originalMax);
  double high = correctionDim(betaSlow, ropeDim, theta, originalMax);
  if (truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, static_cast<double>(ropeDim - 1));
  if (low == high)
    high += 0.001; // avoids a division by zero, as HF does
  const float lowF = static_cast<float>(low);
  const float spanF = static_cast<float>(high - low);
  const float factorF = static_cast<float>(factor);

  for (size_t i = 0; i < half; ++i) {
    const float extrapolation = 1.0f / posFreqs[i];
    const float interpolation = 1.0f / (factorF * posFreqs[i]);
    float ramp = (static_cast<float>(i) - lowF) / spanF;
    ramp = std::min(std::max(ramp, 0.0f), 1.0f);
    const float extrapolationFactor = 1.0f - ramp;
    const float interpolated = interpolation * (1.0f - extrapolationFactor);
    const float extrapolated = extrapolation * extrapolationFactor;
    inv[i] = interpolated + extrapolated;
  }
  return inv;
}

} // namespace v4c
