// Pieces the state kernel host tests (StateKernelsHostTest.cpp,
// BatchedStateKernelsHostTest.cpp, LongContextDecodeHostTest.cpp) share:
// the reference attention's and indexer's parameters and the key rows that
// force ties.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "runtime/cpu/ReferenceKernels.h"

namespace v4cuda::testing {

// ref::indexerTopK's parameters for the kernels' IndexerShape{heads, topK,
// rate, weightScale 0.25, scoreScale}.
inline v4rt::ref::IndexerParams indexerParams(int64_t heads, int64_t headDim, int64_t topK, int64_t rate,
                                              double scoreScale) {
  v4rt::ref::IndexerParams p;
  p.heads = heads;
  p.headDim = headDim;
  p.topK = topK;
  p.rate = rate;
  p.weightScale = 0.25;
  p.scoreScale = scoreScale;
  return p;
}

// ref::attention's parameters: nh heads of HD, a window of W, entries at
// `rate` (0: none), top-k slots of topKWidth columns (0: every entry).
inline v4rt::ref::AttentionParams attentionParams(int64_t heads, int64_t headDim, int64_t window, int64_t rate,
                                                  double scale, int64_t topKWidth) {
  v4rt::ref::AttentionParams p;
  p.numHeads = heads;
  p.headDim = headDim;
  p.window = window;
  p.rate = rate;
  p.scale = scale;
  p.topKWidth = topKWidth;
  return p;
}

// Copies key row w over row w + 7 for w = 0, 7, 14, ...: equal rows give
// equal scores, so top-k must order them by index (the lower first).
inline void repeatEverySeventhRow(std::vector<float> &keys, int64_t dim, int64_t rows) {
  for (int64_t w = 0; w + 7 < rows; w += 7)
    std::copy(keys.begin() + w * dim, keys.begin() + (w + 1) * dim, keys.begin() + (w + 7) * dim);
}

} // namespace v4cuda::testing
