// The bytes one decode step must move from device memory: the floor a
// memory-bound decode cannot beat (bench's roofline). The per-argument rules
// are StepWork.h's; here the decode bucket's steps are summed with every
// weight counted once (as its first reader reads it).
//
// Weights: every weight the decode bucket reads, routed experts at the share
// a batch of B tokens touches (k/E at B = 1), token-indexed tables
// (embedding, tid2eid) at B rows. Caches at context P (each session's token
// at position P): window rows min(P, W), visible or top-K compressed
// entries, the compressor state, and the rows the step appends.
// Activations are left out (a decode step's are KBs, cache-resident).
#pragma once

#include <cstdint>
#include <string>

#include "runtime/artifact/Program.h"

namespace v4run {

struct DecodeTraffic {
  uint64_t weightBytes = 0;       // as read by one step (experts and rows scaled)
  uint64_t routedExpertBytes = 0; // all routed experts' bytes (before scaling)
  uint64_t cacheBytes = 0;        // read + written
  uint64_t total() const { return weightBytes + cacheBytes; }
};

// The bucket `batch` sessions decode with: the smallest decode bucket of
// batch >= `batch`, else the one-session decode bucket (run per session),
// else the largest prefill chunk (run for one token).
const v4rt::Bucket &decodeBucketOf(const v4rt::Program &program, int64_t batch = 1);

DecodeTraffic decodeTraffic(const v4rt::Program &program, int64_t context, int64_t batch);

// The KV cache bytes per token of V4-MODEL.md ("Decode state per layer",
// V4-Flash in bf16) for the config's layers: about 320 per CSA layer
// (an entry and an indexer key per 4 tokens) and 8 per HCA layer (an entry
// per 128); sliding layers hold only their bounded window. bench prints it
// next to the artifact's own figure (WorkModel::cacheBytesPerToken).
// -1 for configs without V4-Flash's head sizes (the figures do not apply).
double modelDocCacheBytesPerToken(const std::string &configJson);

} // namespace v4run
