// `v4c compile --stats`: kernels per decode step / prefill chunk with and
// without the fusion passes.
#pragma once

#include "mlir/IR/BuiltinOps.h"

#include "passes/Pipeline.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace v4c {

// (bucket name, plan.launch count) of every plan.bucket, in module order.
using KernelCounts = std::vector<std::pair<std::string, int64_t>>;
KernelCounts countKernels(mlir::ModuleOp planned);

// Compiles a clone of `imported` (a v4 model, not yet compiled) with
// `options` but fusion off, and counts its kernels.
KernelCounts countUnfusedKernels(mlir::ModuleOp imported, PipelineOptions options);

// Prints one row per bucket (kernels unfused, fused, saved) and a JSON line
// {"fusion": [...]}; throws v4c::Error if the two compiles disagree on buckets.
void printFusionStats(const KernelCounts &unfused, const KernelCounts &fused);

} // namespace v4c
