// The state-family emitters (StateEmitters.cpp): launch geometry for tiny
// and V4-Flash dimensions at T = 1, 5, 64 in f32 and bf16, entry naming,
// clear errors for malformed steps, and nvcc compiling every instantiation
// for sm_90a and sm_80 (skipped, saying why, where nvcc is absent).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <tuple>

#include <gtest/gtest.h>

#include "codegen/cuda/CudaCodegen.h"
#include "codegen/cuda/KernelEmitter.h"
#include "common/Error.h"

namespace v4c::cuda {
namespace {

using v4rt::ArgKind;
using v4rt::ArgRef;
using v4rt::Attr;
using v4rt::CacheKind;
using v4rt::DType;

// The dimensions the steps are built from.
struct ModelDims {
  std::string name;
  int64_t D, nh, hd, rope, W, csaRate, hcaRate, nI, dI, topK, E, k, I;
};
const ModelDims kTiny{"tiny", 64, 4, 32, 4, 8, 4, 16, 16, 16, 4, 8, 2, 48};        // tests/conformance/tiny-mixed
const ModelDims kFlash{"flash", 4096, 64, 512, 64, 128, 4, 128, 64, 128, 512, 256, 6, 2048}; // NamedConfigs "v4-flash"

Attr intAttr(const std::string &name, int64_t value) { return {name, {value}, {}, ""}; }
Attr floatAttr(const std::string &name, double value) { return {name, {}, {value}, ""}; }
Attr intsAttr(const std::string &name, std::vector<int64_t> values) { return {name, std::move(values), {}, ""}; }
std::vector<Attr> ropeAttrs(int64_t headDim, int64_t ropeDim) {
  std::vector<double> invFreq;
  for (int64_t i = 0; i < ropeDim / 2; ++i)
    invFreq.push_back(1.0 / (1.0 + static_cast<double>(i)));
  return {intAttr("head_dim", headDim), intAttr("rope_dim", ropeDim), {"inv_freq", {}, invFreq, ""},
          floatAttr("scaling", 1.0)};
}

// Builds one Program step by step: arena buffers get fresh offsets, weights
// and cache slots fresh indices.
class ProgramBuilder {
public:
  v4rt::Program program;

  ProgramBuilder() { program.target = "sm_90a"; }

