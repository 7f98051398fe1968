#include "runtime/artifact/StepContracts.h"

#include <cmath>
#include <string>
#include <unordered_map>
#include <utility>

#include "common/Error.h"

namespace v4rt::artifact {
namespace {

using std::to_string;

std::string shapeText(const std::vector<int64_t> &shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    text += (i ? ", " : "") + to_string(shape[i]);
  return text + "]";
}

// One step under check: operand lookup and the comparisons every contract
// makes, each failing with the step's name in front.
class StepCheck {
public:
  StepCheck(const Program &program, const Bucket &bucket, size_t index)
      : program_(program), bucket_(bucket), step_(bucket.steps[index]),
        where_("bucket \"" + bucket.name + "\" step " + to_string(index) + " (" +
               program.kernels[step_.kernel].name + ")") {}

  [[noreturn]] void fail(const std::string &message) const { throw v4c::Error(where_ + ": " + message); }
  void require(bool ok, const std::string &message) const {
    if (!ok)
      fail(message);
  }
  const Program &program() const { return program_; }
  int64_t tokens() const { return bucket_.tokens; }
  size_t outCount() const { return step_.outs.size(); }

  // Exactly `ins` inputs and `outs` results.
  void arity(size_t ins, size_t outs) const {
    require(step_.ins.size() == ins && step_.outs.size() == outs,
            "has " + to_string(step_.ins.size()) + " inputs and " + to_string(step_.outs.size()) +
                " results, the op takes " + to_string(ins) + " and " + to_string(outs));
  }
  // Ops with optional or variadic operands: `segments` ODS operand groups.
  void segments(size_t count) const {
    for (const Attr &attr : step_.attrs)
      if (attr.name == "operandSegmentSizes") {
        require(attr.ints.size() == count, "operandSegmentSizes has " + to_string(attr.ints.size()) +
                                               " entries, the op has " + to_string(count) + " operand groups");
        return;
      }
    fail("is missing attribute 'operandSegmentSizes'");
  }
  int64_t segmentSize(size_t operand) const {
    for (const Attr &attr : step_.attrs)
      if (attr.name == "operandSegmentSizes")
        return attr.ints.at(operand); // segments() checked the count
    return 1;
  }

  const ArgRef *optionalIn(int64_t operand) const {
    const int64_t i = step_.operandIndex(operand);
    return i < 0 ? nullptr : &step_.ins[static_cast<size_t>(i)];
  }
  const ArgRef &in(int64_t operand, const char *name) const {
    const ArgRef *arg = optionalIn(operand);
    require(arg != nullptr, std::string("operand '") + name + "' is missing");
    return *arg;
  }
  // Element `i` of variadic operand `operand` (i < its segment size).
  const ArgRef &variadicIn(int64_t operand, int64_t i) const {
    return step_.ins.at(static_cast<size_t>(step_.operandIndex(operand) + i));
  }
  const ArgRef &out(size_t result) const { return step_.outs.at(result); }

