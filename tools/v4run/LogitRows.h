// Comparing logits row by row (rows of V floats): the greedy token of a row
// and the worst error between two runs' rows, for the v4run checks that run
// the same prompts two ways (consistency, interleave, prefix reuse).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace v4run {

// The row's argmax (ties to the lower id).
inline int32_t greedyToken(const float *row, int64_t V) {
  return static_cast<int32_t>(std::max_element(row, row + V) - row);
}

struct RowDifference {
  double maxRelative = 0.0; // max over rows of ||ours - reference|| / ||reference||
  double maxAbsolute = 0.0;
  int64_t worstRow = 0;     // the row of maxRelative
};

// 0 when bit-identical (as on the emulated driver; a real GPU may reorder a
// reduction between runs). NaN wins.
inline RowDifference compareRows(const std::vector<float> &ours, const std::vector<float> &reference, int64_t V) {
  RowDifference d;
  for (size_t row = 0; row * V < reference.size(); ++row) {
    double diff = 0.0, norm = 0.0;
    for (int64_t v = 0; v < V; ++v) {
      const double r = reference[row * V + v], x = ours[row * V + v];
      diff += (x - r) * (x - r);
      norm += r * r;
      d.maxAbsolute = std::max(d.maxAbsolute, std::fabs(x - r));
      if (std::isnan(x))
        d.maxAbsolute = NAN;
    }
    const double relative = std::sqrt(diff) / std::max(std::sqrt(norm), 1e-30);
    if (!(relative <= d.maxRelative)) {
      d.maxRelative = relative;
      d.worstRow = static_cast<int64_t>(row);
    }
  }
  return d;
}

inline double maxRowRelativeError(const std::vector<float> &ours, const std::vector<float> &reference, int64_t V) {
  return compareRows(ours, reference, V).maxRelative;
}

} // namespace v4run
