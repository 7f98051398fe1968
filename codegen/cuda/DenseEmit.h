// What the dense kernel family's emitters share (DenseRowEmitters.cpp,
// DenseMatmulEmitters.cpp, DenseHcEmitters.cpp, DenseRouterEmitters.cpp; the
// family's list is denseEmitters() in DenseEmitters.cpp): the header constants
// more than one family file relies on, and `Emit`, the checks and source
// assembly bound to one step. Internal to codegen/cuda.
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "codegen/cuda/KernelEmitter.h"
#include "common/Error.h"

namespace v4c::cuda::dense {

// Must match the constants of the headers.
constexpr uint32_t kElementwiseThreads = 256; // Dense.cuh, HyperConnection.cuh (expand/post)
constexpr int64_t kGemvMaxTokens = 8;      // decode shapes (GEMV, split mHC, split router) up to 8 tokens
constexpr int64_t kSpreadBlocks = 2 * 132; // decode kernels that stream a weight: two blocks per H100 SM
constexpr int64_t kMaxGridBlocks = 65535; // for grid-stride kernels (any grid works)
constexpr int64_t kMaxGridYZ = 65535;

inline const char *shortName(v4rt::DType dtype) {
  switch (dtype) {
  case v4rt::DType::F32: return "f32";
  case v4rt::DType::BF16: return "bf16";
  case v4rt::DType::F16: return "f16";
  case v4rt::DType::F8E4M3: return "e4m3";
  case v4rt::DType::I32: return "i32";
  case v4rt::DType::I64: return "i64";
  case v4rt::DType::U8: return "u8";
  }
  return "unknown";
}

inline bool isFloat(v4rt::DType dtype) {
  return dtype == v4rt::DType::F32 || dtype == v4rt::DType::BF16 || dtype == v4rt::DType::F16;
}

inline int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

inline std::string str(int64_t value) { return std::to_string(value); }

// Helpers bound to one step.
class Emit {
public:
  explicit Emit(const StepView &view) : view(view), op(view.opName()) {}

  const StepView &view;
  const std::string op;
  // static_asserts put at the top of the entry: the geometry this emitter
  // computed must be what the headers' templates assume, or nvcc fails.
  std::string checks;

  // The message keeps its "DenseEmitters.cpp" (the family) so generated sources stay unchanged.
  void expect(const std::string &condition, const std::string &what) {
    checks += "  static_assert(" + condition + ", \"DenseEmitters.cpp and the v4cuda headers disagree on " + what +
              "\");\n";
  }

  [[noreturn]] void fail(const std::string &message) const { throw Error(op + ": " + message); }
  void require(bool condition, const std::string &message) const {
    if (!condition)
      fail(message);
  }

  // Parameter name of ODS operand `operand` ("in3").
  std::string in(int64_t operand) const { return "in" + str(view.operandIndex(operand)); }
  std::string inType(int64_t operand) const { return cTypeName(view.in(operand).dtype); }
  std::string outType(int64_t result) const { return cTypeName(view.out(result).dtype); }

  const std::vector<int64_t> &inShape(int64_t operand) const { return view.in(operand).shape; }
  const std::vector<int64_t> &outShape(int64_t result) const { return view.out(result).shape; }

  // A token-major [T, C] activation: checks rank and rows, returns C.
  int64_t rowWidth(const std::vector<int64_t> &shape, const char *what) const {
    require(shape.size() == 2 && shape[0] == tokens(),
            std::string(what) + " must be [" + str(tokens()) + ", C] (the bucket's tokens), got " + shapeText(shape));
    require(shape[1] > 0, std::string(what) + " has no columns");
    return shape[1];
  }
  int64_t inWidth(int64_t operand, const char *what) const { return rowWidth(inShape(operand), what); }
  int64_t outWidth(int64_t result, const char *what) const { return rowWidth(outShape(result), what); }

  void requireFloat(v4rt::DType dtype, const char *what) const {
    require(isFloat(dtype), std::string(what) + " must be f32, bf16 or f16, got " + shortName(dtype));
  }
  void requireFloatIns(std::initializer_list<int64_t> operands) const {
    for (int64_t operand : operands)
      requireFloat(view.in(operand).dtype, ("operand " + str(operand)).c_str());
  }
  void requireFloatOuts(std::initializer_list<int64_t> results) const {
    for (int64_t result : results)
      requireFloat(view.out(result).dtype, ("result " + str(result)).c_str());
  }
  void requireDtype(const v4rt::ArgRef &arg, v4rt::DType dtype, const char *what) const {
    require(arg.dtype == dtype, std::string(what) + " must be " + shortName(dtype) + ", got " + shortName(arg.dtype));
  }

  int64_t tokens() const { return view.bucketTokens(); }

  // "v4_<op>_<variant>_<dtypes of every argument>": the tail is added by callers.
  std::string entryBase(const std::string &variant = "") const {
    std::string name = "v4_" + identifierFragment(op.substr(op.find('.') + 1));
    if (!variant.empty())
      name += "_" + variant;
    for (const v4rt::ArgRef &arg : view.step.ins)
      name += std::string("_") + shortName(arg.dtype);
    name += "_to";
    for (const v4rt::ArgRef &arg : view.step.outs)
      name += std::string("_") + shortName(arg.dtype);
    return name + "_T" + str(tokens());
  }

  static std::string shapeText(const std::vector<int64_t> &shape) {
    std::string text = "[";
    for (size_t i = 0; i < shape.size(); ++i)
      text += (i ? ", " : "") + str(shape[i]);
    return text + "]";
  }

  // The entry: `extern "C" __global__ void <entry>(<params>) { body }`.
  EmittedKernel kernel(const std::string &entry, const std::string &body, uint32_t threads, LaunchDims dims,
                       const std::string &tables = "") const {
    EmittedKernel k;
    k.entry = entry;
    k.source = tables + "extern \"C\" __global__ void __launch_bounds__(" + str(threads) + ") " + entry + "(" +
               view.paramList() + ") {\n" + checks + body + "}\n";
    dims.block[0] = threads;
    dims.block[1] = dims.block[2] = 1;
    require(dims.sharedBytes <= 227 * 1024, "needs " + str(dims.sharedBytes) + " bytes of shared memory (over 227 KB)");
    require(dims.grid[1] <= kMaxGridYZ && dims.grid[2] <= kMaxGridYZ, "grid.y/z over 65535");
    k.dims = dims;
    return k;
  }
};

inline std::string numberTag(double value) { return identifierFragment(floatLiteral(value)); }

inline LaunchDims gridX(int64_t blocks) {
  LaunchDims dims;
  dims.grid[0] = static_cast<uint32_t>(std::max<int64_t>(1, blocks));
  return dims;
}

// Grid of a grid-stride elementwise kernel over `count` items.
inline LaunchDims elementwiseGrid(int64_t count) {
  return gridX(std::min(kMaxGridBlocks, ceilDiv(count, kElementwiseThreads)));
}

// The family's emitters, one list per file.
std::vector<NamedEmitter> rowEmitters();    // embed, add, swiglu, rms_norm, rope
std::vector<NamedEmitter> matmulEmitters(); // linear, grouped_linear, norm_linear, linear_swiglu, linear_fp8
std::vector<NamedEmitter> hcEmitters();     // hc_expand, hc_post, hc_pre, hc_head, hc_post_pre
std::vector<NamedEmitter> routerEmitters(); // router, hash_router

} // namespace v4c::cuda::dense
