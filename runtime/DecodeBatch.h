// Continuous batching of decode: one plan run feeds one token to each of
// several sessions, so every weight is read once per step, not once per
// session.
//
// Sessions join and leave between steps simply by being in the list or not;
// each keeps its own position, caches and page progress. A batched decode
// bucket (v4c compile --decode-batch 1,4,8 -> decode_1, decode_4, decode_8)
// holds row r of every token-major tensor for session r (docs/ops.md,
// "Batched decode"). Steps that touch no session cache run once over the n
// rows; steps with a cache operand run once per row, against that row's
// session caches, with tokens = 1.
#pragma once

#include <cstddef>
#include <cstdint>

namespace v4rt {

class Session;

// Feeds ids[i] to sessions[i] (n distinct sessions of one model, at any
// positions) as one decode step and advances each exactly as
// Session::decode does (position, tokens, page snapshots, prefix-cache
// pages). `logits` receives n x vocab floats, row i for session i, or
// nothing when null. Runs the smallest decode bucket of >= n sessions; more
// sessions than the largest bucket are split into runs of the largest.
// Returns the plan runs taken. Sessions with a step hook
// (Session::setStepHook) decode one by one, so the hook sees their own runs.
// Throws v4c::Error (before running anything)
// on a null or repeated session, sessions of different models, or an id out
// of range.
int64_t decodeBatch(Session *const *sessions, size_t n, const int32_t *ids, float *logits);

} // namespace v4rt
