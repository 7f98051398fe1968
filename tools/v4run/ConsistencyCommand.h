// `v4run consistency ARTIFACT --prompt-len P`: the logits of one prefill, a
// prefill in uneven chunks and token-by-token decode must agree (max relative
// error per position <= --tolerance); on GPU artifacts also decode replayed
// from a CUDA graph against plain launches. Needs no reference outputs, so it
// checks real-size models with dummy weights.
//
// `--batch N` (N > 1) checks continuous batching instead: N sessions with
// prompts of --prompt-len, --prompt-len - 1, ... tokens decode --decode greedy
// steps through Runner::decodeBatch (the last session joins one step late,
// decoding its first token alone); each session's tokens must equal, and its
// logits be within --batch-tolerance of, the same session decoded alone.
#pragma once

#include <cstdint>
#include <string>

namespace v4run {

struct ConsistencyOptions {
  std::string artifact;
  int64_t promptLength = 300;
  double tolerance = 1e-4;
  double graphTolerance = 1e-6; // graph replay vs plain launches: the same kernels
  int64_t batch = 0;             // 2..kMaxBatchSessions: the batched-decode check (0: off)
  int64_t decodeSteps = 3;       // batched-decode check: greedy steps per session
  double batchTolerance = 1e-5;  // batched vs alone (row-wise kernels may sum in another order)
  unsigned threads = 0;
  int64_t maxContext = 0;
};

int runConsistency(const ConsistencyOptions &options);

} // namespace v4run
