// The builder emits a graph that verifies for every layer type and routing,
// with the ops and caches the config asks for.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Verifier.h"

#include "dialects/v4/V4Ops.h"
#include "models/ModelBuilder.h"
#include "models/config/NamedConfigs.h"

namespace v4c {
namespace {

std::map<std::string, int> countOps(mlir::ModuleOp module) {
  std::map<std::string, int> counts;
  module.walk([&](mlir::Operation *op) { ++counts[op->getName().getStringRef().str()]; });
  return counts;
}

TEST(ModelBuilder, TinyMixedHasEveryLayerType) {
  mlir::MLIRContext context;
  const ModelConfig config = ModelConfig::fromFile(V4_CONFORMANCE_DIR "/tiny-mixed/config.json");
  auto module = buildModel(context, config);
  ASSERT_TRUE(mlir::succeeded(mlir::verify(*module)));
  auto counts = countOps(*module);
  // Layers: sliding, CSA, HCA, CSA.
  EXPECT_EQ(counts["v4.attention"], 4);
  EXPECT_EQ(counts["v4.compress"], 2 + 1 + 2); // CSA: compressor + indexer; HCA: compressor
  EXPECT_EQ(counts["v4.indexer_topk"], 2);
  EXPECT_EQ(counts["v4.hash_router"], 3);
  EXPECT_EQ(counts["v4.router"], 1);
  EXPECT_EQ(counts["v4.hc_pre"], 8);
  EXPECT_EQ(counts["v4.hc_head"], 1);
  auto forward = module->lookupSymbol<mlir::func::FuncOp>("forward");
  ASSERT_TRUE(forward);
  // ids, positions, then caches: 4 windows + 5 compressors x (state, entries).
  EXPECT_EQ(forward.getNumArguments(), 2u + 4 + 10);
  EXPECT_EQ(forward.getNumResults(), 1u + 4 + 10);
}

TEST(ModelBuilder, V4FlashShapesAreTheRealOnes) {
  mlir::MLIRContext context;
  auto module = buildModel(context, namedConfig("v4-flash"));
  ASSERT_TRUE(mlir::succeeded(mlir::verify(*module)));
  auto counts = countOps(*module);
  EXPECT_EQ(counts["v4.attention"], 43);
  EXPECT_EQ(counts["v4.hash_router"], 3);
  EXPECT_EQ(counts["v4.router"], 40);
  auto embed = module->lookupSymbol<v4::GlobalOp>("model.embed_tokens.weight");
  ASSERT_TRUE(embed);
  auto type = llvm::cast<mlir::RankedTensorType>(embed.getType());
  EXPECT_EQ(type.getShape()[0], 129280);
  EXPECT_EQ(type.getShape()[1], 4096);
}

} // namespace
} // namespace v4c
