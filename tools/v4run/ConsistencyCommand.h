// `v4run consistency ARTIFACT --prompt-len P`: the logits of one prefill, a
// prefill in uneven chunks and token-by-token decode must agree (max relative
// error per position <= --tolerance); on GPU artifacts also decode replayed
// from a CUDA graph against plain launches. Needs no reference outputs, so it
// checks real-size models with dummy weights.
#pragma once

#include <cstdint>
#include <string>

namespace v4run {

struct ConsistencyOptions {
  std::string artifact;
  int64_t promptLength = 300;
  double tolerance = 1e-4;
  double graphTolerance = 1e-6; // graph replay vs plain launches: the same kernels
  unsigned threads = 0;
  int64_t maxContext = 0;
};

int runConsistency(const ConsistencyOptions &options);

} // namespace v4run
