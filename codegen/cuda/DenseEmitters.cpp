// The dense kernel family (include/v4cuda/Dense.cuh, DenseLinear.cuh,
// HyperConnection.cuh, Router.cuh, Quant.cuh): one emitter file per kernel
// kind, sharing DenseEmit.h. Each emitter checks the step's shapes, names its
// entry after everything baked into it, and instantiates the template with the
// step's dtypes, static shapes and attributes.
#include "codegen/cuda/DenseEmit.h"

namespace v4c::cuda {

std::vector<NamedEmitter> denseEmitters() {
  std::vector<NamedEmitter> all;
  for (const std::vector<NamedEmitter> &file :
       {dense::rowEmitters(), dense::matmulEmitters(), dense::hcEmitters(), dense::routerEmitters()})
    all.insert(all.end(), file.begin(), file.end());
  return all;
}

} // namespace v4c::cuda
