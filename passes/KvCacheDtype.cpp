// v4-kv-cache-dtype: sets the storage format of the model's KV caches
// (v4c compile --kv-cache fp32|bf16|fp8). Only cache types change; every op
// keeps computing in f32 and the CPU kernels round each stored row
// (runtime/cpu/CacheStorage.h, docs/quantization.md "KV cache").
//
// Which slots: the sliding-window kv rows and the compressed entries take the
// format; with fp8 their last rope_dim channels stay bf16 (`rope = r`, read
// from the v4.rope / v4.compress that produces them). Indexer keys (entries
// read by v4.indexer_topk) are all e4m3 (`rope = 0`): V4 stores them even
// narrower, so nothing in them is kept wider. Compressor state stays f32.
#include "dialects/v4/V4Ops.h"
#include "dialects/v4/V4Types.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"

namespace v4c {
#define GEN_PASS_DEF_KVCACHEDTYPEPASS
#include "passes/Passes.h.inc"
} // namespace v4c

using namespace mlir;

namespace v4c {
namespace {

// Every SSA version of one cache: the argument, then each op result that
// updates it (a cache result of the same type as the cache operand it takes).
FailureOr<SmallVector<Value>> cacheVersions(BlockArgument argument) {
  SmallVector<Value> versions{argument};
  for (size_t i = 0; i < versions.size(); ++i) {
    Value version = versions[i];
    for (Operation *user : version.getUsers()) {
      for (OpResult result : user->getResults()) {
        if (result.getType() != version.getType())
          continue;
        if (llvm::count(user->getOperandTypes(), version.getType()) != 1)
          return user->emitOpError() << "takes two caches of type " << version.getType()
                                     << "; v4-kv-cache-dtype cannot tell which one a result "
                                        "updates (an op that updates a cache must take one cache of its type)";
        versions.push_back(result);
      }
    }
  }
  return versions;
}

// rope_dim of the op that makes the rows stored into this cache, or -1.
int64_t ropeDimOfProducer(ArrayRef<Value> versions) {
  auto ropeDimOf = [](Operation *op) -> int64_t {
    auto attr = op ? op->getAttrOfType<IntegerAttr>("rope_dim") : IntegerAttr();
    return attr ? attr.getInt() : -1;
  };
  for (Value version : versions)
    for (Operation *user : version.getUsers()) {
      // v4.compress / v4.linear_compress / v4.rope_cache_append rope the rows themselves.
      if (isa<v4::CompressOp, v4::LinearCompressOp, v4::RopeCacheAppendOp>(user))
        return ropeDimOf(user);
      if (auto append = dyn_cast<v4::CacheAppendOp>(user))
        return ropeDimOf(append.getKv().getDefiningOp());
    }
  return -1;
}

bool readByIndexer(ArrayRef<Value> versions) {
  for (Value version : versions)
    for (Operation *user : version.getUsers())
      if (isa<v4::IndexerTopkOp>(user))
        return true;
  return false;
}

struct KvCacheDtypePass : impl::KvCacheDtypePassBase<KvCacheDtypePass> {
  using KvCacheDtypePassBase::KvCacheDtypePassBase;

  void runOnOperation() override {
    MLIRContext *context = &getContext();
    Type element;
    if (dtype == "fp32")
      return; // the builder's caches are f32 already
    if (dtype == "bf16")
      element = BFloat16Type::get(context);
    else if (dtype == "fp8")
      element = Float8E4M3FNType::get(context);
    if (!element) {
      getOperation().emitError() << "v4-kv-cache-dtype: unknown dtype '" << dtype
                                 << "'; use fp32, bf16 or fp8";
      return signalPassFailure();
    }
    for (auto function : getOperation().getOps<func::FuncOp>())
      if (failed(retypeCaches(function, element)))
        return signalPassFailure();
  }

  LogicalResult retypeCaches(func::FuncOp function, Type element) {
    if (function.isExternal())
      return success();
    for (BlockArgument argument : function.getArguments()) {
      auto type = dyn_cast<v4::CacheType>(argument.getType());
      if (!type || type.isCompressState() || type.getElementType() == element)
        continue;
      if (type.isNarrowStorage())
        return function.emitOpError()
               << "cache argument #" << argument.getArgNumber() << " is already " << type
               << "; v4-kv-cache-dtype sets the format of f32 caches once";
      FailureOr<SmallVector<Value>> versions = cacheVersions(argument);
      if (failed(versions))
        return failure();
      int64_t ropeWidth = 0;
      if (element.isFloat8E4M3FN() && !readByIndexer(*versions)) {
        ropeWidth = ropeDimOfProducer(*versions);
        if (ropeWidth < 0)
          return function.emitOpError()
                 << "cannot tell the rope channels of cache argument #" << argument.getArgNumber()
                 << " (" << type << "): its rows must come from v4.cache_append of a v4.rope, "
                    "v4.rope_cache_append or v4.compress; run v4-kv-cache-dtype on the "
                    "model builder's graph";
      }
      auto narrowed = v4::CacheType::getChecked(
          [&] { return function.emitOpError() << "cache argument #" << argument.getArgNumber() << ": "; },
          &getContext(), type.getKind(), type.getRows(), type.getWidth(), type.getRate(), element,
          ropeWidth);
      if (!narrowed)
        return failure();
      for (Value version : *versions)
        version.setType(narrowed);
    }
    // The function type follows its arguments and returned values.
    Operation *terminator = function.getBody().back().getTerminator();
    function.setFunctionType(FunctionType::get(&getContext(), function.getBody().getArgumentTypes(),
                                               terminator->getOperandTypes()));
    return success();
  }
};

} // namespace
} // namespace v4c