  // `arg` has exactly `dims` (-1: any value) and dtype `dtype`, and is not a cache.
  void tensor(const ArgRef &arg, const std::string &name, DType dtype, const std::vector<int64_t> &dims) const {
    require(arg.kind != ArgKind::Cache, name + " must be a tensor, not cache slot " + to_string(arg.index));
    require(arg.dtype == dtype, name + " is " + dtypeName(arg.dtype) + ", the op needs " + dtypeName(dtype));
    bool match = arg.shape.size() == dims.size();
    for (size_t i = 0; match && i < dims.size(); ++i)
      match = dims[i] < 0 || arg.shape[i] == dims[i];
    if (!match) {
      std::string want = "[";
      for (size_t i = 0; i < dims.size(); ++i)
        want += (i ? ", " : "") + (dims[i] < 0 ? std::string("*") : to_string(dims[i]));
      fail(name + " has shape " + shapeText(arg.shape) + ", the op needs " + want + "]");
    }
    // ids / positions / logits buffers hold tokens x slot width 4-byte values.
    if (arg.kind == ArgKind::Input || arg.kind == ArgKind::Output) {
      const IoSlot &slot = arg.kind == ArgKind::Input ? program_.inputs[arg.index] : program_.outputs[arg.index];
      const std::vector<int64_t> want =
          arg.kind == ArgKind::Input ? std::vector<int64_t>{tokens()} : std::vector<int64_t>{tokens(), slot.width};
      require(arg.shape == want && dtypeSize(arg.dtype) == 4,
              name + " is " + (arg.kind == ArgKind::Input ? "input" : "output") + " \"" + slot.name + "\" of shape " +
                  shapeText(want) + ", the step reads it as " + dtypeName(arg.dtype) + shapeText(arg.shape));
    }
    if (arg.kind == ArgKind::Weight)
      require(program_.weights[arg.index].dtype == arg.dtype,
              name + " reads weight \"" + program_.weights[arg.index].name + "\" (" +
                  dtypeName(program_.weights[arg.index].dtype) + ") as " + dtypeName(arg.dtype));
  }
  // Dim `i` of a rank-`rank` f32 or i32 tensor, after checking the rank.
  int64_t dim(const ArgRef &arg, const std::string &name, size_t rank, size_t i) const {
    require(arg.shape.size() == rank,
            name + " has shape " + shapeText(arg.shape) + ", the op needs rank " + to_string(rank));
    return arg.shape[i];
  }
  // Token-major activation rows [tokens, width].
  void rows(const ArgRef &arg, const std::string &name, int64_t width, DType dtype = DType::F32) const {
    tensor(arg, name, dtype, {tokens(), width});
  }
  // One i32 per token, read straight from the program input of that name
  // ("ids" or "positions"): the kernels index tables and caches with these
  // values, so they must be the ones the session range-checks, not arena bytes.
  void perToken(const ArgRef &arg, const char *input) const {
    require(arg.kind == ArgKind::Input && program_.inputs[arg.index].name == input,
            std::string(input) + " must be the program's \"" + input + "\" input");
    tensor(arg, input, DType::I32, {tokens()});
  }
  const CacheSlot &cache(const ArgRef &arg, const std::string &name, CacheKind kind, int64_t width) const {
    static const char *kinds[] = {"window", "compress-state", "entries"};
    require(arg.kind == ArgKind::Cache, name + " must be a cache slot");
    const CacheSlot &slot = program_.caches[arg.index];
    require(slot.kind == kind, name + " is cache slot \"" + slot.name + "\", not a " +
                                   kinds[static_cast<int>(kind)] + " cache");
    require(slot.width == width, name + " is cache slot \"" + slot.name + "\" of width " + to_string(slot.width) +
                                     ", the op needs " + to_string(width));
    return slot;
  }
  // A result that is the same cache slot as input `input` (updated in place).
  void sameCache(size_t result, const ArgRef &input, const std::string &name) const {
    const ArgRef &arg = out(result);
    require(arg.kind == ArgKind::Cache && arg.index == input.index,
            "result " + to_string(result) + " must be the " + name + " cache it updates");
  }