  v4rt::Bucket &bucket(int64_t tokens) {
    v4rt::Bucket b;
    b.name = "prefill_" + std::to_string(tokens) + "_" + std::to_string(program.buckets.size());
    b.kind = tokens == 1 ? v4rt::BucketKind::Decode : v4rt::BucketKind::Prefill;
    b.tokens = tokens;
    program.buckets.push_back(b);
    return program.buckets.back();
  }
  ArgRef arena(std::vector<int64_t> shape, DType dtype) {
    ArgRef ref;
    ref.kind = ArgKind::Arena;
    ref.offset = arenaTop;
    ref.dtype = dtype;
    ref.shape = std::move(shape);
    arenaTop += (ref.byteSize() + 63) / 64 * 64;
    return ref;
  }
  ArgRef weight(std::vector<int64_t> shape, DType dtype) {
    v4rt::Weight w;
    w.name = "w" + std::to_string(program.weights.size());
    w.dtype = dtype;
    w.shape = shape;
    program.weights.push_back(w);
    ArgRef ref;
    ref.kind = ArgKind::Weight;
    ref.index = static_cast<uint32_t>(program.weights.size() - 1);
    ref.dtype = dtype;
    ref.shape = std::move(shape);
    return ref;
  }
  ArgRef cache(CacheKind kind, int64_t rows, int64_t width, int64_t rate, DType dtype) {
    v4rt::CacheSlot slot;
    slot.name = "layers.0.cache" + std::to_string(program.caches.size());
    slot.kind = kind;
    slot.rows = rows;
    slot.width = width;
    slot.rate = rate;
    slot.dtype = dtype;
    program.caches.push_back(slot);
    ArgRef ref;
    ref.kind = ArgKind::Cache;
    ref.index = static_cast<uint32_t>(program.caches.size() - 1);
    ref.dtype = dtype;
    ref.shape = {rows, width};
    return ref;
  }
  ArgRef positions(int64_t tokens) {
    ArgRef ref;
    ref.kind = ArgKind::Input;
    ref.index = 1;
    ref.dtype = DType::I32;
    ref.shape = {tokens};
    return ref;
  }
  void step(v4rt::Bucket &b, const std::string &op, std::vector<ArgRef> ins, std::vector<ArgRef> outs,
            std::vector<Attr> attrs) {
    v4rt::Step s;
    s.kernel = kernelIndex(op);
    s.ins = std::move(ins);
    s.outs = std::move(outs);
    s.attrs = std::move(attrs);
    b.steps.push_back(std::move(s));
  }

private:
  uint32_t kernelIndex(const std::string &op) {
    for (size_t i = 0; i < program.kernels.size(); ++i)
      if (program.kernels[i].name == op)
        return static_cast<uint32_t>(i);
    program.kernels.push_back({op, {}});
    return static_cast<uint32_t>(program.kernels.size() - 1);
  }
  uint64_t arenaTop = 0;
};

// One step of every state op for a bucket of T tokens (float dtype `dt` for
// activations, caches and weights; router weights f32).
void addStateSteps(ProgramBuilder &p, v4rt::Bucket &b, const ModelDims &m, DType dt) {
  const int64_t T = b.tokens;
  const ArgRef window = p.cache(CacheKind::Window, m.W, m.hd, 0, dt);
  p.step(b, "v4.cache_append", {window, p.arena({T, m.hd}, dt), p.positions(T)}, {window}, {});
  std::vector<Attr> rope = ropeAttrs(m.hd, m.rope);
  rope.push_back(intAttr("inverse", 0));
  p.step(b, "v4.rope_cache_append", {window, p.arena({T, m.hd}, dt), p.positions(T)},
         {p.arena({T, m.hd}, dt), window}, rope);

  // Attention: sliding, HCA (all entries), CSA (top-k entries).
  const ArgRef csaEntries = p.cache(CacheKind::Entries, 0, m.hd, m.csaRate, dt);
  const ArgRef hcaEntries = p.cache(CacheKind::Entries, 0, m.hd, m.hcaRate, dt);
  auto attention = [&](int64_t rate, const ArgRef *entries, bool topk) {
    std::vector<ArgRef> ins = {p.arena({T, m.nh * m.hd}, dt), p.arena({T, m.hd}, dt), p.weight({m.nh}, dt),
                               p.positions(T), window};
    if (entries)
      ins.push_back(*entries);
    if (topk)
      ins.push_back(p.arena({T, m.topK}, DType::I32));
    p.step(b, "v4.attention", ins, {p.arena({T, m.nh * m.hd}, dt)},
           {intAttr("num_heads", m.nh), intAttr("head_dim", m.hd), intAttr("window", m.W), intAttr("rate", rate),
            floatAttr("scale", 1.0 / std::sqrt(static_cast<double>(m.hd))),
            intsAttr("operandSegmentSizes", {1, 1, 1, 1, 1, entries ? 1 : 0, topk ? 1 : 0})});
  };
  attention(0, nullptr, false);
  attention(m.hcaRate, &hcaEntries, false);
  attention(m.csaRate, &csaEntries, true);

  // Compressors: CSA main (overlap), HCA main, and the indexer's (fused).
  auto compressAttrs = [&](int64_t rate, int64_t C, bool overlap) {
    std::vector<Attr> attrs = ropeAttrs(C, m.rope);
    attrs.push_back(intAttr("rate", rate));
    attrs.push_back(intAttr("overlap", overlap ? 1 : 0));
    attrs.push_back(floatAttr("eps", 1e-6));
    return attrs;
  };
  for (bool overlap : {true, false}) {
    const int64_t rate = overlap ? m.csaRate : m.hcaRate, Cin = overlap ? 2 * m.hd : m.hd;
    const ArgRef state = p.cache(CacheKind::CompressState, 2 * rate, 2 * Cin, 0, dt);
    const ArgRef &entries = overlap ? csaEntries : hcaEntries;
    p.step(b, "v4.compress",
           {p.arena({T, Cin}, dt), p.arena({T, Cin}, dt), p.weight({rate, Cin}, dt), p.weight({m.hd}, dt),
            p.positions(T), state, entries},
           {state, entries}, compressAttrs(rate, m.hd, overlap));
  }
  const ArgRef keys = p.cache(CacheKind::Entries, 0, m.dI, m.csaRate, dt);
  const ArgRef keyState = p.cache(CacheKind::CompressState, 2 * m.csaRate, 4 * m.dI, 0, dt);
  p.step(b, "v4.linear_compress",
         {p.arena({T, m.D}, dt), p.weight({2 * m.dI, m.D}, dt), p.weight({2 * m.dI, m.D}, dt),
          p.weight({m.csaRate, 2 * m.dI}, dt), p.weight({m.dI}, dt), p.positions(T), keyState, keys},
         {keyState, keys}, compressAttrs(m.csaRate, m.dI, true));
  p.step(b, "v4.indexer_topk", {p.arena({T, m.nI * m.dI}, dt), p.arena({T, m.nI}, dt), p.positions(T), keys},
         {p.arena({T, m.topK}, DType::I32)},
         {intAttr("heads", m.nI), intAttr("head_dim", m.dI), intAttr("top_k", m.topK), intAttr("rate", m.csaRate),
          floatAttr("weight_scale", 1.0 / std::sqrt(static_cast<double>(m.nI))),
          floatAttr("score_scale", 1.0 / std::sqrt(static_cast<double>(m.dI)))});

  // Routed experts, dense and fp4.
  const std::vector<ArgRef> routing = {p.arena({T, m.D}, dt), p.arena({T, m.k}, DType::F32),
                                       p.arena({T, m.k}, DType::I32)};
  std::vector<ArgRef> dense = routing;
  dense.push_back(p.weight({m.E, 2 * m.I, m.D}, dt));
  dense.push_back(p.weight({m.E, m.D, m.I}, dt));
  p.step(b, "v4.moe", dense, {p.arena({T, m.D}, dt)}, {floatAttr("swiglu_limit", 10.0)});
  std::vector<ArgRef> fp4 = routing;
  fp4.push_back(p.weight({m.E, 2 * m.I, m.D}, DType::U8));
  fp4.push_back(p.weight({m.E, 2 * m.I, (m.D + 31) / 32}, DType::U8));
  fp4.push_back(p.weight({m.E, m.D, m.I}, DType::U8));
  fp4.push_back(p.weight({m.E, m.D, (m.I + 31) / 32}, DType::U8));
  p.step(b, "v4.moe_fp4", fp4, {p.arena({T, m.D}, dt)},
         {intsAttr("block", {1, 32}), floatAttr("swiglu_limit", 10.0)});
}

EmittedKernel emit(const v4rt::Program &program, const v4rt::Bucket &bucket, const v4rt::Step &step) {
  const std::string &op = program.kernels.at(step.kernel).name;
  KernelEmitterFn fn = findEmitter(op);
  if (fn == nullptr)
    throw Error("no emitter for " + op);
  return fn(StepView(program, bucket, step));
}

// (grid.x, grid.y, block.x, shared bytes) of every step, keyed "op#n".
struct Geometry {
  uint32_t gridX, gridY, block, shared;
  bool operator==(const Geometry &o) const {
    return gridX == o.gridX && gridY == o.gridY && block == o.block && shared == o.shared;
  }
};
std::ostream &operator<<(std::ostream &os, const Geometry &g) {
  return os << "grid (" << g.gridX << ", " << g.gridY << ") block " << g.block << " shared " << g.shared;
}

std::map<std::string, Geometry> geometryOf(const ModelDims &m, DType dt, int64_t T) {
  ProgramBuilder p;
  addStateSteps(p, p.bucket(T), m, dt);
  std::map<std::string, Geometry> result;
  std::map<std::string, int> seen;
  const v4rt::Bucket &b = p.program.buckets[0];
  for (const v4rt::Step &step : b.steps) {
    const std::string op = p.program.kernels[step.kernel].name;
    const EmittedKernel k = emit(p.program, b, step);
    EXPECT_NE(k.source.find("extern \"C\" __global__"), std::string::npos) << op;
    EXPECT_NE(k.source.find(k.entry + "("), std::string::npos) << op << ": the source must define " << k.entry;
    result[op + "#" + std::to_string(seen[op]++)] = {k.dims.grid[0], k.dims.grid[1], k.dims.block[0],
                                                     k.dims.sharedBytes};
  }
  return result;
}

// Expected geometry, worked out by hand from the header comments.
TEST(StateEmitters, FlashDecodeGeometry) {
  for (DType dt : {DType::F32, DType::BF16}) {
    auto g = geometryOf(kFlash, dt, 1);
    EXPECT_EQ(g["v4.cache_append#0"], (Geometry{1, 1, 256, 0}));
    EXPECT_EQ(g["v4.rope_cache_append#0"], (Geometry{1, 1, 256, 0}));
    // 64 heads in groups of 2 (2 * 512/32 lane floats <= 32), single-token
    // decode: 17 splits each (32 * 17 >= 2 * 264 blocks); 8 warps * 512 + 16
    // floats + one scale per split (AttentionDecode.cuh).
    for (int i = 0; i < 3; ++i)
      EXPECT_EQ(g["v4.attention#" + std::to_string(i)], (Geometry{32 * 17, 1, 256, (8 * 512 + 16 + 17) * 4}));
    // 512 channels, 4 per block; unfused: no projection tiles.
    EXPECT_EQ(g["v4.compress#0"], (Geometry{128, 1, 256, 4}));
    EXPECT_EQ(g["v4.compress#1"], (Geometry{128, 1, 256, 4}));
    // Indexer compressor: 128 channels, 1 per block, GEMV: P[1][4].
    EXPECT_EQ(g["v4.linear_compress#0"], (Geometry{128, 1, 256, 16}));
    // Single-token decode (IndexerDecode.cuh): 264 splits, tiles of 128 keys
    // (8 heads x 4 keys per thread); words: q 64*128, weights 64, keys 128*128
    // + terms 64*128, tile 4*128, two lists 4*512, 16 group counts.
    EXPECT_EQ(g["v4.indexer_topk#0"],
              (Geometry{264, 1, 256, (64 * 128 + 64 + 128 * 128 + 64 * 128 + 4 * 128 + 4 * 512 + 16) * 4}));
    // 6 slots * 2048/32 slices (halved from 128 until >= 264 blocks); h row + one slice.
    EXPECT_EQ(g["v4.moe#0"], (Geometry{384, 1, 256, (4096 + 32) * 4}));
    // fp4 keeps whole e4m3 groups: 6 slots * 2048/128 slices, 16 warps.
    EXPECT_EQ(g["v4.moe_fp4#0"], (Geometry{96, 1, 512, (4096 + 128) * 4}));
  }
}

// sm_89 lets a block opt into 99 KB of shared memory: the flash indexer's
// decode tile (138 KB) does not fit, so the per-token kernel runs instead.
TEST(StateEmitters, DecodeIndexerFallsBackWhereSharedMemoryIsSmaller) {
  for (const char *target : {"sm_89", "sm_80"}) {
    ProgramBuilder p;
    p.program.target = target;
    addStateSteps(p, p.bucket(1), kFlash, DType::BF16);
    const v4rt::Bucket &b = p.program.buckets[0];
    for (const v4rt::Step &step : b.steps)
      if (p.program.kernels[step.kernel].name == "v4.indexer_topk") {
        const EmittedKernel k = emit(p.program, b, step);
        const bool fits = std::string(target) == "sm_80"; // 163 KB
        EXPECT_EQ(k.source.find("indexerTopKDecode<128, 8>(") != std::string::npos, fits) << target;
        EXPECT_EQ(k.dims.grid[0], fits ? 264u : 1u) << target;
        EXPECT_EQ(k.dims.grid[1], fits ? 1u : 128u) << target;
      }
  }
}

TEST(StateEmitters, FlashPrefillGeometry) {
  for (int64_t T : {5, 64}) {
    auto g = geometryOf(kFlash, DType::BF16, T);
    EXPECT_EQ(g["v4.cache_append#0"], (Geometry{static_cast<uint32_t>(T), 1, 256, 0}));
    EXPECT_EQ(g["v4.attention#2"], (Geometry{static_cast<uint32_t>(32 * T), 1, 256, (8 * 512 + 16) * 4}));
    EXPECT_EQ(g["v4.compress#0"], (Geometry{128, 1, 256, 4}));
    // GEMM path: TT = min(16, T), R = 4 rows; P[TT][4] + (TT + 4) * 129.
    const int64_t tt = std::min<int64_t>(16, T);
    EXPECT_EQ(g["v4.linear_compress#0"],
              (Geometry{128, 1, 256, static_cast<uint32_t>((tt * 4 + (tt + 4) * 129) * 4)}));
    EXPECT_EQ(g["v4.indexer_topk#0"], (Geometry{static_cast<uint32_t>(T), static_cast<uint32_t>(256 / T), 256,
                                                (64 * 128 + 64) * 4 + 1024 * 8 + 16}));
    if (T <= 8) { // decode-style split: T * 6 slots * 16 slices of 128 (already >= 264 blocks)
      EXPECT_EQ(g["v4.moe#0"], (Geometry{static_cast<uint32_t>(T * 6 * 16), 1, 256, (4096 + 128) * 4}));
    } else { // tensor cores (MoeMma.cuh): routing + 262 tiles * (16 gate/up slices + 32 down column blocks)
      EXPECT_EQ(g["v4.moe#0"], (Geometry{1 + 262 * (16 + 32), 1, 256,
                                         (3 * 64 + 256) * 40 * 2 + 64 * 260 * 4 + 64 * 32 + 3 * 64 * 4}));
    }
  }
  // A long chunk: one indexer block per token, cache_append keeps W rows.
  auto g = geometryOf(kFlash, DType::BF16, 4096);
  EXPECT_EQ(g["v4.indexer_topk#0"].gridY, 1u);
  EXPECT_EQ(g["v4.indexer_topk#0"].gridX, 4096u);
  EXPECT_EQ(g["v4.cache_append#0"].gridX, 128u);
  EXPECT_EQ(g["v4.attention#0"].gridX, 4096u * 32);
}

TEST(StateEmitters, TinyGeometry) {
  for (DType dt : {DType::F32, DType::BF16})
    for (int64_t T : {1, 5, 64}) {
      auto g = geometryOf(kTiny, dt, T);
      const uint32_t t = static_cast<uint32_t>(T);
      EXPECT_EQ(g["v4.cache_append#0"], (Geometry{std::min(t, 8u), 1, 32, 0}));
      EXPECT_EQ(g["v4.rope_cache_append#0"], (Geometry{t, 1, 32, 0}));
      // 4 heads, hd 32: one group of 4; one token: 64 splits (the most), a scale each.
      EXPECT_EQ(g["v4.attention#1"], T == 1 ? (Geometry{64, 1, 256, (8 * 32 + 16 + 64) * 4})
                                            : (Geometry{t, 1, 256, (8 * 32 + 16) * 4}));
      EXPECT_EQ(g["v4.compress#0"], (Geometry{32, 1, 256, 4}));
      if (T == 1) { // 264 splits, tiles of 512 keys: q 16*16, weights 16, keys + terms 2 * 16*512, tile 4*512
        EXPECT_EQ(g["v4.indexer_topk#0"],
                  (Geometry{264, 1, 256, (16 * 16 + 16 + 2 * 16 * 512 + 4 * 512 + 4 * 4 + 16) * 4}));
      } else {
        EXPECT_EQ(g["v4.indexer_topk#0"].gridY, static_cast<uint32_t>(std::min<int64_t>(128, 256 / T)));
        EXPECT_EQ(g["v4.indexer_topk#0"].shared, (16u * 16 + 16) * 4 + 512 * 8 + 16); // buffer nextpow2(4 + 256)
      }
      // I = 48 is not a multiple of 128: decode uses one slice per slot.
      EXPECT_EQ(g["v4.moe#0"], T <= 8 ? (Geometry{t * 2, 1, 256, (64 + 48) * 4})
                                      : (Geometry{8, 1, 256, (8 * (64 + 48) + 256 + 1 + 8) * 4}));
    }
}

TEST(StateEmitters, EntriesNameEverythingTheirSourceDependsOn) {
  ProgramBuilder p;
  v4rt::Bucket &b1 = p.bucket(1);
  addStateSteps(p, b1, kTiny, DType::F32);
  v4rt::Bucket &b2 = p.bucket(1);
  addStateSteps(p, b2, kTiny, DType::BF16);
  std::map<std::string, std::string> sourceOf;
  std::set<std::string> f32Entries, bf16Entries;
  for (size_t bi = 0; bi < 2; ++bi)
    for (const v4rt::Step &step : p.program.buckets[bi].steps) {
      const EmittedKernel k = emit(p.program, p.program.buckets[bi], step);
      auto [it, inserted] = sourceOf.emplace(k.entry, k.source);
      if (!inserted)
        EXPECT_EQ(it->second, k.source) << k.entry;
      (bi == 0 ? f32Entries : bf16Entries).insert(k.entry);
      // Emitting the same step twice gives the same entry.
      EXPECT_EQ(emit(p.program, p.program.buckets[bi], step).entry, k.entry);
    }
  for (const std::string &entry : f32Entries)
    EXPECT_EQ(bf16Entries.count(entry), 0u) << entry << " is shared by an f32 and a bf16 step";
  // The two compress steps (CSA, HCA) differ: 2 + the other ops' 9 steps.
  EXPECT_EQ(f32Entries.size(), 11u);
}

// The operand -> parameter mapping of each entry (the ABI: in<i> = step.ins[i]).
TEST(StateEmitters, SourcesPassOperandsInTheirAbiOrder) {
  ProgramBuilder p;
  v4rt::Bucket &b = p.bucket(1);
  addStateSteps(p, b, kTiny, DType::F32);
  std::map<std::string, std::vector<std::string>> sources;
  for (const v4rt::Step &step : b.steps)
    sources[p.program.kernels[step.kernel].name].push_back(emit(p.program, b, step).source);
  auto contains = [](const std::string &text, const std::string &part) {
    return text.find(part) != std::string::npos;
  };
  EXPECT_TRUE(contains(sources["v4.cache_append"][0], "v4cuda::cacheAppendRows(out0, in1, in2, 8, 32, dyn);"));
  EXPECT_TRUE(contains(sources["v4.rope_cache_append"][0],
                       "v4cuda::ropeCacheAppendRows(in1, in2, out0, out1, "));
  // Sliding: no entries, no top-k; HCA: entries; CSA: entries and top-k (one
  // token: the split kernels of AttentionDecode.cuh / IndexerDecode.cuh).
  EXPECT_TRUE(contains(sources["v4.attention"][0], "attentionDecodeSplit<32, 4>(in0, in1, in2, in3, in4, "
                                                   "static_cast<const float *>(nullptr), "
                                                   "static_cast<const int32_t *>(nullptr), out0, shape, "));
  EXPECT_TRUE(contains(sources["v4.attention"][1],
                       "(in0, in1, in2, in3, in4, in5, static_cast<const int32_t *>(nullptr), out0, shape, "));
  EXPECT_TRUE(contains(sources["v4.attention"][2], "(in0, in1, in2, in3, in4, in5, in6, out0, shape, "));
  EXPECT_TRUE(contains(sources["v4.attention"][2], "const v4cuda::AttentionShape shape{4, 8, 4, 4, "));
  // Caches are written through the outputs (a cache input the step also writes is not __restrict__).
  EXPECT_TRUE(contains(sources["v4.compress"][0], "LoadedColumns<true, float, float> source{in0, in1};"));
  EXPECT_TRUE(contains(sources["v4.compress"][0], "compressChunk<true, 1, 32>(source, in2, in3, in4, out0, out1, "));
  EXPECT_TRUE(contains(sources["v4.compress"][1], "compressChunk<false, 1, 32>(source, in2, in3, in4, out0, out1, "));
  EXPECT_TRUE(contains(sources["v4.compress"][0], "_pooled[64];")); // (1 + 3) / 4 + 1 windows * 32 channels
  EXPECT_TRUE(contains(sources["v4.linear_compress"][0],
                       "ProjectedColumns<true, 1, 1, float, float, float> source{in0, in1, in2};"));
  EXPECT_TRUE(contains(sources["v4.linear_compress"][0],
                       "compressChunk<true, 1, 1>(source, in3, in4, in5, out0, out1, "));
  EXPECT_TRUE(contains(sources["v4.indexer_topk"][0], "indexerTopKDecode<16, 8>(in0, in1, in2, in3, out0, shape, 16, "
                                                      "scratch, dyn);"));
  EXPECT_TRUE(contains(sources["v4.moe"][0], "DenseExpertRows<float> gateUp{in3, 64};"));
  EXPECT_TRUE(contains(sources["v4.moe"][0], "DenseExpertRows<float> down{in4, 48};"));
  EXPECT_TRUE(contains(sources["v4.moe"][0], "moeSplit<4, false>(in0, in1, in2, gateUp, down, out0, shape, 48, "));
  EXPECT_TRUE(contains(sources["v4.moe_fp4"][0], "Fp4ExpertRows gateUp{in3, in4, 64, 32};"));
  EXPECT_TRUE(contains(sources["v4.moe_fp4"][0], "Fp4ExpertRows down{in5, in6, 48, 32};"));
  EXPECT_TRUE(contains(sources["v4.moe_fp4"][0], "moeSplit<16, true>(")); // 16 one-byte codes per load
}

std::string emitError(const ProgramBuilder &p, size_t stepIndex) {
  try {
    emit(p.program, p.program.buckets[0], p.program.buckets[0].steps.at(stepIndex));
  } catch (const Error &error) {
    return error.what();
  }
  return "(no error)";
}

TEST(StateEmitters, MalformedStepsGetOneLineErrors) {
  ProgramBuilder p;
  v4rt::Bucket &b = p.bucket(5);
  addStateSteps(p, b, kTiny, DType::F32);
  auto index = [&](const std::string &op, int nth) {
    int seen = 0;
    for (size_t i = 0; i < b.steps.size(); ++i)
      if (p.program.kernels[b.steps[i].kernel].name == op && seen++ == nth)
        return i;
    throw Error("no " + op);
  };
  // Window cache with the wrong number of rows for the attention's window.
  p.program.buckets[0].steps[index("v4.attention", 0)].attrs[2] = intAttr("window", 16);
  EXPECT_NE(emitError(p, index("v4.attention", 0)).find("the window cache must be [window = 16"), std::string::npos)
      << emitError(p, index("v4.attention", 0));
  // fp4 scales of the wrong shape.
  p.program.buckets[0].steps[index("v4.moe_fp4", 0)].ins[4].shape = {8, 96, 3};
  EXPECT_NE(emitError(p, index("v4.moe_fp4", 0)).find("gate_up_scale must be [8, 96, 2], got [8, 96, 3]"),
            std::string::npos)
      << emitError(p, index("v4.moe_fp4", 0));
  // An indexer key wider than a thread's registers.
  v4rt::Step &indexer = p.program.buckets[0].steps[index("v4.indexer_topk", 0)];
  indexer.attrs[1] = intAttr("head_dim", 512);
  EXPECT_NE(emitError(p, index("v4.indexer_topk", 0)).find("head_dim 512 is over the 256"), std::string::npos);
  // A compress state of the wrong shape.
  v4rt::CacheSlot &state = p.program.caches[p.program.buckets[0].steps[index("v4.compress", 0)].ins[5].index];
  state.rows = 4;
  EXPECT_NE(emitError(p, index("v4.compress", 0)).find("the state cache must be [2 * rate, 2 * Cin] = [8, 128]"),
            std::string::npos)
      << emitError(p, index("v4.compress", 0));
  // inv_freq of the wrong length.
  v4rt::Step &ropeAppend = p.program.buckets[0].steps[index("v4.rope_cache_append", 0)];
  ropeAppend.attrs[2].floats.push_back(0.25);
  EXPECT_NE(emitError(p, index("v4.rope_cache_append", 0)).find("inv_freq has 3 values; rope_dim 4 needs 2"),
            std::string::npos);
  // Every message names the op and fits on one line.
  for (size_t i = 0; i < b.steps.size(); ++i) {
    const std::string message = emitError(p, i);
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

// A decode bucket of several sessions: every cache argument is a table of the
// rows' slot bases (KernelEmitter.h, "Entry ABI") that the entry hands to the
// template as v4cuda::RowSlots; arguments that are not caches keep their
// pointers, and the one-session decode bucket's entries are unchanged.
TEST(StateEmitters, BatchedDecodeTakesSlotTables) {
  ProgramBuilder p;
  v4rt::Bucket &decode = p.bucket(4);
  decode.kind = v4rt::BucketKind::Decode;
  decode.batch = 4;
  addStateSteps(p, decode, kTiny, DType::F32);
  const v4rt::Bucket &b = p.program.buckets[0];
  int cacheSteps = 0;
  for (const v4rt::Step &step : b.steps) {
    const EmittedKernel kernel = emit(p.program, b, step);
    bool takesCache = false;
    for (size_t i = 0; i < step.ins.size(); ++i) {
      const std::string type = std::string("const ") + cTypeName(step.ins[i].dtype);
      if (step.ins[i].kind == ArgKind::Cache) {
        takesCache = true;
        EXPECT_NE(kernel.source.find(type + "* const*"), std::string::npos) << kernel.source;
        const bool updated = std::any_of(step.outs.begin(), step.outs.end(), [&](const ArgRef &out) {
          return out.kind == ArgKind::Cache && out.index == step.ins[i].index;
        });
        if (!updated) // a slot the step updates is passed once, as the result's table
          EXPECT_NE(kernel.source.find("v4cuda::RowSlots<const float>{in" + std::to_string(i) + "}"),
                    std::string::npos)
              << kernel.source;
      }
    }
    for (size_t i = 0; i < step.outs.size(); ++i)
      if (step.outs[i].kind == ArgKind::Cache) {
        EXPECT_NE(kernel.source.find("float* const* out" + std::to_string(i)), std::string::npos) << kernel.source;
        EXPECT_NE(kernel.source.find("v4cuda::RowSlots<float>{out" + std::to_string(i) + "}"), std::string::npos)
            << kernel.source;
      } else {
        EXPECT_NE(kernel.source.find(std::string(cTypeName(step.outs[i].dtype)) + "* out" + std::to_string(i)),
                  std::string::npos)
            << kernel.source;
      }
    if (!takesCache)
      EXPECT_EQ(kernel.source.find("RowSlots"), std::string::npos) << kernel.source; // moe: row-wise
    cacheSteps += takesCache;
    const std::string op = p.program.kernels[step.kernel].name;
    if (op == "v4.cache_append") // one block per row: each into its own ring
      EXPECT_EQ(kernel.dims.grid[0], 4u);
  }
  EXPECT_GE(cacheSteps, 6);
  // The same steps in a one-session decode bucket take plain slot pointers.
  ProgramBuilder single;
  addStateSteps(single, single.bucket(1), kTiny, DType::F32);
  for (const v4rt::Step &step : single.program.buckets[0].steps)
    EXPECT_EQ(emit(single.program, single.program.buckets[0], step).source.find("RowSlots"), std::string::npos);
}

// nvcc's path, or "" (the compile tests then skip, saying why).
std::string nvccOrEmpty() {
  try {
    return findNvcc();
  } catch (const Error &) {
    return "";
  }
}

// Every instantiation: V4-Flash bf16 decode and prefill, tiny f32 / bf16,
// batched decode (slot tables) of 64 V4-Flash and 3 tiny sessions.
v4rt::Program compileProgram() {
  ProgramBuilder p;
  addStateSteps(p, p.bucket(1), kFlash, DType::BF16);
  addStateSteps(p, p.bucket(64), kFlash, DType::BF16);
  addStateSteps(p, p.bucket(5), kTiny, DType::F32);
  addStateSteps(p, p.bucket(1), kTiny, DType::BF16);
  for (auto [sessions, dims, dtype] : {std::tuple{64, kFlash, DType::BF16}, std::tuple{3, kTiny, DType::F32}}) {
    v4rt::Bucket &decode = p.bucket(sessions);
    decode.kind = v4rt::BucketKind::Decode;
    decode.batch = sessions;
    addStateSteps(p, decode, dims, dtype);
  }
  return p.program;
}

class StateEmittersNvcc : public ::testing::TestWithParam<const char *> {};

TEST_P(StateEmittersNvcc, CompilesEveryEntry) {
  const std::string nvcc = nvccOrEmpty();
  if (nvcc.empty())
    GTEST_SKIP() << "nvcc not found (set $V4C_NVCC or install the CUDA toolkit): not compiling the state kernels";
  const v4rt::Program program = compileProgram();
  const GeneratedModule module = generateModule(program);
  EXPECT_GE(module.kernels.size(), 40u);
  CudaCompileOptions options;
  options.nvcc = nvcc;
  // $V4C_STATE_TEST_KEEP=DIR keeps kernels.cu + headers there (to read nvcc's warnings).
  if (const char *keep = std::getenv("V4C_STATE_TEST_KEEP"))
    options.keepSourceDir = std::string(keep) + "/" + GetParam();
  const std::vector<uint8_t> cubin = compileCubin(module.translationUnit, GetParam(), options);
  ASSERT_GT(cubin.size(), 4u);
  EXPECT_EQ(cubin[0], 0x7F); // ELF
  EXPECT_EQ(cubin[1], 'E');
  // Every entry is in the cubin's symbol table.
  const std::string bytes(cubin.begin(), cubin.end());
  for (const EmittedKernel &kernel : module.kernels)
    EXPECT_NE(bytes.find(kernel.entry), std::string::npos) << kernel.entry;
}

INSTANTIATE_TEST_SUITE_P(Targets, StateEmittersNvcc, ::testing::Values("sm_90a", "sm_80"));

} // namespace
} // namespace v4c::cuda
