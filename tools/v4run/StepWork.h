// What one launch of a plan step must move and compute: the model behind
// `v4run profile`'s ceilings and `v4run bench`'s decode roofline
// (DecodeTraffic.h). Everything comes from the Program (argument shapes,
// cache slots, attributes, the model config) and the run's shape (live rows,
// context); no device is needed.
//
// Bytes (the floor for a kernel that reads each byte once):
//  - weights: every weight argument, except routed experts (rank 3, dim 0 =
//    n_routed_experts): the share a run of R token rows touches,
//    1 - (1 - k/E)^R; and tables indexed by token id ([V, ...] read by a step
//    that takes the `ids` input): R rows;
//  - activations: arena / input / output arguments, token-major ones at the
//    live rows only, each input read once and each output written once;
//  - caches, per session: Window read min(context, W) rows, appended rows
//    written; CompressState read whole, one row per token written; Entries
//    read up to the visible rows at the run's last token (capped at T x K
//    when the step also takes an i32 [T, K] index list: CSA attention), the
//    entries completed in the run written.
// FLOPs (2 per multiply-add) of the matmul-like ops: 2 R N K per linear
// weight [N, K] (linears, fused norm/swiglu/compress projections, routers,
// the mHC fn), 2 R k 3 I D for MoE, 4 H hd per attention candidate and
// 2 nI dI per indexer entry, summed over the tokens' own positions.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/artifact/Program.h"

namespace v4run {

// The arithmetic a step's FLOPs run in, which picks its compute ceiling.
enum class MathKind { None, F32, BF16, FP8 };
const char *mathKindName(MathKind kind); // "-", "f32", "bf16", "fp8"

struct StepWork {
  std::string op; // plan op ("v4.linear"); "?" when the kernel name names none
  uint64_t weightBytes = 0;
  uint64_t activationBytes = 0;
  uint64_t cacheReadBytes = 0;
  uint64_t cacheWrittenBytes = 0;
  double flops = 0.0;
  MathKind math = MathKind::None;
  uint64_t bytes() const { return weightBytes + activationBytes + cacheReadBytes + cacheWrittenBytes; }
};

// One run of a bucket: `rows` live token rows (dyn[0]); before the run each
// session holds `context` tokens. A batched decode bucket (batch > 1) runs one
// token of `rows` sessions, each at `context`; any other bucket runs `rows`
// consecutive tokens of one session (positions context, context + 1, ...).
struct RunShape {
  int64_t rows = 1;
  int64_t context = 0;
};

// The plan op a step's kernel implements: CPU artifacts name it ("v4.linear");
// CUDA entries start with it ("v4_linear_gemv_...", "v4s_attention_...", the
// longest op that fits). "?" when none does.
std::string stepOp(const v4rt::Program &program, const v4rt::Step &step);

class WorkModel {
public:
  explicit WorkModel(const v4rt::Program &program); // reads the model config (experts, top-k, vocab)

  StepWork step(const v4rt::Bucket &bucket, const v4rt::Step &step, const RunShape &run) const;
  // Bytes of weight argument `arg` (ArgKind::Weight) a run of `rows` token rows reads.
  uint64_t weightBytes(const v4rt::Step &step, const v4rt::ArgRef &arg, int64_t rows) const;
  // Cache bytes (read + written) of argument `arg` (ArgKind::Cache) of `step`.
  uint64_t cacheReadBytes(const v4rt::Bucket &bucket, const v4rt::Step &step, const v4rt::ArgRef &arg,
                          const RunShape &run) const;
  uint64_t cacheWrittenBytes(const v4rt::Bucket &bucket, const v4rt::Step &step, const v4rt::ArgRef &arg,
                             const RunShape &run) const;
  // KV cache bytes one token adds to a session: every Entries slot's row
  // bytes / its rate (window and compressor state are bounded).
  double cacheBytesPerToken() const;

  int64_t routedExperts() const { return experts_; }

private:
  double flops(const v4rt::Bucket &bucket, const v4rt::Step &step, const std::string &op, const RunShape &run,
               MathKind &math) const;

  const v4rt::Program &program_;
  int64_t experts_ = 0, topK_ = 0, vocab_ = 0;
};

} // namespace v4run
