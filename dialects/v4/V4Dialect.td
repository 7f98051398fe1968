//===- V4Dialect.td - the v4 dialect definition ------------*- tablegen -*-===//
//
// The `v4` dialect states a DeepSeek-V4 model as model-level ops on tensors
// (what is computed, not how). The op catalog and its numerics live in
// docs/ops.md; runtime/cpu/ReferenceKernels.h is the executable definition.
//
//===----------------------------------------------------------------------===//

#ifndef V4_DIALECT_TD
#define V4_DIALECT_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"

def V4_Dialect : Dialect {
  let name = "v4";
  let cppNamespace = "::v4c::v4";
  let summary = "DeepSeek-V4 model-level ops on token-major tensors";
  let description = [{
    Every activation is a 2-D tensor `[T, C]` (T = tokens of the chunk, `?`
    before shape specialization). Heads are packed in the channel dimension,
    weights are `v4.weight @sym` values declared by `v4.global`, and decode
    state is threaded through `!v4.cache` SSA values, so all ops are pure.
  }];
  let useDefaultTypePrinterParser = 1;
  let useDefaultAttributePrinterParser = 1;
  // Inherent attributes stay in the attribute dictionary: the generic
  // v4-to-plan lowering copies op->getAttrDictionary() into kernel parameters.
  let usePropertiesForAttributes = 0;
  let extraClassDeclaration = [{
  private:
    void registerTypes();
    void registerAttributes();
  public:
  }];
}

class V4_Op<string mnemonic, list<Trait> traits = []>
    : Op<V4_Dialect, mnemonic, traits>;

#endif // V4_DIALECT_TD
