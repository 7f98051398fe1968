// The C++ API of the v4 dialect as the model builder and the passes use it:
// creating ops and caches with builders, and the verifiers' messages.
#include "dialects/v4/V4Dialect.h"
#include "dialects/v4/V4Ops.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/AsmParser/AsmParser.h"

#include <gtest/gtest.h>

#include <string>

using namespace mlir;
using namespace v4c::v4;

namespace {

class V4DialectTest : public ::testing::Test {
protected:
  V4DialectTest() : builder(&context) {
    context.loadDialect<V4Dialect, func::FuncDialect>();
    // Collect diagnostics instead of printing them, so tests can read them.
    handler = std::make_unique<ScopedDiagnosticHandler>(&context, [this](Diagnostic &diag) {
      messages += diag.str() + "\n";
      return success();
    });
    module = ModuleOp::create(builder.getUnknownLoc());
    builder.setInsertionPointToEnd(module->getBody());
  }

  RankedTensorType tensor(ArrayRef<int64_t> shape, Type element = {}) {
    return RankedTensorType::get(shape, element ? element : builder.getF32Type());
  }

  // A function whose arguments have `types`; the builder points into its body.
  func::FuncOp function(TypeRange types) {
    auto fn = builder.create<func::FuncOp>(builder.getUnknownLoc(), "f",
                                           builder.getFunctionType(types, {}));
    builder.setInsertionPointToEnd(fn.addEntryBlock());
    return fn;
  }

