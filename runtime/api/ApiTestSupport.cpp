#include "runtime/api/ApiTestSupport.h"

#include <algorithm>
#include <cmath>

#include "common/Error.h"

namespace v4rt::apitest {

std::string takeMessage(v4rt_status status) {
  if (!status)
    return "";
  std::string message = v4rt_status_message(status);
  v4rt_status_free(status);
  return message;
}

float maxRowRelativeError(const std::vector<float> &a, const std::vector<float> &b, int64_t vocab) {
  v4c::check(a.size() == b.size() && vocab > 0 && a.size() % static_cast<size_t>(vocab) == 0,
             "maxRowRelativeError: " + std::to_string(a.size()) + " vs " + std::to_string(b.size()) + " floats");
  float worst = 0.0f;
  for (size_t row = 0; row * vocab < a.size(); ++row) {
    float difference = 0.0f, scale = 0.0f;
    for (int64_t v = 0; v < vocab; ++v) {
      const size_t i = row * vocab + v;
      if (std::isnan(a[i]) || std::isnan(b[i]))
        return INFINITY;
      difference = std::max(difference, std::fabs(a[i] - b[i]));
      scale = std::max(scale, std::fabs(b[i]));
    }
    worst = std::max(worst, scale > 0.0f ? difference / scale : difference);
  }
  return worst;
}

std::vector<float> logitRow(const std::vector<float> &all, int64_t row, int64_t vocab) {
  return std::vector<float>(all.begin() + row * vocab, all.begin() + (row + 1) * vocab);
}

int32_t argmax(const std::vector<float> &logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

} // namespace v4rt::apitest
