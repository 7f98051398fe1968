#include "tools/v4run/StepWork.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/Error.h"
#include "runtime/cpu/CacheStorage.h"
#include "runtime/cpu/CpuKernels.h"

namespace v4run {
namespace {

using v4rt::ArgKind;
using v4rt::ArgRef;
using v4rt::DType;

int64_t configInt(const nlohmann::json &config, const char *key) {
  const auto it = config.find(key);
  v4c::check(it != config.end() && it->is_number_integer(),
             std::string("the artifact's model config has no integer \"") + key + "\"");
  return it->get<int64_t>();
}

int64_t elements(const std::vector<int64_t> &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

// Every op this runtime knows (the CPU kernels cover every op of the plan).
const std::vector<std::string> &knownOps() {
  static const std::vector<std::string> ops = [] {
    std::vector<std::string> names;
    for (const auto &family : {v4rt::coreCpuKernels(), v4rt::quantCpuKernels(), v4rt::fusedCpuKernels()})
      for (const v4rt::NamedKernel &kernel : family)
        names.push_back(kernel.name);
    return names;
  }();
  return ops;
}

// "fused_norm.linear" -> "fused_norm_linear": how CUDA entry names spell an op.
std::string entryFragment(const std::string &op) {
  std::string fragment = op.substr(op.find('.') + 1);
  for (char &c : fragment)
    if (!std::isalnum(static_cast<unsigned char>(c)))
      c = '_';
  return fragment;
}

bool isCacheOutput(const v4rt::Step &step, const ArgRef &arg) {
  return std::any_of(step.outs.begin(), step.outs.end(), [&](const ArgRef &out) {
    return out.kind == ArgKind::Cache && arg.kind == ArgKind::Cache && out.index == arg.index;
  });
}

// K of an i32 [T, K] arena input (a top-k index list); 0 when the step has none.
int64_t indexListWidth(const v4rt::Bucket &bucket, const v4rt::Step &step) {
  for (const ArgRef &arg : step.ins)
    if (arg.kind == ArgKind::Arena && arg.dtype == DType::I32 && arg.shape.size() == 2 &&
        arg.shape[0] == bucket.tokens)
      return arg.shape[1];
  return 0;
}

bool batchedDecode(const v4rt::Bucket &bucket) { return bucket.kind == v4rt::BucketKind::Decode && bucket.batch > 1; }
int64_t sessionsOf(const v4rt::Bucket &bucket, const RunShape &run) { return batchedDecode(bucket) ? run.rows : 1; }
int64_t tokensPerSession(const v4rt::Bucket &bucket, const RunShape &run) {
  return batchedDecode(bucket) ? 1 : run.rows;
}

// Sum of f(position) over the run's tokens (every session's).
template <typename Fn> double overPositions(const v4rt::Bucket &bucket, const RunShape &run, Fn f) {
  double sum = 0.0;
  for (int64_t t = 0; t < tokensPerSession(bucket, run); ++t)
    sum += f(run.context + t);
  return sum * static_cast<double>(sessionsOf(bucket, run));
}

MathKind mathOf(DType dtype) {
  switch (dtype) {
  case DType::F32:
    return MathKind::F32;
  case DType::BF16:
  case DType::F16:
    return MathKind::BF16;
  case DType::F8E4M3:
  case DType::U8: // fp4 expert codes: the kernels multiply in e4m3
    return MathKind::FP8;
  default:
    return MathKind::None;
  }
}

// The [N, K] linear weights of a step (2 R N K FLOPs each): ODS operands
// by op; norm_linear's weights are its variadic operand 2 (after x and the
// optional norm weight), every argument from there on.
std::vector<const ArgRef *> linearWeights(const std::string &op, const v4rt::Step &step) {
  std::vector<int64_t> operands;
  if (op == "v4.linear" || op == "v4.linear_fp8" || op == "v4.grouped_linear" || op == "v4.router" ||
      op == "v4.hash_router" || op == "v4.hc_pre" || op == "v4.hc_head")
    operands = {1};
  else if (op == "v4.linear_swiglu" || op == "v4.linear_compress")
    operands = {1, 2};
  else if (op == "v4.hc_post_pre")
    operands = {4};
  std::vector<const ArgRef *> weights;
  for (int64_t operand : operands) {
    const int64_t index = step.operandIndex(operand);
    v4c::check(index >= 0 && index < static_cast<int64_t>(step.ins.size()),
               op + " step has no operand " + std::to_string(operand));
    weights.push_back(&step.ins[static_cast<size_t>(index)]);
  }
  if (op == "v4.norm_linear" && step.operandIndex(2) >= 0)
    for (int64_t i = step.operandIndex(2); i < static_cast<int64_t>(step.ins.size()); ++i)
      weights.push_back(&step.ins[static_cast<size_t>(i)]);
  return weights;
}

const v4rt::Attr *findAttr(const v4rt::Step &step, const char *name) {
  for (const v4rt::Attr &attr : step.attrs)
    if (attr.name == name)
      return &attr;
  return nullptr;
}

int64_t attrInt(const v4rt::Step &step, const char *name) {
  const v4rt::Attr *attr = findAttr(step, name);
  v4c::check(attr && attr->ints.size() == 1, std::string("step has no integer attribute \"") + name + "\"");
  return attr->ints[0];
}

} // namespace

const char *mathKindName(MathKind kind) {
  switch (kind) {
  case MathKind::F32:
    return "f32";
  case MathKind::BF16:
    return "bf16";
  case MathKind::FP8:
    return "fp8";
  case MathKind::None:
    break;
  }
  return "-";
}

std::string stepOp(const v4rt::Program &program, const v4rt::Step &step) {
  v4c::check(step.kernel < program.kernels.size(), "step names kernel " + std::to_string(step.kernel) +
                                                       " of " + std::to_string(program.kernels.size()));
  const std::string &kernel = program.kernels[step.kernel].name;
  const std::vector<std::string> &ops = knownOps();
  if (std::find(ops.begin(), ops.end(), kernel) != ops.end())
    return kernel;
  // CUDA entries: "v4<family>_<op fragment>_<details>".
  const size_t underscore = kernel.find('_');
  if (kernel.rfind("v4", 0) != 0 || underscore == std::string::npos)
    return "?";
  const std::string rest = kernel.substr(underscore + 1);
  std::string best;
  size_t bestLength = 0;
  for (const std::string &op : ops) {
    const std::string fragment = entryFragment(op);
    const bool fits = rest == fragment || rest.rfind(fragment + "_", 0) == 0;
    if (fits && fragment.size() > bestLength) {
      best = op;
      bestLength = fragment.size();
    }
  }
  return best.empty() ? "?" : best;
}

WorkModel::WorkModel(const v4rt::Program &program) : program_(program) {
  nlohmann::json config;
  try {
    config = nlohmann::json::parse(program.configJson);
  } catch (const nlohmann::json::exception &e) {
    throw v4c::Error(std::string("the artifact's model config is not valid JSON: ") + e.what());
  }
  experts_ = configInt(config, "n_routed_experts");
  topK_ = configInt(config, "num_experts_per_tok");
  vocab_ = configInt(config, "vocab_size");
  v4c::check(experts_ > 0 && topK_ > 0 && topK_ <= experts_ && vocab_ > 0,
             "the artifact's model config has inconsistent expert or vocab sizes");
}

uint64_t WorkModel::weightBytes(const v4rt::Step &step, const ArgRef &arg, int64_t rows) const {
  const v4rt::Weight &weight = program_.weights.at(arg.index);
  if (weight.shape.size() == 3 && weight.shape[0] == experts_) {
    const double share = 1.0 - std::pow(1.0 - static_cast<double>(topK_) / static_cast<double>(experts_),
                                        static_cast<double>(rows));
    return static_cast<uint64_t>(std::llround(share * static_cast<double>(weight.size)));
  }
  const bool readsIds = std::any_of(step.ins.begin(), step.ins.end(), [&](const ArgRef &in) {
    return in.kind == ArgKind::Input && in.index < program_.inputs.size() && program_.inputs[in.index].name == "ids";
  });
  if (readsIds && !weight.shape.empty() && weight.shape[0] == vocab_)
    return std::min<uint64_t>(weight.size, weight.size / static_cast<uint64_t>(vocab_) * static_cast<uint64_t>(rows));
  return weight.size;
}

uint64_t WorkModel::cacheReadBytes(const v4rt::Bucket &bucket, const v4rt::Step &step, const ArgRef &arg,
                                   const RunShape &run) const {
  const v4rt::CacheSlot &slot = program_.caches.at(arg.index);
  const int64_t tokens = tokensPerSession(bucket, run);
  int64_t rows = 0;
  if (slot.kind == v4rt::CacheKind::CompressState)
    rows = slot.rows; // the pending windows are pooled from every row
  else if (isCacheOutput(step, arg))
    rows = 0; // an append: rows written, none read
  else if (slot.kind == v4rt::CacheKind::Window)
    rows = std::min(run.context, slot.rows);
  else {
    v4c::check(slot.rate > 0, "entries cache \"" + slot.name + "\" has no rate");
    rows = (run.context + tokens) / slot.rate; // visible at the run's last token
    if (const int64_t K = indexListWidth(bucket, step); K > 0)
      rows = std::min(rows, tokens * K);
  }
  const uint64_t rowBytes = v4rt::cacheRowBytes(v4rt::CacheRowFormat{slot.dtype, slot.ropeWidth}, slot.width);
  return static_cast<uint64_t>(rows) * rowBytes * static_cast<uint64_t>(sessionsOf(bucket, run));
}

uint64_t WorkModel::cacheWrittenBytes(const v4rt::Bucket &bucket, const v4rt::Step &step, const ArgRef &arg,
                                      const RunShape &run) const {
  if (!isCacheOutput(step, arg))
    return 0;
  const v4rt::CacheSlot &slot = program_.caches.at(arg.index);
  const int64_t tokens = tokensPerSession(bucket, run);
  int64_t rows = 0;
  if (slot.kind == v4rt::CacheKind::Entries) {
    v4c::check(slot.rate > 0, "entries cache \"" + slot.name + "\" has no rate");
    rows = (run.context + tokens) / slot.rate - run.context / slot.rate; // windows completed in the run
  } else {
    rows = std::min(tokens, slot.rows); // one row per token in a ring of slot.rows
  }
  const uint64_t rowBytes = v4rt::cacheRowBytes(v4rt::CacheRowFormat{slot.dtype, slot.ropeWidth}, slot.width);
  return static_cast<uint64_t>(rows) * rowBytes * static_cast<uint64_t>(sessionsOf(bucket, run));
}

double WorkModel::cacheBytesPerToken() const {
  double bytes = 0.0;
  for (const v4rt::CacheSlot &slot : program_.caches)
    if (slot.kind == v4rt::CacheKind::Entries && slot.rate > 0)
      bytes += static_cast<double>(v4rt::cacheRowBytes(v4rt::CacheRowFormat{slot.dtype, slot.ropeWidth}, slot.width)) /
               static_cast<double>(slot.rate);
  return bytes;
}

double WorkModel::flops(const v4rt::Bucket &bucket, const v4rt::Step &step, const std::string &op,
                        const RunShape &run, MathKind &math) const {
  const double rows = static_cast<double>(run.rows);
  auto in = [&](int64_t operand) -> const ArgRef & {
    const int64_t index = step.operandIndex(operand);
    v4c::check(index >= 0 && index < static_cast<int64_t>(step.ins.size()),
               op + " step has no operand " + std::to_string(operand));
    return step.ins[static_cast<size_t>(index)];
  };
  auto shapeOf = [&](const ArgRef &arg) -> const std::vector<int64_t> & {
    return arg.kind == ArgKind::Weight ? program_.weights.at(arg.index).shape : arg.shape;
  };
  auto dtypeOf = [&](const ArgRef &arg) {
    return arg.kind == ArgKind::Weight ? program_.weights.at(arg.index).dtype : arg.dtype;
  };

  if (const std::vector<const ArgRef *> weights = linearWeights(op, step); !weights.empty()) {
    double total = 0.0;
    for (const ArgRef *w : weights) {
      total += 2.0 * rows * static_cast<double>(elements(shapeOf(*w)));
      math = std::max(math, mathOf(dtypeOf(*w)));
    }
    return total;
  }
  if (op == "v4.moe" || op == "v4.moe_fp4") { // h [T, D], weights [T, k], experts, gate_up [E, 2I, D], ...
    const std::vector<int64_t> &gateUp = shapeOf(in(3));
    const std::vector<int64_t> &weights = shapeOf(in(1));
    v4c::check(gateUp.size() == 3 && weights.size() == 2 && shapeOf(in(0)).size() == 2,
               op + ": unexpected operand shapes");
    const double k = static_cast<double>(weights[1]), I = static_cast<double>(gateUp[1] / 2),
                 D = static_cast<double>(shapeOf(in(0))[1]);
    math = mathOf(dtypeOf(in(3)));
    return 2.0 * rows * k * 3.0 * I * D;
  }
  if (op == "v4.attention") {
    const int64_t heads = attrInt(step, "num_heads"), headDim = attrInt(step, "head_dim");
    const int64_t window = attrInt(step, "window"), rate = attrInt(step, "rate");
    const int64_t topK = step.operandIndex(6) >= 0 ? shapeOf(in(6)).at(1) : 0;
    math = mathOf(in(0).dtype);
    const double candidates = overPositions(bucket, run, [&](int64_t p) {
      int64_t c = std::min(p + 1, window);
      if (rate > 0)
        c += topK > 0 ? std::min((p + 1) / rate, topK) : (p + 1) / rate;
      return static_cast<double>(c);
    });
    return 4.0 * static_cast<double>(heads * headDim) * candidates;
  }
  if (op == "v4.indexer_topk") {
    const int64_t heads = attrInt(step, "heads"), headDim = attrInt(step, "head_dim"), rate = attrInt(step, "rate");
    math = mathOf(in(0).dtype);
    const double entries =
        overPositions(bucket, run, [&](int64_t p) { return static_cast<double>((p + 1) / rate); });
    return 2.0 * static_cast<double>(heads * headDim) * entries;
  }
  return 0.0;
}

StepWork WorkModel::step(const v4rt::Bucket &bucket, const v4rt::Step &step, const RunShape &run) const {
  v4c::check(run.rows >= 1 && run.rows <= bucket.tokens,
             "bucket " + bucket.name + " runs 1 to " + std::to_string(bucket.tokens) + " rows, not " +
                 std::to_string(run.rows));
  v4c::check(run.context >= 0, "the context must be >= 0");
  StepWork work;
  work.op = stepOp(program_, step);
  std::set<uint32_t> weightsSeen, cachesSeen;
  auto activation = [&](const ArgRef &arg) {
    const uint64_t bytes = arg.byteSize();
    if (!arg.shape.empty() && arg.shape[0] == bucket.tokens && bucket.tokens > 0)
      return bytes / static_cast<uint64_t>(bucket.tokens) * static_cast<uint64_t>(run.rows);
    return bytes;
  };
  for (const ArgRef &arg : step.ins) {
    switch (arg.kind) {
    case ArgKind::Weight:
      if (weightsSeen.insert(arg.index).second)
        work.weightBytes += weightBytes(step, arg, run.rows);
      break;
    case ArgKind::Cache:
      break; // below, once per slot
    default:
      work.activationBytes += activation(arg);
    }
  }
  for (const ArgRef &arg : step.outs)
    if (arg.kind != ArgKind::Cache && arg.kind != ArgKind::Weight)
      work.activationBytes += activation(arg);
  for (const auto *args : {&step.ins, &step.outs})
    for (const ArgRef &arg : *args)
      if (arg.kind == ArgKind::Cache && cachesSeen.insert(arg.index).second) {
        work.cacheReadBytes += cacheReadBytes(bucket, step, arg, run);
        work.cacheWrittenBytes += cacheWrittenBytes(bucket, step, arg, run);
      }
  if (work.op != "?")
    work.flops = flops(bucket, step, work.op, run, work.math);
  return work;
}

} // namespace v4run
