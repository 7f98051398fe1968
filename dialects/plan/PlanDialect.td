// The `plan` dialect: what the runtime executes, one bucket per shape.
#ifndef V4C_PLAN_DIALECT_TD
#define V4C_PLAN_DIALECT_TD

include "mlir/IR/OpBase.td"

def Plan_Dialect : Dialect {
  let name = "plan";
  let cppNamespace = "::v4c::plan";
  let summary = "Kernel launches on arena, weight, cache and I/O buffers";
  let description = [{
    A `plan.bucket` is one specialised forward function (a prefill chunk of
    T tokens or a decode step of B sessions) as a straight-line list of
    `plan.launch` steps. Buffers are typed by static shape: arena allocations
    (`plan.alloc`, placed by `v4-plan-memory`), weights (`plan.weight`),
    per-session caches (`plan.cache` of a module-level `plan.cache_slot`) and
    the bucket's inputs and outputs.
  }];
  let useDefaultTypePrinterParser = 1;
  // Inherent attributes live in the attribute dictionary, like the v4 dialect.
  let usePropertiesForAttributes = 0;
}

#endif // V4C_PLAN_DIALECT_TD
