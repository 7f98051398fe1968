// plan dialect -> v4rt::Program.
#include "codegen/ProgramFromPlan.h"

#include "common/Error.h"
#include "dialects/plan/PlanOps.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;

namespace v4c {
namespace {

std::string describe(Location location) {
  if (auto file = dyn_cast<FileLineColLoc>(location))
    return (file.getFilename().getValue() + ":" + std::to_string(file.getLine()) + ":" +
            std::to_string(file.getColumn()))
        .str();
  std::string text;
  llvm::raw_string_ostream stream(text);
  location.print(stream);
  return text;
}

[[noreturn]] void fail(Operation *op, const std::string &message) {
  throw Error(describe(op->getLoc()) + ": '" + op->getName().getStringRef().str() + "' " + message);
}

std::string typeText(Type type) {
  std::string text;
  llvm::raw_string_ostream stream(text);
  stream << type;
  return text;
}

v4rt::DType dtypeOf(Operation *op, Type type) {
  if (type.isF32())
    return v4rt::DType::F32;
  if (type.isBF16())
    return v4rt::DType::BF16;
  if (type.isF16())
    return v4rt::DType::F16;
  if (type.isFloat8E4M3FN())
    return v4rt::DType::F8E4M3;
  if (type.isInteger(32))
    return v4rt::DType::I32;
  if (type.isInteger(64))
    return v4rt::DType::I64;
  if (type.isInteger(8))
    return v4rt::DType::U8;
  fail(op, "has element type " + typeText(type) +
               ", which the runtime cannot store; use f32, bf16, f16, f8E4M3FN, i32, i64 or i8");
}

std::vector<int64_t> toVector(ArrayRef<int64_t> values) { return {values.begin(), values.end()}; }

v4rt::Attr convertParam(plan::LaunchOp launch, NamedAttribute param) {
  v4rt::Attr attr;
  attr.name = param.getName().str();
  Attribute value = param.getValue();
  if (auto flag = dyn_cast<BoolAttr>(value))
    attr.ints = {flag.getValue() ? 1 : 0};
  else if (auto integer = dyn_cast<IntegerAttr>(value))
    attr.ints = {integer.getValue().getSExtValue()};
  else if (auto real = dyn_cast<FloatAttr>(value))
    attr.floats = {real.getValueAsDouble()};
  else if (auto i32s = dyn_cast<DenseI32ArrayAttr>(value))
    attr.ints.assign(i32s.asArrayRef().begin(), i32s.asArrayRef().end());
  else if (auto i64s = dyn_cast<DenseI64ArrayAttr>(value))
    attr.ints.assign(i64s.asArrayRef().begin(), i64s.asArrayRef().end());
  else if (auto f32s = dyn_cast<DenseF32ArrayAttr>(value))
    attr.floats.assign(f32s.asArrayRef().begin(), f32s.asArrayRef().end());
  else if (auto f64s = dyn_cast<DenseF64ArrayAttr>(value))
    attr.floats.assign(f64s.asArrayRef().begin(), f64s.asArrayRef().end());
  else if (auto text = dyn_cast<StringAttr>(value))
    attr.str = text.getValue().str();
  else
    fail(launch, "\"" + launch.getKernel().str() + "\" has parameter '" + attr.name +
                     "' of an unsupported kind; kernel parameters must be integers, bools, floats, "
                     "dense int/float arrays or strings");
  return attr;
}

v4rt::CacheKind cacheKindOf(plan::CacheSlotOp slot) {
  StringRef kind = slot.getKind();
  if (kind == "window")
    return v4rt::CacheKind::Window;
  if (kind == "compress_state")
    return v4rt::CacheKind::CompressState;
  if (kind == "entries")
    return v4rt::CacheKind::Entries;
  fail(slot, "has unknown kind \"" + kind.str() + "\"");
}

class ProgramBuilder {
public:
  ProgramBuilder(ModuleOp module, const std::string &target) : module(module) { program.target = target; }

  v4rt::Program build() {
    for (Operation &op : module.getBody()->getOperations()) {
      if (op.getName().getStringRef() == "v4.global")
        addWeight(&op);
      else if (auto slot = dyn_cast<plan::CacheSlotOp>(op))
        addCache(slot);
    }
    program.inputs = {{"ids", v4rt::DType::I32, 1}, {"positions", v4rt::DType::I32, 1}};
    for (auto bucket : module.getOps<plan::BucketOp>())
      addBucket(bucket);
    if (program.buckets.empty())
      throw Error(describe(module.getLoc()) +
                  ": the module has no plan.bucket; run v4-specialize, v4-lower-to-plan and v4-plan-memory first");
    return std::move(program);
  }

private:
  void addWeight(Operation *global) {
    auto name = global->getAttrOfType<StringAttr>(SymbolTable::getSymbolAttrName());
    auto typeAttr = global->getAttrOfType<TypeAttr>("type");
    auto type = typeAttr ? dyn_cast<RankedTensorType>(typeAttr.getValue()) : RankedTensorType();
    if (!name || !type || !type.hasStaticShape())
      fail(global, "needs a symbol name and a static tensor type to become a weight");
    v4rt::Weight weight;
    weight.name = name.getValue().str();
    weight.dtype = dtypeOf(global, type.getElementType());
    weight.shape = toVector(type.getShape());
    weightIndex[name.getValue()] = program.weights.size();
    program.weights.push_back(std::move(weight));
  }

