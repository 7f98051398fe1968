// v4-plan-memory against an independent checker: random buffer lifetimes,
// then no two simultaneously live buffers may share a byte.
#include "passes/Passes.h"

#include "dialects/plan/PlanOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>

using namespace mlir;
namespace plan = v4c::plan;

namespace {

struct PlannedBuffer {
  int64_t first = -1, last = -1; // launch indices, recomputed from the IR
  uint64_t offset = 0, bytes = 0;
  Type type;
  // Buffers this one may be written over: inputs at an `in_place` position
  // of the launch whose outs[0] it is.
  std::vector<size_t> inPlaceOver;
};

// Reads the planned IR back without reusing anything of the pass.
std::vector<PlannedBuffer> readPlan(plan::BucketOp bucket) {
  std::map<Operation *, size_t> bufferOf;
  std::vector<PlannedBuffer> buffers;
  int64_t launch = 0;
  for (Operation &op : bucket.getBodyBlock()) {
    if (auto alloc = dyn_cast<plan::AllocOp>(op)) {
      EXPECT_TRUE(alloc.getOffset().has_value()) << "every alloc gets an offset";
      PlannedBuffer buffer;
      buffer.offset = alloc.getOffset().value_or(0);
      buffer.bytes = alloc.getResult().getType().getByteSize();
      buffer.type = alloc.getResult().getType();
      bufferOf[alloc] = buffers.size();
      buffers.push_back(buffer);
    } else if (auto launchOp = dyn_cast<plan::LaunchOp>(op)) {
      for (Value operand : launchOp->getOperands())
        if (auto alloc = operand.getDefiningOp<plan::AllocOp>()) {
          PlannedBuffer &buffer = buffers[bufferOf.at(alloc)];
          if (buffer.first < 0)
            buffer.first = launch;
          buffer.last = launch;
        }
      auto out = launchOp.getOuts().empty() ? plan::AllocOp() : launchOp.getOuts()[0].getDefiningOp<plan::AllocOp>();
      std::optional<ArrayRef<int64_t>> inPlace = launchOp.getInPlace();
      if (out && inPlace)
        for (int64_t index : *inPlace)
          if (auto in = launchOp.getIns()[index].getDefiningOp<plan::AllocOp>())
            buffers[bufferOf.at(out)].inPlaceOver.push_back(bufferOf.at(in));
      ++launch;
    }
  }
  return buffers;
}

void checkPlan(plan::BucketOp bucket) {
  ASSERT_TRUE(bucket.getArenaBytes().has_value());
  ASSERT_TRUE(bucket.getNaiveBytes().has_value());
  uint64_t arena = *bucket.getArenaBytes();
  std::vector<PlannedBuffer> buffers = readPlan(bucket);
  uint64_t naive = 0;
  int64_t launches = 0;
  for (const PlannedBuffer &buffer : buffers) {
    EXPECT_EQ(buffer.offset % 64, 0u);
    EXPECT_LE(buffer.offset + buffer.bytes, arena);
    naive += buffer.bytes;
    launches = std::max(launches, buffer.last + 1);
  }
  EXPECT_GE(*bucket.getNaiveBytes(), naive);
  EXPECT_LE(arena, *bucket.getNaiveBytes());
  // j written in place over i: exactly i's bytes and type, at i's last read.
  auto writtenOver = [&](size_t i, size_t j) {
    const PlannedBuffer &in = buffers[i], &out = buffers[j];
    return llvm::is_contained(out.inPlaceOver, i) && in.last == out.first && in.offset == out.offset &&
           in.type == out.type;
  };
  for (size_t i = 0; i < buffers.size(); ++i)
    for (size_t j = i + 1; j < buffers.size(); ++j) {
      const PlannedBuffer &a = buffers[i], &b = buffers[j];
      bool liveTogether = a.first <= b.last && b.first <= a.last;
      bool shareBytes = a.offset < b.offset + b.bytes && b.offset < a.offset + a.bytes;
      if (writtenOver(i, j) || writtenOver(j, i))
        continue;
      EXPECT_FALSE(liveTogether && shareBytes)
          << "buffers " << i << " [" << a.first << "," << a.last << "] @" << a.offset << "+" << a.bytes
          << " and " << j << " [" << b.first << "," << b.last << "] @" << b.offset << "+" << b.bytes;
    }
  for (int64_t step = 0; step < launches; ++step) {
    uint64_t live = 0;
    for (size_t i = 0; i < buffers.size(); ++i) {
      const PlannedBuffer &buffer = buffers[i];
      bool overwritesADyingInput = false; // its bytes are counted with that input's
      for (size_t in : buffer.inPlaceOver)
        overwritesADyingInput |= buffer.first == step && writtenOver(in, i);
      if (buffer.first <= step && step <= buffer.last && !overwritesADyingInput)
        live += buffer.bytes;
    }
    EXPECT_GE(arena, live) << "at launch " << step;
  }
}

class PlanMemoryTest : public ::testing::Test {
protected:
  PlanMemoryTest() {
    context.loadDialect<plan::PlanDialect>();
    module = ModuleOp::create(UnknownLoc::get(&context));
  }

