// The shape contract of every v4 op a cpu program runs: operand counts,
// ranks, dtypes, the dims that must agree with each other and with the
// step's attributes, and cache slots of the right kind and width. The CPU
// kernels (runtime/cpu) index buffers with these dims and trust them; a step
// that breaks its contract would read or write outside its buffers. Checked
// once per program (checkProgram, for target "cpu"), never per call.
#pragma once

#include "runtime/artifact/Program.h"

namespace v4rt::artifact {

// Throws v4c::Error with one line naming the bucket, step index, op and the
// mismatch, e.g. `bucket "prefill_64" step 13 (v4.linear): ...`. Steps of
// kernels that are not v4 ops are left to the backend that binds them.
// Assumes checkProgram's structural checks passed for the bucket.
void checkStepContract(const Program &program, const Bucket &bucket, size_t stepIndex);

} // namespace v4rt::artifact
