#include "codegen/cuda/KernelEmitter.h"

#include <cctype>
#include <cstdio>

#include "common/Error.h"

namespace v4c::cuda {

const std::string &StepView::opName() const { return program.kernels.at(step.kernel).name; }

int64_t StepView::operandIndex(int64_t operand) const { return step.operandIndex(operand); }

const v4rt::ArgRef &StepView::in(int64_t operand) const {
  const int64_t index = operandIndex(operand);
  check(index >= 0, opName() + ": operand " + std::to_string(operand) + " is absent");
  return step.ins.at(index);
}

const v4rt::ArgRef &StepView::out(int64_t result) const { return step.outs.at(result); }
int64_t StepView::inDim(int64_t operand, int64_t dim) const { return in(operand).shape.at(dim); }
int64_t StepView::outDim(int64_t result, int64_t dim) const { return out(result).shape.at(dim); }

static const v4rt::Attr *findAttr(const v4rt::Step &step, const char *name) {
  for (const v4rt::Attr &a : step.attrs)
    if (a.name == name)
      return &a;
  return nullptr;
}

int64_t StepView::attrInt(const char *name) const {
  const v4rt::Attr *a = findAttr(step, name);
  check(a != nullptr, opName() + ": step is missing attribute '" + name + "'");
  if (!a->ints.empty())
    return a->ints[0];
  check(!a->floats.empty(), opName() + ": attribute '" + name + "' is not a number");
  return static_cast<int64_t>(a->floats[0]);
}

double StepView::attrFloat(const char *name) const {
  const v4rt::Attr *a = findAttr(step, name);
  check(a != nullptr, opName() + ": step is missing attribute '" + name + "'");
  if (!a->floats.empty())
    return a->floats[0];
  check(!a->ints.empty(), opName() + ": attribute '" + name + "' is not a number");
  return static_cast<double>(a->ints[0]);
}

std::vector<double> StepView::attrFloats(const char *name) const {
  const v4rt::Attr *a = findAttr(step, name);
  check(a != nullptr, opName() + ": step is missing attribute '" + name + "'");
  return a->floats;
}

std::vector<int64_t> StepView::attrInts(const char *name) const {
  const v4rt::Attr *a = findAttr(step, name);
  check(a != nullptr, opName() + ": step is missing attribute '" + name + "'");
  return a->ints;
}

const v4rt::CacheSlot &StepView::cacheSlot(const v4rt::ArgRef &arg) const {
  check(arg.kind == v4rt::ArgKind::Cache, opName() + ": argument is not a cache slot");
  return program.caches.at(arg.index);
}

int64_t StepView::bucketTokens() const { return bucket.tokens; }

bool StepView::perRowCaches() const { return bucket.kind == v4rt::BucketKind::Decode && bucket.batch > 1; }

std::string StepView::paramList() const {
  std::string params;
  // An input that an output overwrites (an arena buffer written in place, a
  // cache slot the step updates) must not be __restrict__: the compiler could
  // then serve its loads from the non-coherent read-only cache.
  auto aliasedByAnOutput = [&](const v4rt::ArgRef &in) {
    for (const v4rt::ArgRef &out : step.outs) {
      if (in.kind != out.kind)
        continue;
      if ((in.kind == v4rt::ArgKind::Arena && in.offset == out.offset) ||
          (in.kind == v4rt::ArgKind::Cache && in.index == out.index))
        return true;
    }
    return false;
  };
  // Batched decode: a cache argument is a table of slot bases (the ABI).
  auto pointer = [&](const v4rt::ArgRef &arg) {
    return perRowCaches() && arg.kind == v4rt::ArgKind::Cache ? "* const*" : "*";
  };
  for (size_t i = 0; i < step.ins.size(); ++i)
    params += std::string("const ") + cTypeName(step.ins[i].dtype) + pointer(step.ins[i]) +
              (aliasedByAnOutput(step.ins[i]) ? " in" : " __restrict__ in") + std::to_string(i) + ", ";
  for (size_t i = 0; i < step.outs.size(); ++i)
    params += std::string(cTypeName(step.outs[i].dtype)) + pointer(step.outs[i]) + " out" + std::to_string(i) + ", ";
  return params + "const int32_t* __restrict__ dyn";
}

const char *cTypeName(v4rt::DType dtype) {
  switch (dtype) {
  case v4rt::DType::F32: return "float";
  case v4rt::DType::BF16: return "__nv_bfloat16";
  case v4rt::DType::F16: return "half";
  case v4rt::DType::F8E4M3: return "__nv_fp8_e4m3";
  case v4rt::DType::I32: return "int32_t";
  case v4rt::DType::I64: return "int64_t";
  case v4rt::DType::U8: return "uint8_t";
  }
  throw Error("unknown dtype in a CUDA kernel argument");
}

std::string floatLiteral(double value) {
  char text[40];
  std::snprintf(text, sizeof text, "%.17g", value);
  std::string literal(text);
  if (literal.find_first_of(".eEn") == std::string::npos) // "inf"/"nan" never reach here
    literal += ".0";
  return literal;
}

std::string deviceFloatTable(const std::string &name, const std::vector<double> &values) {
  std::string table = "static __device__ const float " + name + "[" + std::to_string(values.empty() ? 1 : values.size()) + "] = {";
  for (size_t i = 0; i < values.size(); ++i)
    table += (i ? ", " : "") + floatLiteral(values[i]) + "f";
  if (values.empty())
    table += "0.0f";
  return table + "};\n";
}

std::string identifierFragment(const std::string &text) {
  std::string id;
  for (char c : text)
    id += (std::isalnum(static_cast<unsigned char>(c)) != 0) ? c : '_';
  return id;
}

KernelEmitterFn findEmitter(const std::string &op) {
  for (const std::vector<NamedEmitter> &family : {denseEmitters(), stateEmitters()})
    for (const NamedEmitter &emitter : family)
      if (op == emitter.op)
        return emitter.fn;
  return nullptr;
}

} // namespace v4c::cuda
