// `v4run profile ARTIFACT --bucket decode|prefill [--context N] [--batch B]
// [--repeat R]`: where a bucket's time goes, launch by launch.
//
// A session is first filled to N tokens of context (prefill in chunks; on
// GPU artifacts `--fill tiled` computes only the first chunk and copies its
// compressed entries up to N, for contexts whose prefill would take
// minutes). Then the bucket runs at context N, after warm-up runs, R times,
// every run at the same positions: GPU artifacts with a CUDA event before and
// after each launch, enqueued behind replays of the bucket's CUDA graph so
// the host is ahead of the device and no host gap enters a step's time (the
// whole bucket is also timed alone, as one graph); cpu artifacts on the host
// clock through the session's step hook (the session is truncated back to N
// between runs).
//
// The table: per step its kernel, op, median time, the bytes it must move
// and its FLOPs (StepWork.h), achieved GB/s and TFLOP/s and the share of its
// ceiling reached: max(bytes / bandwidth, FLOPs / peak) / time, the peak
// being the tensor-core one of the step's arithmetic (bf16 798 TFLOP/s, fp8
// twice that; f32 67 TFLOP/s without tensor cores). Then a summary per op,
// and one JSON line.
#pragma once

#include <cstdint>
#include <string>

namespace v4run {

struct ProfileOptions {
  std::string artifact;
  std::string bucket = "decode"; // decode | prefill
  int64_t context = 0;           // tokens each session holds before the profiled run
  int64_t batch = 1;             // decode: sessions (a decode bucket of batch >= B)
  int64_t tokens = 0;            // prefill: live rows (0: the bucket's tokens)
  int64_t repeat = 10;
  int64_t warmup = 2;
  unsigned threads = 0;
  int64_t maxContext = 0; // GPU: session capacity (0: context + the bucket's tokens)
  std::string fill = "compute"; // compute | tiled (GPU)
  int64_t fillChunk = 4096;     // tiled: tokens computed before tiling
  bool graphs = true;           // GPU: the bucket as a CUDA graph (false: plain launches only)
  int64_t prime = -1;           // GPU: graph replays queued before each timed run (< 0: auto)
  double bandwidth = 3.0e12;    // bytes/s (H100 SXM: ~3.0 TB/s)
  double peakBf16 = 798e12;     // FLOP/s of bf16 tensor cores (fp8: twice)
  double peakF32 = 67e12;       // FLOP/s of fp32 without tensor cores
  bool quiet = false;           // only the summary and the JSON line
  bool modelOnly = false;       // bytes, FLOPs and ceilings only: nothing runs (no device needed)
};

int runProfile(const ProfileOptions &options);

} // namespace v4run