  LogicalResult runPass() {
    PassManager pm(&context);
    pm.addPass(v4c::createPlanMemoryPass());
    return pm.run(*module);
  }

  // A bucket whose launches write and read buffers with the given lifetimes
  // [writer, last reader] and sizes in f32 elements.
  // With `inPlace`, every launch lists all its inputs as `in_place`.
  plan::BucketOp buildBucket(const std::vector<std::array<int64_t, 3>> &lifetimes, int64_t launches,
                             bool inPlace = false) {
    OpBuilder builder(&context);
    builder.setInsertionPointToEnd(module->getBody());
    auto bucket = builder.create<plan::BucketOp>(builder.getUnknownLoc(), "prefill_" + std::to_string(count++),
                                                 "prefill", 1, 1);
    builder.setInsertionPoint(bucket.getBodyBlock().getTerminator());
    std::vector<Value> buffers(lifetimes.size());
    for (int64_t step = 0; step < launches; ++step) {
      SmallVector<Value> ins, outs;
      for (size_t i = 0; i < lifetimes.size(); ++i) {
        auto [first, last, elements] = lifetimes[i];
        if (first == step) {
          auto type = plan::BufferType::get(&context, {elements}, builder.getF32Type());
          buffers[i] = builder.create<plan::AllocOp>(builder.getUnknownLoc(), type, IntegerAttr());
          outs.push_back(buffers[i]);
        } else if (first < step && step <= last && (step == last || (step + i) % 3 == 0)) {
          ins.push_back(buffers[i]);
        }
      }
      if (outs.empty()) { // every launch writes something
        auto type = plan::BufferType::get(&context, {1}, builder.getF32Type());
        outs.push_back(builder.create<plan::AllocOp>(builder.getUnknownLoc(), type, IntegerAttr()));
      }
      auto launch = builder.create<plan::LaunchOp>(builder.getUnknownLoc(), "k" + std::to_string(step), ins,
                                                   outs, builder.getDictionaryAttr({}));
      if (inPlace && !ins.empty())
        launch.setInPlaceAttr(builder.getDenseI64ArrayAttr(llvm::to_vector(llvm::seq<int64_t>(0, ins.size()))));
    }
    return bucket;
  }

