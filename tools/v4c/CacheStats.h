// `v4c compile --stats`: what a session's KV cache costs in the compiled
// storage format (--kv-cache fp32 | bf16 | fp8), from the plan's cache slots.
#pragma once

#include "mlir/IR/BuiltinOps.h"

namespace v4c {

// Prints the bytes the cache grows by per token (compressed entries and
// indexer keys), the fixed bytes per session (windows, compressor state) and
// the total at 1M tokens, in the slots' own formats (the bytes a page on
// disk or a GPU cache holds), then a JSON line {"kv_cache": {...}}.
void printCacheStats(mlir::ModuleOp planned);

} // namespace v4c