  MLIRContext context;
  OpBuilder builder;
  OwningOpRef<ModuleOp> module;
  std::unique_ptr<ScopedDiagnosticHandler> handler;
  std::string messages;
};

constexpr int64_t kDynamic = ShapedType::kDynamic;

TEST_F(V4DialectTest, CacheTypePrintsAndParsesBack) {
  auto entries = CacheType::get(&context, CacheKind::entries, kDynamic, 32, 4,
                                builder.getF32Type());
  std::string printed;
  llvm::raw_string_ostream(printed) << Type(entries);
  EXPECT_EQ(printed, "!v4.cache<entries, width = 32, rate = 4, f32>");
  EXPECT_EQ(parseType(printed, &context), Type(entries));

  auto window = CacheType::get(&context, CacheKind::window, 8, 32, 0, builder.getBF16Type());
  printed.clear();
  llvm::raw_string_ostream(printed) << Type(window);
  EXPECT_EQ(printed, "!v4.cache<window, rows = 8, width = 32, bf16>");
  EXPECT_TRUE(window.isWindow());
  EXPECT_TRUE(window.hasStaticRows());
  EXPECT_FALSE(entries.hasStaticRows());
}

TEST_F(V4DialectTest, CacheTypeRejectsInconsistentParameters) {
  auto loc = builder.getUnknownLoc();
  auto emitAtLoc = [&] { return emitError(loc); };
  llvm::function_ref<InFlightDiagnostic()> emit = emitAtLoc;
  // getChecked is also a template in MLIR's base class: pass int64_t exactly.
  const int64_t width = 32, noRate = 0, oddRows = 7;
  Type f32 = builder.getF32Type();
  EXPECT_FALSE(CacheType::getChecked(emit, &context, CacheKind::entries, kDynamic, width, noRate, f32));
  EXPECT_NE(messages.find("needs `rate = m`"), std::string::npos) << messages;
  EXPECT_FALSE(CacheType::getChecked(emit, &context, CacheKind::window, kDynamic, width, noRate, f32));
  EXPECT_NE(messages.find("(the window size W)"), std::string::npos) << messages;
  EXPECT_FALSE(CacheType::getChecked(emit, &context, CacheKind::compress_state, oddRows, width, noRate, f32));
  EXPECT_NE(messages.find("must be even"), std::string::npos) << messages;
}

TEST_F(V4DialectTest, WeightTensorsMayBeQuantized) {
  auto quant = QuantAttr::get(&context, QuantFormat::fp8_e4m3, {128, 128}, QuantScale::ue8m0);
  auto fp8 = RankedTensorType::get({256, 128}, builder.getFloat8E4M3FNType(), quant);
  EXPECT_TRUE(isWeightTensor(fp8, 2));
  EXPECT_TRUE(isQuantizedTensor(fp8));
  EXPECT_FALSE(isWeightTensor(fp8, 3));
  EXPECT_TRUE(isWeightTensor(tensor({64}, builder.getBF16Type()), 1));
  EXPECT_FALSE(isWeightTensor(tensor({64}, builder.getF16Type()), 1));
  EXPECT_FALSE(isWeightTensor(tensor({64}, builder.getI32Type()), 1));
}

TEST_F(V4DialectTest, BuiltOpsVerifyAndKeepAttributesInTheDictionary) {
  auto loc = builder.getUnknownLoc();
  builder.create<GlobalOp>(loc, "model.layers.0.attn.attn_sink", tensor({2}));
  auto window = CacheType::get(&context, CacheKind::window, 8, 32, 0, builder.getF32Type());
  auto entries = CacheType::get(&context, CacheKind::entries, kDynamic, 32, 4,
                                builder.getF32Type());
  auto ids = tensor({kDynamic}, builder.getI32Type());
  func::FuncOp fn = function({tensor({kDynamic, 64}), tensor({kDynamic, 32}), ids, window, entries});
  Block &body = fn.front();
  Value sinks = builder.create<WeightOp>(loc, tensor({2}), "model.layers.0.attn.attn_sink");
  auto attention = builder.create<AttentionOp>(
      loc, tensor({kDynamic, 64}), body.getArgument(0), body.getArgument(1), sinks,
      body.getArgument(2), body.getArgument(3), body.getArgument(4), /*topk=*/Value(),
      builder.getI64IntegerAttr(2), builder.getI64IntegerAttr(32), builder.getI64IntegerAttr(8),
      builder.getI64IntegerAttr(4), builder.getF64FloatAttr(0.125));
  builder.create<func::ReturnOp>(loc);

  ASSERT_TRUE(succeeded(verify(*module))) << messages;
  DictionaryAttr attrs = attention->getAttrDictionary();
  for (StringRef name : {"num_heads", "head_dim", "window", "rate", "scale", "operandSegmentSizes"})
    EXPECT_TRUE(attrs.contains(name)) << name.str();
  auto segments = cast<DenseI32ArrayAttr>(attrs.get("operandSegmentSizes"));
  EXPECT_EQ(segments.asArrayRef(), ArrayRef<int32_t>({1, 1, 1, 1, 1, 1, 0}));
  EXPECT_EQ(attention.getWindowCache().getType().getRows(), 8);
}

TEST_F(V4DialectTest, VerifierExplainsAShapeMismatch) {
  auto loc = builder.getUnknownLoc();
  func::FuncOp fn = function({tensor({kDynamic, 64}), tensor({32, 48})});
  builder.create<LinearOp>(loc, tensor({kDynamic, 32}), fn.getArgument(0), fn.getArgument(1));
  builder.create<func::ReturnOp>(loc);
  EXPECT_TRUE(failed(verify(*module)));
  EXPECT_NE(messages.find("w columns is 48 but must be 64"), std::string::npos) << messages;
}

TEST_F(V4DialectTest, WeightMustMatchItsGlobal) {
  auto loc = builder.getUnknownLoc();
  builder.create<GlobalOp>(loc, "model.norm.weight", tensor({64}));
  function({});
  builder.create<WeightOp>(loc, tensor({32}), "model.norm.weight");
  builder.create<func::ReturnOp>(loc);
  EXPECT_TRUE(failed(verify(*module)));
  EXPECT_NE(messages.find("differs from the type 'tensor<64xf32>'"), std::string::npos)
      << messages;
}

TEST_F(V4DialectTest, WeightNeedsADeclaredGlobal) {
  auto loc = builder.getUnknownLoc();
  function({});
  builder.create<WeightOp>(loc, tensor({64}), "model.missing.weight");
  builder.create<func::ReturnOp>(loc);
  EXPECT_TRUE(failed(verify(*module)));
  EXPECT_NE(messages.find("which no v4.global declares"), std::string::npos) << messages;
}

} // namespace