  MLIRContext context;
  OwningOpRef<ModuleOp> module;
  int count = 0;
};

TEST_F(PlanMemoryTest, ChainReusesDeadBuffers) {
  // a -> b -> c -> d, 32 f32 each (128 bytes): at most two live at a time.
  plan::BucketOp bucket = buildBucket({{0, 1, 32}, {1, 2, 32}, {2, 3, 32}, {3, 3, 32}}, 4);
  ASSERT_TRUE(succeeded(runPass()));
  EXPECT_EQ(*bucket.getNaiveBytes(), 512u);
  EXPECT_EQ(*bucket.getArenaBytes(), 256u);
  checkPlan(bucket);
}

TEST_F(PlanMemoryTest, BestFitPicksTheSmallestGap) {
  // A (512 B) and B (128 B) die after launch 0; the long-lived S1 and S2 leave
  // a 512 B hole at 0 and a 128 B hole at 768. C (64 B, written at launch 1)
  // goes into the smaller hole; first fit would take offset 0.
  plan::BucketOp bucket = buildBucket({{0, 0, 128}, {0, 1, 64}, {0, 0, 32}, {0, 1, 16}, {1, 1, 16}}, 2);
  ASSERT_TRUE(succeeded(runPass()));
  checkPlan(bucket);
  std::vector<PlannedBuffer> buffers = readPlan(bucket);
  ASSERT_EQ(buffers.size(), 5u);
  EXPECT_EQ(buffers[0].offset, 0u);   // A
  EXPECT_EQ(buffers[1].offset, 512u); // S1
  EXPECT_EQ(buffers[2].offset, 768u); // B
  EXPECT_EQ(buffers[3].offset, 896u); // S2
  EXPECT_EQ(buffers[4].offset, 768u); // C reuses B's bytes
  EXPECT_EQ(*bucket.getArenaBytes(), 960u);
}

TEST_F(PlanMemoryTest, RandomLifetimesNeverOverlap) {
  std::mt19937 random(1234);
  for (int trial = 0; trial < 60; ++trial) {
    int64_t launches = 1 + random() % 24;
    size_t bufferCount = 1 + random() % 40;
    std::vector<std::array<int64_t, 3>> lifetimes;
    for (size_t i = 0; i < bufferCount; ++i) {
      int64_t first = random() % launches;
      int64_t last = first + random() % (launches - first);
      int64_t elements = 1 + random() % (random() % 2 ? 40 : 3000);
      lifetimes.push_back({first, last, elements});
    }
    plan::BucketOp bucket = buildBucket(lifetimes, launches);
    ASSERT_TRUE(succeeded(runPass())) << "trial " << trial;
    checkPlan(bucket);
    EXPECT_LE(*bucket.getArenaBytes(), *bucket.getNaiveBytes());
  }
}

TEST_F(PlanMemoryTest, InPlaceOnlyWhereLegal) {
  // a (0..1) dies at launch 1, which writes b (1..2) of the same size: b
  // takes a's bytes. c (2..3, bigger) cannot take b's. Then d (3..3) of b's
  // size is written while b is dead and c live: plain reuse of b's bytes.
  plan::BucketOp bucket = buildBucket({{0, 1, 32}, {1, 2, 32}, {2, 3, 64}, {3, 3, 32}}, 4, /*inPlace=*/true);
  ASSERT_TRUE(succeeded(runPass()));
  checkPlan(bucket);
  std::vector<PlannedBuffer> buffers = readPlan(bucket);
  EXPECT_EQ(buffers[1].offset, buffers[0].offset);
  EXPECT_EQ(bucket->getAttrOfType<IntegerAttr>("written_in_place").getInt(), 1);
  EXPECT_EQ(*bucket.getArenaBytes(), 384u); // c (256) + one 128-byte range
  EXPECT_EQ(bucket->getAttrOfType<IntegerAttr>("peak_live_bytes").getInt(), 384);
}

TEST_F(PlanMemoryTest, RandomInPlaceLifetimesNeverOverlap) {
  std::mt19937 random(99);
  int64_t inPlaceBuffers = 0;
  for (int trial = 0; trial < 60; ++trial) {
    int64_t launches = 1 + random() % 24;
    size_t bufferCount = 1 + random() % 40;
    std::vector<std::array<int64_t, 3>> lifetimes;
    for (size_t i = 0; i < bufferCount; ++i) {
      int64_t first = random() % launches;
      int64_t last = first + random() % std::min<int64_t>(3, launches - first);
      lifetimes.push_back({first, last, random() % 2 ? 16 : 32}); // equal sizes, so in place fires
    }
    plan::BucketOp bucket = buildBucket(lifetimes, launches, /*inPlace=*/true);
    ASSERT_TRUE(succeeded(runPass())) << "trial " << trial;
    checkPlan(bucket);
    inPlaceBuffers += bucket->getAttrOfType<IntegerAttr>("written_in_place").getInt();
  }
  EXPECT_GT(inPlaceBuffers, 50);
}

TEST_F(PlanMemoryTest, ReadBeforeWriteFails) {
  OwningOpRef<ModuleOp> parsed = parseSourceString<ModuleOp>(R"mlir(
    plan.bucket @prefill_4 attributes {kind = "prefill", tokens = 4 : i64, batch = 1 : i64} {
      %a = plan.alloc : !plan.buffer<4x8xf32>
      %b = plan.alloc : !plan.buffer<4x8xf32>
      plan.launch "v4.add"(%a, %a : !plan.buffer<4x8xf32>, !plan.buffer<4x8xf32>) -> (%b : !plan.buffer<4x8xf32>) {params = {}}
    }
  )mlir", &context);
  ASSERT_TRUE(parsed);
  std::string message;
  ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diagnostic) {
    message = diagnostic.str();
    return success();
  });
  PassManager pm(&context);
  pm.addPass(v4c::createPlanMemoryPass());
  EXPECT_TRUE(failed(pm.run(*parsed)));
  EXPECT_NE(message.find("before any launch writes it"), std::string::npos) << message;
}

} // namespace
