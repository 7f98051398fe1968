// One function per block of the model: attention (+ compressor, indexer),
// MoE, and the mHC sites around them. The numerics of each op live in the
// reference kernels; this file only says how the ops compose (V4-MODEL.md).
#include "models/ModelBuilder.h"

#include <cmath>
#include <string>

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"

#include "dialects/v4/V4Dialect.h"
#include "dialects/v4/V4Ops.h"

namespace v4c {
namespace {

using mlir::Type;
using mlir::Value;

class GraphBuilder {
public:
  GraphBuilder(mlir::MLIRContext &context, const ModelConfig &config)
      : ctx_(context), config_(config), b_(&context), loc_(mlir::UnknownLoc::get(&context)) {}

  mlir::OwningOpRef<mlir::ModuleOp> build();

private:
  // ---- types and attributes ----
  Type f32() { return b_.getF32Type(); }
  Type i32() { return b_.getI32Type(); }
  // Token-major activation [?, cols].
  mlir::RankedTensorType act(int64_t cols, Type element = {}) {
    return mlir::RankedTensorType::get({mlir::ShapedType::kDynamic, cols}, element ? element : f32());
  }
  mlir::RankedTensorType tokens(Type element) {
    return mlir::RankedTensorType::get({mlir::ShapedType::kDynamic}, element);
  }
  mlir::NamedAttribute intAttr(const char *name, int64_t value) {
    return b_.getNamedAttr(name, b_.getI64IntegerAttr(value));
  }
  mlir::NamedAttribute floatAttr(const char *name, double value) {
    return b_.getNamedAttr(name, b_.getF64FloatAttr(value));
  }
  mlir::NamedAttribute boolAttr(const char *name, bool value) {
    return b_.getNamedAttr(name, b_.getBoolAttr(value));
  }
  mlir::NamedAttribute segments(llvm::ArrayRef<int32_t> sizes) {
    return b_.getNamedAttr("operandSegmentSizes", b_.getDenseI32ArrayAttr(sizes));
  }
  llvm::SmallVector<mlir::NamedAttribute> ropeAttrs(const RopeParams &rope, int64_t headDim);

  // ---- generic op emission ----
  mlir::Operation *emit(llvm::StringRef name, mlir::ValueRange operands,
                        mlir::TypeRange results, llvm::ArrayRef<mlir::NamedAttribute> attrs = {});
  Value emit1(llvm::StringRef name, mlir::ValueRange operands, Type result,
              llvm::ArrayRef<mlir::NamedAttribute> attrs = {}) {
    return emit(name, operands, mlir::TypeRange{result}, attrs)->getResult(0);
  }
  // Declares (once) and reads a checkpoint tensor.
  Value weight(const std::string &name, llvm::ArrayRef<int64_t> shape, Type element = {});
  Value cacheArg(const std::string &name, int64_t layer, Type type);

  // ---- blocks ----
  Value linear(Value x, const std::string &weightName, int64_t in, int64_t out);
  Value rmsNorm(Value x, int64_t cols, int64_t group, const std::string &weightName);
  Value rope(Value x, int64_t cols, int64_t headDim, const RopeParams &params, bool inverse);
  struct HyperSite {
    Value collapsed, post, comb;
  };
  HyperSite hyperPre(Value X, const std::string &prefix);
  Value hyperPost(Value X, Value y, const HyperSite &site);
  Value attention(int64_t layer, Value h);
  Value compressor(int64_t layer, Value h, const std::string &prefix, int64_t headDim,
                   bool overlap, const std::string &cacheName);
  Value indexer(int64_t layer, Value h, Value qr);
  Value moe(int64_t layer, Value h);

  std::string layerPrefix(int64_t layer) { return "model.layers." + std::to_string(layer) + "."; }

