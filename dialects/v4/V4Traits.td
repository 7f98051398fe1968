//===- V4Traits.td - properties of v4 ops -------------------*- tablegen -*-===//
//
// Op properties that lowering and memory planning rely on. Each is a contract
// that every backend's kernel of a marked op must honour. Included from
// V4Ops.td.
//
//===----------------------------------------------------------------------===//

#ifndef V4_TRAITS_TD
#define V4_TRAITS_TD

include "mlir/IR/OpBase.td"

// Result #0 may be written over an operand (an in-place launch).
def V4_InPlaceElementwise : NativeOpTrait<"InPlaceElementwise"> {
  let cppNamespace = "::v4c::v4::OpTrait";
  // Documentation (tablegen traits carry no description field):
  //
  // The kernel stays correct when result #0 occupies exactly the bytes of an
  // operand of the same type: it computes each output row (a token's
  // channels; v4.rms_norm: each channel group; v4.rope: each rotated pair)
  // only from the same row of that operand, and reads everything it needs of
  // the row before it writes any element of it. No element outside that row
  // is read or written. Operands of another type (weights, positions) are
  // never overwritten.
  //
  // v4-lower-to-plan records the eligible operands (v4::inPlaceOperands) as
  // the `in_place` attribute of the plan.launch; v4-plan-memory then gives
  // the result the operand's arena offset when that launch is the operand's
  // last reader. Every backend (CPU reference kernels, CUDA) must keep this
  // property for each marked op; codegen/InPlaceKernelsTest.cpp runs each
  // marked CPU kernel with out == in and compares bit for bit. docs/ops.md
  // lists the marked ops.
}

#endif // V4_TRAITS_TD
