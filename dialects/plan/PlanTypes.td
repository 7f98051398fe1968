// Types of the `plan` dialect.
#ifndef V4C_PLAN_TYPES_TD
#define V4C_PLAN_TYPES_TD

include "PlanDialect.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/BuiltinTypeInterfaces.td"

class Plan_Type<string name, string typeMnemonic> : TypeDef<Plan_Dialect, name> {
  let mnemonic = typeMnemonic;
}

def Plan_BufferType : Plan_Type<"Buffer", "buffer"> {
  let summary = "a buffer of statically known shape and element type";
  let description = [{
    Bytes the runtime hands to a kernel: an arena range, a weight, an input or
    an output. Every dimension is static (the bucket fixes the token count).

    ```mlir
    !plan.buffer<64x128xf32>
    ```
  }];
  let parameters = (ins ArrayRefParameter<"int64_t">:$shape, "::mlir::Type":$elementType);
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    int64_t getNumElements() const;
    // Bytes of the whole buffer (sub-byte element types round up per element).
    uint64_t getByteSize() const;
  }];
}

def Plan_CacheType : Plan_Type<"Cache", "cache"> {
  let summary = "a per-session cache slot";
  let description = [{
    The value of a `plan.cache` op: the session's storage for one
    `plan.cache_slot`. Kernels read and update it in place.

    ```mlir
    %c = plan.cache @"layers.0.window" : !plan.cache
    ```
  }];
}

def Plan_AnyBuffer : AnyTypeOf<[Plan_BufferType, Plan_CacheType], "plan buffer or cache">;

#endif // V4C_PLAN_TYPES_TD