  const Attr *findAttr(const char *name) const {
    for (const Attr &attr : step_.attrs)
      if (attr.name == name)
        return &attr;
    return nullptr;
  }
  const Attr &attr(const char *name) const {
    const Attr *found = findAttr(name);
    require(found != nullptr, std::string("is missing attribute '") + name + "'");
    return *found;
  }
  // An integer attribute in [lo, hi] (read as attrInt reads it).
  int64_t intAttr(const char *name, int64_t lo, int64_t hi) const {
    const Attr &a = attr(name);
    require(!a.ints.empty() || !a.floats.empty(), std::string("attribute '") + name + "' is not a number");
    const double raw = a.ints.empty() ? a.floats[0] : static_cast<double>(a.ints[0]);
    require(raw >= static_cast<double>(lo) && raw <= static_cast<double>(hi),
            std::string("attribute '") + name + "' is " + to_string(static_cast<int64_t>(raw)) + ", outside [" +
                to_string(lo) + ", " + to_string(hi) + "]");
    return static_cast<int64_t>(raw);
  }
  void floatAttr(const char *name) const {
    const Attr &a = attr(name);
    require(!a.ints.empty() || !a.floats.empty(), std::string("attribute '") + name + "' is not a number");
    require(a.floats.empty() || std::isfinite(a.floats[0]), std::string("attribute '") + name + "' is not finite");
  }
  void floatsAttr(const char *name, size_t count) const {
    const Attr &a = attr(name);
    require(a.floats.size() == count, std::string("attribute '") + name + "' holds " + to_string(a.floats.size()) +
                                          " floats, the op needs " + to_string(count));
  }

private:
  const Program &program_;
  const Bucket &bucket_;
  const Step &step_;
  std::string where_;
};

constexpr int64_t kMax = int64_t{1} << 20; // checkProgram's bound on integer attributes

int64_t vocab(const StepCheck &c) {
  return c.program().outputs.empty() ? 1 : c.program().outputs[0].width;
}

// head_dim, rope_dim, inv_freq, scaling (+ inverse when `withInverse`); returns head_dim.
int64_t ropeAttrs(const StepCheck &c, bool withInverse) {
  const int64_t headDim = c.intAttr("head_dim", 1, kMax);
  const int64_t ropeDim = c.intAttr("rope_dim", 0, headDim);
  c.require(ropeDim % 2 == 0, "attribute 'rope_dim' is " + to_string(ropeDim) + ", it must be even");
  c.floatsAttr("inv_freq", static_cast<size_t>(ropeDim / 2));
  c.floatAttr("scaling");
  if (withInverse)
    c.intAttr("inverse", 0, 1);
  return headDim;
}

// hc, norm_eps, hc_eps; returns hc.
int64_t hyperAttrs(const StepCheck &c) {
  const int64_t hc = c.intAttr("hc", 1, 1024);
  c.floatAttr("norm_eps");
  c.floatAttr("hc_eps");
  return hc;
}

// x [T, K] -> a linear's K (the row width every weight must match).
int64_t rowWidth(const StepCheck &c, const ArgRef &x, const char *name) {
  const int64_t width = c.dim(x, name, 2, 1);
  c.rows(x, name, width);
  return width;
}

void embed(const StepCheck &c) {
  c.arity(2, 1);
  c.perToken(c.in(0, "ids"), "ids");
  const ArgRef &table = c.in(1, "table");
  const int64_t rows = c.dim(table, "table", 2, 0), D = table.shape[1];
  c.tensor(table, "table", DType::F32, {rows, D});
  c.require(rows >= vocab(c), "table has " + to_string(rows) + " rows, fewer than the vocab of " +
                                  to_string(vocab(c)));
  c.rows(c.out(0), "result", D);
}

void hcExpand(const StepCheck &c) {
  c.arity(1, 1);
  const int64_t hc = c.intAttr("hc", 1, 1024);
  const int64_t D = rowWidth(c, c.in(0, "x"), "x");
  c.rows(c.out(0), "result", hc * D);
}

// fn [hc (hc + 2), hc D], base [hc (hc + 2)], scale [3] at operands first..first+2.
void hcPreWeights(const StepCheck &c, int64_t first, int64_t hc, int64_t D) {
  c.tensor(c.in(first, "fn"), "fn", DType::F32, {hc * (hc + 2), hc * D});
  c.tensor(c.in(first + 1, "base"), "base", DType::F32, {hc * (hc + 2)});
  c.tensor(c.in(first + 2, "scale"), "scale", DType::F32, {3});
}
void hcPreResults(const StepCheck &c, size_t first, int64_t hc, int64_t D) {
  c.rows(c.out(first), "collapsed", D);
  c.rows(c.out(first + 1), "post", hc);
  c.rows(c.out(first + 2), "comb", hc * hc);
}
// X [T, hc D], y [T, D], post [T, hc], comb [T, hc hc]; returns D.
int64_t hcPostOperands(const StepCheck &c, int64_t hc) {
  const int64_t D = rowWidth(c, c.in(1, "y"), "y");
  c.rows(c.in(0, "streams"), "streams", hc * D);
  c.rows(c.in(2, "post"), "post", hc);
  c.rows(c.in(3, "comb"), "comb", hc * hc);
  return D;
}

void hcPre(const StepCheck &c) {
  c.arity(4, 3);
  const int64_t hc = hyperAttrs(c);
  c.intAttr("sinkhorn_iters", 0, kMax);
  const int64_t D = c.dim(c.out(0), "collapsed", 2, 1);
  c.rows(c.in(0, "streams"), "streams", hc * D);
  hcPreWeights(c, 1, hc, D);
  hcPreResults(c, 0, hc, D);
}

void hcPost(const StepCheck &c) {
  c.arity(4, 1);
  const int64_t hc = c.intAttr("hc", 1, 1024);
  const int64_t D = hcPostOperands(c, hc);
  c.rows(c.out(0), "result", hc * D);
}

void hcPostPre(const StepCheck &c) {
  c.arity(7, 4);
  const int64_t hc = hyperAttrs(c);
  c.intAttr("sinkhorn_iters", 0, kMax);
  const int64_t D = hcPostOperands(c, hc);
  hcPreWeights(c, 4, hc, D);
  c.rows(c.out(0), "streams result", hc * D);
  hcPreResults(c, 1, hc, D);
}

void hcHead(const StepCheck &c) {
  c.arity(4, 1);
  const int64_t hc = hyperAttrs(c);
  const int64_t D = c.dim(c.out(0), "result", 2, 1);
  c.rows(c.in(0, "streams"), "streams", hc * D);
  c.tensor(c.in(1, "fn"), "fn", DType::F32, {hc, hc * D});
  c.tensor(c.in(2, "base"), "base", DType::F32, {hc});
  c.tensor(c.in(3, "scale"), "scale", DType::F32, {1});
  c.rows(c.out(0), "result", D);
}

// rms_norm x [T, C] with `group` dividing C and an optional weight [group].
void normOperands(const StepCheck &c, int64_t C, const ArgRef *weight) {
  const int64_t group = c.intAttr("group", 1, C);
  c.require(C % group == 0, "attribute 'group' is " + to_string(group) + ", which does not divide the " +
                                to_string(C) + " channels");
  c.floatAttr("eps");
  if (weight)
    c.tensor(*weight, "norm weight", DType::F32, {group});
}

void rmsNorm(const StepCheck &c) {
  c.require(c.outCount() == 1, "has " + to_string(c.outCount()) + " results, the op has 1");
  const int64_t C = rowWidth(c, c.in(0, "x"), "x");
  const ArgRef *weight = c.optionalIn(1);
  c.require(!c.optionalIn(2), "has more than 2 inputs");
  normOperands(c, C, weight);
  c.rows(c.out(0), "result", C);
}

void linear(const StepCheck &c) {
  c.arity(2, 1);
  const int64_t K = rowWidth(c, c.in(0, "x"), "x");
  const int64_t N = c.dim(c.in(1, "weight"), "weight", 2, 0);
  c.tensor(c.in(1, "weight"), "weight", DType::F32, {N, K});
  c.rows(c.out(0), "result", N);
}

void groupedLinear(const StepCheck &c) {
  c.arity(2, 1);
  const int64_t K = rowWidth(c, c.in(0, "x"), "x");
  const int64_t groups = c.intAttr("groups", 1, K);
  c.require(K % groups == 0, "attribute 'groups' is " + to_string(groups) + ", which does not divide x's " +
                                 to_string(K) + " channels");
  const int64_t rows = c.dim(c.in(1, "weight"), "weight", 2, 0);
  c.require(rows % groups == 0, "weight has " + to_string(rows) + " rows, not a multiple of " +
                                    to_string(groups) + " groups");
  c.tensor(c.in(1, "weight"), "weight", DType::F32, {rows, K / groups});
  c.rows(c.out(0), "result", rows);
}

void rope(const StepCheck &c) {
  c.arity(2, 1);
  const int64_t headDim = ropeAttrs(c, true);
  const int64_t C = rowWidth(c, c.in(0, "x"), "x");
  c.require(C % headDim == 0, "attribute 'head_dim' is " + to_string(headDim) + ", which does not divide x's " +
                                  to_string(C) + " channels");
  c.perToken(c.in(1, "positions"), "positions");
  c.rows(c.out(0), "result", C);
}

void ropeCacheAppend(const StepCheck &c) {
  c.arity(3, 2);
  const int64_t headDim = ropeAttrs(c, true);
  const int64_t C = rowWidth(c, c.in(1, "kv"), "kv");
  c.require(C % headDim == 0, "attribute 'head_dim' is " + to_string(headDim) + ", which does not divide kv's " +
                                  to_string(C) + " channels");
  c.cache(c.in(0, "window"), "window", CacheKind::Window, C);
  c.perToken(c.in(2, "positions"), "positions");
  c.rows(c.out(0), "result", C);
  c.sameCache(1, c.in(0, "window"), "window");
}

void cacheAppend(const StepCheck &c) {
  c.arity(3, 1);
  const int64_t C = rowWidth(c, c.in(1, "kv"), "kv");
  c.cache(c.in(0, "window"), "window", CacheKind::Window, C);
  c.perToken(c.in(2, "positions"), "positions");
  c.sameCache(0, c.in(0, "window"), "window");
}

// The compressor's tail: position_bias, norm_w, positions, state, entries at
// operands first..first+4, for kv/gate rows of Cin = (overlap ? 2 : 1) head_dim.
void compressOperands(const StepCheck &c, int64_t first, int64_t Cin) {
  const int64_t rate = c.intAttr("rate", 1, kMax);
  const int64_t headDim = c.intAttr("head_dim", 1, kMax);
  c.tensor(c.in(first, "position_bias"), "position_bias", DType::F32, {rate, Cin});
  c.tensor(c.in(first + 1, "norm_w"), "norm_w", DType::F32, {headDim});
  c.perToken(c.in(first + 2, "positions"), "positions");
  const CacheSlot &state = c.cache(c.in(first + 3, "state"), "state", CacheKind::CompressState, 2 * Cin);
  c.require(state.rows == 2 * rate, "state is cache slot \"" + state.name + "\" of " + to_string(state.rows) +
                                        " rows, the op needs 2 * rate = " + to_string(2 * rate));
  const CacheSlot &entries = c.cache(c.in(first + 4, "entries"), "entries", CacheKind::Entries, headDim);
  c.require(entries.rate == rate, "entries is cache slot \"" + entries.name + "\" of rate " +
                                      to_string(entries.rate) + ", the op's rate is " + to_string(rate));
  c.sameCache(0, c.in(first + 3, "state"), "state");
  c.sameCache(1, c.in(first + 4, "entries"), "entries");
}
// Cin for the compressor's attributes (rope at head_dim, overlap doubles it).
int64_t compressWidth(const StepCheck &c) {
  const int64_t headDim = ropeAttrs(c, false);
  c.floatAttr("eps");
  return c.intAttr("overlap", 0, 1) ? 2 * headDim : headDim;
}

void compress(const StepCheck &c) {
  c.arity(7, 2);
  const int64_t Cin = compressWidth(c);
  c.rows(c.in(0, "kv"), "kv", Cin);
  c.rows(c.in(1, "gate"), "gate", Cin);
  compressOperands(c, 2, Cin);
}

void linearCompress(const StepCheck &c) {
  c.arity(8, 2);
  const int64_t Cin = compressWidth(c);
  const int64_t D = rowWidth(c, c.in(0, "h"), "h");
  c.tensor(c.in(1, "kv_w"), "kv_w", DType::F32, {Cin, D});
  c.tensor(c.in(2, "gate_w"), "gate_w", DType::F32, {Cin, D});
  compressOperands(c, 3, Cin);
}

void indexerTopK(const StepCheck &c) {
  c.arity(4, 1);
  const int64_t heads = c.intAttr("heads", 1, kMax), headDim = c.intAttr("head_dim", 1, kMax);
  const int64_t topK = c.intAttr("top_k", 1, kMax), rate = c.intAttr("rate", 1, kMax);
  c.floatAttr("weight_scale");
  c.floatAttr("score_scale");
  c.rows(c.in(0, "q"), "q", heads * headDim);
  c.rows(c.in(1, "weights"), "weights", heads);
  c.perToken(c.in(2, "positions"), "positions");
  const CacheSlot &keys = c.cache(c.in(3, "keys"), "keys", CacheKind::Entries, headDim);
  c.require(keys.rate == rate, "keys is cache slot \"" + keys.name + "\" of rate " + to_string(keys.rate) +
                                   ", the op's rate is " + to_string(rate));
  c.rows(c.out(0), "result", topK, DType::I32);
}

void attention(const StepCheck &c) {
  c.segments(7);
  c.require(c.outCount() == 1, "has " + to_string(c.outCount()) + " results, the op has 1");
  const int64_t heads = c.intAttr("num_heads", 1, kMax), headDim = c.intAttr("head_dim", 1, kMax);
  const int64_t window = c.intAttr("window", 1, kMax), rate = c.intAttr("rate", 0, kMax);
  c.floatAttr("scale");
  // q, kv, sinks, positions, window are required; entries and topk optional.
  for (size_t operand = 0; operand < 7; ++operand) {
    const int64_t size = c.segmentSize(operand);
    c.require(operand < 5 ? size == 1 : size <= 1,
              "operandSegmentSizes entry " + to_string(operand) + " is " + to_string(size) +
                  (operand < 5 ? ", the operand is required (1)" : ", an optional operand takes 0 or 1"));
  }
  c.rows(c.in(0, "q"), "q", heads * headDim);
  c.rows(c.in(1, "kv"), "kv", headDim);
  c.tensor(c.in(2, "sinks"), "sinks", DType::F32, {heads});
  c.perToken(c.in(3, "positions"), "positions");
  const CacheSlot &ring = c.cache(c.in(4, "window"), "window", CacheKind::Window, headDim);
  c.require(ring.rows == window, "window is cache slot \"" + ring.name + "\" of " + to_string(ring.rows) +
                                     " rows, the op's window is " + to_string(window));
  const ArgRef *entries = c.optionalIn(5), *topk = c.optionalIn(6);
  c.require((entries != nullptr) == (rate > 0),
            entries ? "has an entries cache but attribute 'rate' is 0" : "has a rate but no entries cache");
  if (entries) {
    const CacheSlot &slot = c.cache(*entries, "entries", CacheKind::Entries, headDim);
    c.require(slot.rate == rate, "entries is cache slot \"" + slot.name + "\" of rate " + to_string(slot.rate) +
                                     ", the op's rate is " + to_string(rate));
  }
  c.require(!topk || entries, "has top-k indices but no entries cache");
  if (topk)
    c.rows(*topk, "topk", c.dim(*topk, "topk", 2, 1), DType::I32);
  c.rows(c.out(0), "result", heads * headDim);
}

// weights [T, k] f32 and experts [T, k] i32 results of a router over E experts.
void routerResults(const StepCheck &c, int64_t topK, int64_t experts) {
  c.require(topK >= 1 && topK <= experts,
            "top-k " + to_string(topK) + " must be in [1, " + to_string(experts) + "] (the experts)");
  c.rows(c.out(0), "weights", topK);
  c.rows(c.out(1), "experts", topK, DType::I32);
}

void router(const StepCheck &c) {
  c.arity(3, 2);
  const int64_t D = rowWidth(c, c.in(0, "h"), "h");
  const int64_t E = c.dim(c.in(1, "gate"), "gate", 2, 0);
  c.tensor(c.in(1, "gate"), "gate", DType::F32, {E, D});
  c.tensor(c.in(2, "bias"), "bias", DType::F32, {E});
  c.floatAttr("routed_scaling");
  routerResults(c, c.intAttr("top_k", 1, E), E);
}

void hashRouter(const StepCheck &c) {
  c.arity(4, 2);
  const int64_t D = rowWidth(c, c.in(0, "h"), "h");
  const int64_t E = c.dim(c.in(1, "gate"), "gate", 2, 0);
  c.tensor(c.in(1, "gate"), "gate", DType::F32, {E, D});
  const ArgRef &table = c.in(2, "tid2eid");
  const int64_t rows = c.dim(table, "tid2eid", 2, 0), topK = table.shape[1];
  c.tensor(table, "tid2eid", DType::I32, {rows, topK});
  c.require(rows >= vocab(c), "tid2eid has " + to_string(rows) + " rows, fewer than the vocab of " +
                                  to_string(vocab(c)));
  c.perToken(c.in(3, "ids"), "ids");
  c.floatAttr("routed_scaling");
  routerResults(c, topK, E);
}

// h [T, D], weights [T, k], experts [T, k] and the result; returns {D, k}.
std::pair<int64_t, int64_t> moeActivations(const StepCheck &c) {
  const int64_t D = rowWidth(c, c.in(0, "h"), "h");
  const int64_t topK = c.dim(c.in(1, "weights"), "weights", 2, 1);
  c.require(topK >= 1, "weights has no columns (top-k 0)");
  c.rows(c.in(1, "weights"), "weights", topK);
  c.rows(c.in(2, "experts"), "experts", topK, DType::I32);
  c.rows(c.out(0), "result", D);
  c.floatAttr("swiglu_limit");
  return {D, topK};
}

void moe(const StepCheck &c) {
  c.arity(5, 1);
  const int64_t D = moeActivations(c).first;
  const ArgRef &gateUp = c.in(3, "gate_up");
  const int64_t E = c.dim(gateUp, "gate_up", 3, 0), twoI = gateUp.shape[1];
  c.require(E >= 1 && twoI >= 2 && twoI % 2 == 0,
            "gate_up has shape " + shapeText(gateUp.shape) + ", the op needs [experts >= 1, 2 I, D]");
  c.tensor(gateUp, "gate_up", DType::F32, {E, twoI, D});
  c.tensor(c.in(4, "down"), "down", DType::F32, {E, D, twoI / 2});
}

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The `block` attribute [rows, cols] of one weight scale block.
std::pair<int64_t, int64_t> blockAttr(const StepCheck &c) {
  const Attr &block = c.attr("block");
  c.require(block.ints.size() == 2 && block.ints[0] > 0 && block.ints[1] > 0,
            "attribute 'block' must be two positive sizes [rows, cols]");
  return {block.ints[0], block.ints[1]};
}

void linearFp8(const StepCheck &c) {
  c.arity(3, 1);
  const std::pair<int64_t, int64_t> block = blockAttr(c);
  const int64_t K = rowWidth(c, c.in(0, "x"), "x");
  const int64_t N = c.dim(c.in(1, "weight"), "weight", 2, 0);
  c.tensor(c.in(1, "weight"), "weight", DType::F8E4M3, {N, K});
  c.tensor(c.in(2, "scale"), "scale", DType::U8, {ceilDiv(N, block.first), ceilDiv(K, block.second)});
  c.rows(c.out(0), "result", N);
}

// v4.moe_fp4 h, weights, experts, gate_up, gate_up_scale, down, down_scale:
// e2m1 codes one byte each, ue8m0 scales per block.
void moeFp4(const StepCheck &c) {
  c.arity(7, 1);
  const std::pair<int64_t, int64_t> block = blockAttr(c);
  const int64_t D = moeActivations(c).first;
  const ArgRef &gateUp = c.in(3, "gate_up");
  const int64_t E = c.dim(gateUp, "gate_up", 3, 0), twoI = gateUp.shape[1];
  c.require(E >= 1 && twoI >= 2 && twoI % 2 == 0,
            "gate_up has shape " + shapeText(gateUp.shape) + ", the op needs [experts >= 1, 2 I, D]");
  const int64_t I = twoI / 2;
  c.tensor(gateUp, "gate_up", DType::U8, {E, twoI, D});
  c.tensor(c.in(4, "gate_up_scale"), "gate_up_scale", DType::U8,
           {E, ceilDiv(twoI, block.first), ceilDiv(D, block.second)});
  c.tensor(c.in(5, "down"), "down", DType::U8, {E, D, I});
  c.tensor(c.in(6, "down_scale"), "down_scale", DType::U8, {E, ceilDiv(D, block.first), ceilDiv(I, block.second)});
}

void swiglu(const StepCheck &c) {
  c.arity(2, 1);
  c.floatAttr("limit");
  const int64_t C = rowWidth(c, c.in(0, "gate"), "gate");
  c.rows(c.in(1, "up"), "up", C);
  c.rows(c.out(0), "result", C);
}

void add(const StepCheck &c) {
  c.arity(2, 1);
  const int64_t C = rowWidth(c, c.in(0, "a"), "a");
  c.rows(c.in(1, "b"), "b", C);
  c.rows(c.out(0), "result", C);
}

// v4.norm_linear x, optional norm_w, weights... -> one result per weight.
void normLinear(const StepCheck &c) {
  c.segments(3);
  const int64_t C = rowWidth(c, c.in(0, "x"), "x");
  c.require(c.segmentSize(0) == 1 && c.segmentSize(1) <= 1 && c.segmentSize(2) >= 1,
            "operandSegmentSizes must be [1, 0 or 1, weights >= 1]");
  normOperands(c, C, c.optionalIn(1));
  const int64_t weights = c.segmentSize(2);
  c.require(static_cast<int64_t>(c.outCount()) == weights,
            "has " + to_string(c.outCount()) + " results for " + to_string(weights) + " weights");
  for (int64_t i = 0; i < weights; ++i) {
    const ArgRef &weight = c.variadicIn(2, i);
    const std::string name = "weight " + to_string(i);
    const int64_t N = c.dim(weight, name, 2, 0);
    c.tensor(weight, name, DType::F32, {N, C});
    c.rows(c.out(static_cast<size_t>(i)), "result " + to_string(i), N);
  }
}

void linearSwiglu(const StepCheck &c) {
  c.arity(3, 1);
  c.floatAttr("limit");
  const int64_t D = rowWidth(c, c.in(0, "h"), "h");
  const int64_t I = c.dim(c.in(1, "gate_w"), "gate_w", 2, 0);
  c.tensor(c.in(1, "gate_w"), "gate_w", DType::F32, {I, D});
  c.tensor(c.in(2, "up_w"), "up_w", DType::F32, {I, D});
  c.rows(c.out(0), "result", I);
}

using Contract = void (*)(const StepCheck &);

// One entry per kernel of runtime/cpu (coreCpuKernels, quantCpuKernels,
// fusedCpuKernels).
const std::unordered_map<std::string, Contract> &contracts() {
  static const std::unordered_map<std::string, Contract> table = {
      {"v4.embed", embed},
      {"v4.hc_expand", hcExpand},
      {"v4.hc_pre", hcPre},
      {"v4.hc_post", hcPost},
      {"v4.hc_head", hcHead},
      {"v4.rms_norm", rmsNorm},
      {"v4.linear", linear},
      {"v4.grouped_linear", groupedLinear},
      {"v4.rope", rope},
      {"v4.compress", compress},
      {"v4.indexer_topk", indexerTopK},
      {"v4.attention", attention},
      {"v4.cache_append", cacheAppend},
      {"v4.router", router},
      {"v4.hash_router", hashRouter},
      {"v4.moe", moe},
      {"v4.swiglu", swiglu},
      {"v4.add", add},
      {"v4.linear_fp8", linearFp8},
      {"v4.moe_fp4", moeFp4},
      {"v4.norm_linear", normLinear},
      {"v4.linear_swiglu", linearSwiglu},
      {"v4.hc_post_pre", hcPostPre},
      {"v4.rope_cache_append", ropeCacheAppend},
      {"v4.linear_compress", linearCompress},
  };
  return table;
}

} // namespace

void checkStepContract(const Program &program, const Bucket &bucket, size_t stepIndex) {
  const Step &step = bucket.steps[stepIndex];
  auto it = contracts().find(program.kernels[step.kernel].name);
  if (it == contracts().end())
    return;
  it->second(StepCheck(program, bucket, stepIndex));
}

} // namespace v4rt::artifact