  mlir::MLIRContext &ctx_;
  const ModelConfig &config_;
  mlir::OpBuilder b_;
  mlir::Location loc_;
  mlir::ModuleOp module_;
  mlir::func::FuncOp func_;
  Value ids_, positions_;
  // Cache values threaded through the function, in argument order.
  llvm::SmallVector<Value> caches_;
  llvm::StringMap<Type> globals_;
};

mlir::Operation *GraphBuilder::emit(llvm::StringRef name, mlir::ValueRange operands,
                                    mlir::TypeRange results,
                                    llvm::ArrayRef<mlir::NamedAttribute> attrs) {
  mlir::OperationState state(loc_, name);
  state.addOperands(operands);
  state.addTypes(results);
  state.addAttributes(attrs);
  return b_.create(state);
}

Value GraphBuilder::weight(const std::string &name, llvm::ArrayRef<int64_t> shape, Type element) {
  auto type = mlir::RankedTensorType::get(shape, element ? element : f32());
  if (!globals_.count(name)) {
    mlir::OpBuilder::InsertionGuard guard(b_);
    b_.setInsertionPoint(func_);
    b_.create<v4::GlobalOp>(loc_, name, type);
    globals_[name] = type;
  }
  return b_.create<v4::WeightOp>(loc_, type, mlir::FlatSymbolRefAttr::get(&ctx_, name));
}

Value GraphBuilder::cacheArg(const std::string &name, int64_t layer, Type type) {
  const unsigned index = func_.getNumArguments();
  func_.insertArgument(index, type,
                       b_.getDictionaryAttr({b_.getNamedAttr("v4.cache_name", b_.getStringAttr(name)),
                                             b_.getNamedAttr("v4.layer", b_.getI64IntegerAttr(layer))}),
                       loc_);
  caches_.push_back(func_.getArgument(index));
  return func_.getArgument(index);
}

llvm::SmallVector<mlir::NamedAttribute> GraphBuilder::ropeAttrs(const RopeParams &rope,
                                                                int64_t headDim) {
  return {intAttr("head_dim", headDim), intAttr("rope_dim", rope.ropeDim),
          b_.getNamedAttr("inv_freq", b_.getDenseF32ArrayAttr(rope.invFreq())),
          floatAttr("scaling", rope.attentionScaling)};
}

Value GraphBuilder::linear(Value x, const std::string &weightName, int64_t in, int64_t out) {
  return emit1("v4.linear", {x, weight(weightName, {out, in})}, act(out));
}

Value GraphBuilder::rmsNorm(Value x, int64_t cols, int64_t group, const std::string &weightName) {
  llvm::SmallVector<Value> operands{x};
  if (!weightName.empty())
    operands.push_back(weight(weightName, {group}));
  return emit1("v4.rms_norm", operands, act(cols),
               {intAttr("group", group), floatAttr("eps", config_.rmsNormEps)});
}

Value GraphBuilder::rope(Value x, int64_t cols, int64_t headDim, const RopeParams &params,
                         bool inverse) {
  auto attrs = ropeAttrs(params, headDim);
  attrs.push_back(boolAttr("inverse", inverse));
  return emit1("v4.rope", {x, positions_}, act(cols), attrs);
}

GraphBuilder::HyperSite GraphBuilder::hyperPre(Value X, const std::string &prefix) {
  const int64_t hc = config_.hcMult, D = config_.hiddenSize, mixes = (2 + hc) * hc;
  auto *op = emit("v4.hc_pre",
                  {X, weight(prefix + ".fn", {mixes, hc * D}), weight(prefix + ".base", {mixes}),
                   weight(prefix + ".scale", {3})},
                  {act(D), act(hc), act(hc * hc)},
                  {intAttr("hc", hc), floatAttr("norm_eps", config_.rmsNormEps),
                   floatAttr("hc_eps", config_.hcEps),
                   intAttr("sinkhorn_iters", config_.hcSinkhornIters)});
  return {op->getResult(0), op->getResult(1), op->getResult(2)};
}

Value GraphBuilder::hyperPost(Value X, Value y, const HyperSite &site) {
  const int64_t hc = config_.hcMult;
  return emit1("v4.hc_post", {X, y, site.post, site.comb}, act(hc * config_.hiddenSize),
               {intAttr("hc", hc)});
}

// Compressed entries of one window each: CSA (overlapping halves) or HCA.
Value GraphBuilder::compressor(int64_t layer, Value h, const std::string &prefix, int64_t headDim,
                               bool overlap, const std::string &cacheName) {
  const int64_t rate = config_.compressRate(layer), D = config_.hiddenSize;
  const int64_t in = overlap ? 2 * headDim : headDim;
  Value kv = linear(h, prefix + "kv_proj.weight", D, in);
  Value gate = linear(h, prefix + "gate_proj.weight", D, in);
  Value state = cacheArg(cacheName + ".state", layer,
                         v4::CacheType::get(&ctx_, v4::CacheKind::compress_state, 2 * rate, 2 * in, 0, f32()));
  Value entries = cacheArg(cacheName + ".entries", layer,
                           v4::CacheType::get(&ctx_, v4::CacheKind::entries, mlir::ShapedType::kDynamic,
                                              headDim, rate, f32()));
  auto attrs = ropeAttrs(config_.ropeCompress, headDim);
  attrs.append({intAttr("rate", rate), boolAttr("overlap", overlap),
                floatAttr("eps", config_.rmsNormEps)});
  // ropeAttrs wrote head_dim = the entry width, which is what compress wants.
  auto *op = emit("v4.compress",
                  {kv, gate, weight(prefix + "position_bias", {rate, in}),
                   weight(prefix + "kv_norm.weight", {headDim}), positions_, state, entries},
                  {state.getType(), entries.getType()}, attrs);
  // Later ops of this layer read the updated caches.
  caches_[caches_.size() - 2] = op->getResult(0);
  caches_[caches_.size() - 1] = op->getResult(1);
  return op->getResult(1);
}

Value GraphBuilder::indexer(int64_t layer, Value h, Value qr) {
  const std::string prefix = layerPrefix(layer) + "self_attn.compressor.indexer.";
  const int64_t nI = config_.indexNumHeads, dI = config_.indexHeadDim, D = config_.hiddenSize;
  Value keys = compressor(layer, h, prefix, dI, /*overlap=*/true,
                          "layers." + std::to_string(layer) + ".indexer");
  Value q = linear(qr, prefix + "q_b_proj.weight", config_.qLoraRank, nI * dI);
  q = rope(q, nI * dI, dI, config_.ropeCompress, /*inverse=*/false);
  Value w = linear(h, prefix + "scorer.weights_proj.weight", D, nI);
  const int64_t K = config_.indexTopK;
  return emit1("v4.indexer_topk", {q, w, positions_, keys}, act(K, i32()),
               {intAttr("heads", nI), intAttr("head_dim", dI), intAttr("top_k", K),
                intAttr("rate", config_.compressRate(layer)),
                floatAttr("weight_scale", 1.0 / std::sqrt(static_cast<double>(nI))),
                floatAttr("score_scale", 1.0 / std::sqrt(static_cast<double>(dI)))});
}

Value GraphBuilder::attention(int64_t layer, Value h) {
  const std::string prefix = layerPrefix(layer) + "self_attn.";
  const std::string cachePrefix = "layers." + std::to_string(layer);
  const int64_t D = config_.hiddenSize, nh = config_.numHeads, hd = config_.headDim;
  const int64_t qRank = config_.qLoraRank, G = config_.oGroups, R = config_.oLoraRank;
  const LayerKind kind = config_.layerTypes[layer];
  const RopeParams &ropeParams = config_.ropeFor(layer);

  Value qr = rmsNorm(linear(h, prefix + "q_a_proj.weight", D, qRank), qRank, qRank,
                     prefix + "q_a_norm.weight");
  Value q = linear(qr, prefix + "q_b_proj.weight", qRank, nh * hd);
  q = rope(rmsNorm(q, nh * hd, hd, ""), nh * hd, hd, ropeParams, false);
  Value kv = rmsNorm(linear(h, prefix + "kv_proj.weight", D, hd), hd, hd,
                     prefix + "kv_norm.weight");
  kv = rope(kv, hd, hd, ropeParams, false);

  Value window = cacheArg(cachePrefix + ".window", layer,
                          v4::CacheType::get(&ctx_, v4::CacheKind::window, config_.slidingWindow, hd, 0, f32()));
  const size_t windowIndex = caches_.size() - 1;
  Value entries, topk;
  if (kind != LayerKind::Sliding)
    entries = compressor(layer, h, prefix + "compressor.", hd, kind == LayerKind::CSA,
                         cachePrefix + ".compressor");
  if (kind == LayerKind::CSA)
    topk = indexer(layer, h, qr);

  llvm::SmallVector<Value> operands{q, kv, weight(prefix + "sinks", {nh}), positions_, window};
  if (entries)
    operands.push_back(entries);
  if (topk)
    operands.push_back(topk);
  Value o = emit1("v4.attention", operands, act(nh * hd),
                  {intAttr("num_heads", nh), intAttr("head_dim", hd),
                   intAttr("window", config_.slidingWindow),
                   intAttr("rate", config_.compressRate(layer)),
                   floatAttr("scale", 1.0 / std::sqrt(static_cast<double>(hd))),
                   segments({1, 1, 1, 1, 1, entries ? 1 : 0, topk ? 1 : 0})});
  caches_[windowIndex] = emit1("v4.cache_append", {window, kv, positions_}, window.getType());
  // Values carry rope on their trailing channels; rotate the output back.
  o = rope(o, nh * hd, hd, ropeParams, /*inverse=*/true);
  Value grouped = emit1("v4.grouped_linear", {o, weight(prefix + "o_a_proj.weight", {G * R, nh * hd / G})},
                        act(G * R), {intAttr("groups", G)});
  return linear(grouped, prefix + "o_b_proj.weight", G * R, D);
}

Value GraphBuilder::moe(int64_t layer, Value h) {
  const std::string prefix = layerPrefix(layer) + "mlp.";
  const int64_t D = config_.hiddenSize, E = config_.numExperts, k = config_.expertsPerToken;
  const int64_t I = config_.moeIntermediateSize;
  mlir::Operation *route;
  if (config_.mlpTypes[layer] == MlpKind::HashMoE)
    route = emit("v4.hash_router",
                 {h, weight(prefix + "gate.weight", {E, D}),
                  weight(prefix + "gate.tid2eid", {config_.vocabSize, k}, i32()), ids_},
                 {act(k), act(k, i32())}, {floatAttr("routed_scaling", config_.routedScalingFactor)});
  else
    route = emit("v4.router",
                 {h, weight(prefix + "gate.weight", {E, D}),
                  weight(prefix + "gate.e_score_correction_bias", {E})},
                 {act(k), act(k, i32())},
                 {intAttr("top_k", k), floatAttr("routed_scaling", config_.routedScalingFactor)});
  Value routed = emit1("v4.moe",
                       {h, route->getResult(0), route->getResult(1),
                        weight(prefix + "experts.gate_up_proj", {E, 2 * I, D}),
                        weight(prefix + "experts.down_proj", {E, D, I})},
                       act(D), {floatAttr("swiglu_limit", config_.swigluLimit)});
  Value gate = linear(h, prefix + "shared_experts.gate_proj.weight", D, I);
  Value up = linear(h, prefix + "shared_experts.up_proj.weight", D, I);
  Value act_ = emit1("v4.swiglu", {gate, up}, act(I), {floatAttr("limit", config_.swigluLimit)});
  Value shared = linear(act_, prefix + "shared_experts.down_proj.weight", I, D);
  return emit1("v4.add", {routed, shared}, act(D));
}

mlir::OwningOpRef<mlir::ModuleOp> GraphBuilder::build() {
  module_ = mlir::ModuleOp::create(loc_);
  b_.setInsertionPointToEnd(module_.getBody());
  const int64_t D = config_.hiddenSize, hc = config_.hcMult, V = config_.vocabSize;
  func_ = b_.create<mlir::func::FuncOp>(loc_, "forward",
                                        b_.getFunctionType({tokens(i32()), tokens(i32())}, {}));
  mlir::Block *body = func_.addEntryBlock();
  ids_ = body->getArgument(0);
  positions_ = body->getArgument(1);
  b_.setInsertionPointToEnd(body);

  Value x = emit1("v4.embed", {ids_, weight("model.embed_tokens.weight", {V, D})}, act(D));
  Value X = emit1("v4.hc_expand", {x}, act(hc * D), {intAttr("hc", hc)});
  for (int64_t layer = 0; layer < config_.numLayers; ++layer) {
    const std::string prefix = layerPrefix(layer);
    HyperSite site = hyperPre(X, prefix + "attn_hc");
    Value h = rmsNorm(site.collapsed, D, D, prefix + "input_layernorm.weight");
    X = hyperPost(X, attention(layer, h), site);
    site = hyperPre(X, prefix + "ffn_hc");
    h = rmsNorm(site.collapsed, D, D, prefix + "post_attention_layernorm.weight");
    X = hyperPost(X, moe(layer, h), site);
  }
  Value f = emit1("v4.hc_head",
                  {X, weight("model.hc_head.hc_fn", {hc, hc * D}), weight("model.hc_head.hc_base", {hc}),
                   weight("model.hc_head.hc_scale", {1})},
                  act(D),
                  {intAttr("hc", hc), floatAttr("norm_eps", config_.rmsNormEps),
                   floatAttr("hc_eps", config_.hcEps)});
  f = rmsNorm(f, D, D, "model.norm.weight");
  Value logits = linear(f, "lm_head.weight", D, V);

  llvm::SmallVector<Value> results{logits};
  results.append(caches_.begin(), caches_.end());
  b_.create<mlir::func::ReturnOp>(loc_, results);
  func_.setFunctionType(b_.getFunctionType(body->getArgumentTypes(), mlir::ValueRange(results).getTypes()));
  return mlir::OwningOpRef<mlir::ModuleOp>(module_);
}

} // namespace

void loadModelDialects(mlir::MLIRContext &context) {
  context.loadDialect<v4::V4Dialect, mlir::func::FuncDialect>();
}

mlir::OwningOpRef<mlir::ModuleOp> buildModel(mlir::MLIRContext &context, const ModelConfig &config) {
  loadModelDialects(context);
  return GraphBuilder(context, config).build();
}

} // namespace v4c
