// Structural validation of a Program: every index, range and shape a runtime
// would trust. Run by the reader on every artifact it opens (after the
// flatbuffers Verifier) and by the writer before it writes one.
#pragma once

#include "runtime/artifact/Program.h"

namespace v4rt::artifact {

// Throws v4c::Error with one line naming the bucket/step/argument, cache or
// slot at fault. Checks: names present (and unique for buckets and weights),
// bucket sizes sane, kernel indices < kernels, Weight/Cache/Input/Output
// argument indices in range, Arena arguments inside arenaBytes, Weight
// arguments no larger than the weight, shapes non-negative without 64-bit
// overflow, cache slots with positive widths and rows/rate as their kind
// needs, integer attributes within +-2^20 (hyperparameters kernels loop on),
// operandSegmentSizes non-negative and adding up to the step's inputs.
// cpu programs: every v4 op step keeps its shape contract (StepContracts.h).
// Weight placement is checked separately (checkWeightLayout).
void checkProgram(const Program &program);

} // namespace v4rt::artifact
