// The bytes one decode step must move from device memory: the floor a
// memory-bound decode cannot beat (bench's roofline).
//
// Weights: every weight the decode bucket reads, except
//  - routed experts (rank-3 weights [E, ...] with E = n_routed_experts): a
//    batch of B tokens touches on average E * (1 - (1 - k/E)^B) of them
//    (k/E of the bytes at B = 1);
//  - weights indexed by token id ([V, ...] read by a step that takes the
//    `ids` input: the embedding, hash routing's tid2eid): B rows.
// Caches at context P (the step's token at position P), read-only uses:
//  - Window: min(P, W) rows; Entries: the (P + 1) / rate visible rows, or
//    the top-K of them when the step also takes an i32 [T, K] index list
//    (CSA attention); CompressState (read and written): every row.
#pragma once

#include <cstdint>

#include "runtime/artifact/Program.h"

namespace v4run {

struct DecodeTraffic {
  uint64_t weightBytes = 0;       // as read by one step (experts and rows scaled)
  uint64_t routedExpertBytes = 0; // all routed experts' bytes (before scaling)
  uint64_t cacheBytes = 0;
  uint64_t total() const { return weightBytes + cacheBytes; }
};

// The bucket a single session decodes with: the one-token decode bucket,
// else the largest prefill chunk (run for one token).
const v4rt::Bucket &decodeBucketOf(const v4rt::Program &program);

DecodeTraffic decodeTraffic(const v4rt::Program &program, int64_t context, int64_t batch);

} // namespace v4run