  void addCache(plan::CacheSlotOp slotOp) {
    v4rt::CacheSlot slot;
    slot.name = slotOp.getSymName().str();
    slot.layer = static_cast<int32_t>(slotOp.getLayer());
    slot.kind = cacheKindOf(slotOp);
    slot.rows = slotOp.getRows();
    slot.width = slotOp.getWidth();
    slot.rate = slotOp.getRate();
    slot.dtype = dtypeOf(slotOp, slotOp.getElementType());
    slot.ropeWidth = static_cast<int64_t>(slotOp.getRopeWidth().value_or(0));
    cacheIndex[slotOp.getSymName()] = program.caches.size();
    cacheShape.push_back({slot.rows, slot.width});
    program.caches.push_back(std::move(slot));
  }

  void addBucket(plan::BucketOp bucketOp) {
    if (!bucketOp.getArenaBytes() || !bucketOp.getNaiveBytes())
      fail(bucketOp, "@" + bucketOp.getSymName().str() +
                         " has no arena_bytes/naive_bytes; run v4-plan-memory before building the program");
    v4rt::Bucket bucket;
    bucket.name = bucketOp.getSymName().str();
    bucket.kind = bucketOp.getKind() == "decode" ? v4rt::BucketKind::Decode : v4rt::BucketKind::Prefill;
    bucket.tokens = bucketOp.getTokens();
    bucket.batch = bucketOp.getBatch();
    bucket.arenaBytes = *bucketOp.getArenaBytes();
    bucket.naiveBytes = *bucketOp.getNaiveBytes();
    for (Operation &op : bucketOp.getBodyBlock()) {
      if (auto launch = dyn_cast<plan::LaunchOp>(op))
        bucket.steps.push_back(convertLaunch(launch));
      else if (auto output = dyn_cast<plan::OutputOp>(op))
        addOutput(output);
      else if (op.getDialect() == nullptr || op.getDialect()->getNamespace() != "plan")
        fail(&op, "cannot run inside a plan.bucket; lower it to a plan.launch");
    }
    program.buckets.push_back(std::move(bucket));
  }

  void addOutput(plan::OutputOp output) {
    plan::BufferType type = output.getResult().getType();
    v4rt::IoSlot slot{output.getName().str(), dtypeOf(output, type.getElementType()), type.getShape()[1]};
    if (program.outputs.empty()) {
      program.outputs.push_back(slot);
    } else if (program.outputs[0].dtype != slot.dtype || program.outputs[0].width != slot.width) {
      fail(output, "has a different width or dtype than the logits of an earlier bucket; all buckets must "
                   "produce the same logits row");
    }
  }

  v4rt::Step convertLaunch(plan::LaunchOp launch) {
    v4rt::Step step;
    auto [found, inserted] = kernelIndex.try_emplace(launch.getKernel(), program.kernels.size());
    if (inserted)
      program.kernels.push_back({launch.getKernel().str(), {}});
    step.kernel = static_cast<uint32_t>(found->second);
    for (Value in : launch.getIns())
      step.ins.push_back(argRef(launch, in));
    for (Value out : launch.getOuts())
      step.outs.push_back(argRef(launch, out));
    for (NamedAttribute param : launch.getParams())
      step.attrs.push_back(convertParam(launch, param));
    return step;
  }

  v4rt::ArgRef argRef(plan::LaunchOp launch, Value value) {
    v4rt::ArgRef ref;
    Operation *definer = value.getDefiningOp();
    if (auto cache = dyn_cast_or_null<plan::CacheOp>(definer)) {
      auto found = cacheIndex.find(cache.getSlot());
      if (found == cacheIndex.end())
        fail(cache, "refers to a cache slot the module does not declare");
      ref.kind = v4rt::ArgKind::Cache;
      ref.index = static_cast<uint32_t>(found->second);
      ref.dtype = program.caches[found->second].dtype;
      ref.shape = cacheShape[found->second];
      return ref;
    }
    auto type = dyn_cast<plan::BufferType>(value.getType());
    if (!definer || !type)
      fail(launch, "has an operand that is not defined by a plan buffer op");
    ref.dtype = dtypeOf(definer, type.getElementType());
    ref.shape = toVector(type.getShape());
    if (auto alloc = dyn_cast<plan::AllocOp>(definer)) {
      if (!alloc.getOffset())
        fail(alloc, "has no offset; run v4-plan-memory before building the program");
      ref.kind = v4rt::ArgKind::Arena;
      ref.offset = *alloc.getOffset();
    } else if (auto weight = dyn_cast<plan::WeightOp>(definer)) {
      auto found = weightIndex.find(weight.getName());
      if (found == weightIndex.end())
        fail(weight, "refers to @" + weight.getName().str() + ", which no v4.global declares");
      ref.kind = v4rt::ArgKind::Weight;
      ref.index = static_cast<uint32_t>(found->second);
    } else if (auto input = dyn_cast<plan::InputOp>(definer)) {
      ref.kind = v4rt::ArgKind::Input;
      ref.index = input.getName() == "ids" ? 0 : 1;
    } else if (isa<plan::OutputOp>(definer)) {
      ref.kind = v4rt::ArgKind::Output;
      ref.index = 0;
    } else {
      fail(definer, "defines a launch operand but is not a plan buffer op");
    }
    return ref;
  }

  ModuleOp module;
  v4rt::Program program;
  llvm::StringMap<size_t> weightIndex, cacheIndex, kernelIndex;
  std::vector<std::vector<int64_t>> cacheShape; // [rows, width] per slot
};

} // namespace

v4rt::Program programFromPlan(ModuleOp module, const std::string &target) {
  if (target.empty())
    throw Error("programFromPlan: empty target; pass e.g. \"cpu\" or \"sm_90a\"");
  return ProgramBuilder(module, target).build();
}

} // namespace v4c
