// Emitters of the state kernel family (include/v4cuda/Cache.cuh,
// Attention.cuh, Compressor.cuh, Indexer.cuh, Moe.cuh): the ops that read or
// write per-session caches, plus the routed experts. Each emitter checks the
// step against the op's contract (docs/ops.md; operand order as in
// runtime/cpu/CpuKernels.cpp), picks the launch geometry the header's
// comment describes, and instantiates the template. Entries that need
// device-side scratch (the "last block finishes" kernels) define it as
// `static __device__` arrays named after the entry.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "codegen/cuda/KernelEmitter.h"
#include "common/Error.h"

namespace v4c::cuda {
namespace {

using v4rt::CacheKind;
using v4rt::DType;

// Must match the headers: kCompressThreads, kMoeThreads, and the block size
// the attention / indexer / cache kernels are written for (a multiple of 32).
constexpr uint32_t kStateThreads = 256;
constexpr int64_t kAttentionWarps = kStateThreads / 32;
constexpr int64_t kCompressKTile = 128;        // ProjectedColumns::KT (GEMM path)
constexpr int64_t kIndexerMaxSplits = 128;     // blocks per token in decode
constexpr int64_t kIndexerSplitBudget = 256;   // tokens * splits
constexpr int64_t kMaxSharedBytes = 227 * 1024;
constexpr int64_t kGroupedSharedBudget = 160 * 1024; // moe prefill: token rows staged per block
constexpr int64_t kMoeSplitMaxTokens = 8;          // moe decode: a block per (token, slot, slice)
constexpr int64_t kMoeSpreadBlocks = 2 * 132;        // moe decode: blocks that stream the experts (2 per H100 SM)
constexpr int64_t kMoeMmaRows = 64, kMoeMmaSlice = 128, kMoeMmaCols = 128; // MoeMma.cuh
constexpr int64_t kMoeWgmmaAtomBytes = (kMoeMmaRows + 2 * kMoeMmaSlice) * 128; // MoeWgmma.cuh: 64-wide bf16 rows

std::string str(int64_t value) { return std::to_string(value); }

const char *dtypeTag(DType dtype) {
  switch (dtype) {
  case DType::F32: return "f32";
  case DType::BF16: return "bf16";
  case DType::F16: return "f16";
  case DType::F8E4M3: return "e4m3";
  case DType::I32: return "i32";
  case DType::I64: return "i64";
  case DType::U8: return "u8";
  }
  return "unknown";
}

bool isFloat(DType dtype) { return dtype == DType::F32 || dtype == DType::BF16 || dtype == DType::F16; }

const char *cacheKindName(CacheKind kind) {
  switch (kind) {
  case CacheKind::Window: return "window";
  case CacheKind::CompressState: return "compress_state";
  case CacheKind::Entries: return "entries";
  }
  return "unknown";
}

std::string shapeText(const std::vector<int64_t> &shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    text += (i ? ", " : "") + str(shape[i]);
  return text + "]";
}

uint32_t roundUpWarps(int64_t threads) {
  return static_cast<uint32_t>(std::clamp<int64_t>((threads + 31) / 32 * 32, 32, kStateThreads));
}

int64_t nextPowerOfTwo(int64_t value) {
  int64_t p = 1;
  while (p < value)
    p <<= 1;
  return p;
}

// Checks and source assembly for one step.
class StateStep {
public:
  explicit StateStep(const StepView &view) : view(view), op(view.opName()) {}

  const StepView &view;
  const std::string op;

  [[noreturn]] void fail(const std::string &message) const { throw Error(op + ": " + message); }
  void require(bool condition, const std::string &message) const {
    if (!condition)
      fail(message);
  }

  int64_t tokens() const { return view.bucketTokens(); }
  std::string in(int64_t operand) const { return "in" + str(view.operandIndex(operand)); }
  std::string out(int64_t result) const { return "out" + str(result); }
  bool has(int64_t operand) const { return view.hasIn(operand); }

  // A token-major [T, C] activation of the bucket; returns C.
  int64_t rows(const v4rt::ArgRef &arg, const std::string &what) const {
    require(arg.shape.size() == 2 && arg.shape[0] == tokens() && arg.shape[1] > 0,
            what + " must be [" + str(tokens()) + ", C] (the bucket's tokens), got " + shapeText(arg.shape));
    return arg.shape[1];
  }
  int64_t inRows(int64_t operand, const std::string &what) const { return rows(view.in(operand), what); }

  void requireFloat(const v4rt::ArgRef &arg, const std::string &what) const {
    require(isFloat(arg.dtype), what + " must be f32, bf16 or f16, got " + dtypeTag(arg.dtype));
  }
  void requireDtype(const v4rt::ArgRef &arg, DType dtype, const std::string &what) const {
    require(arg.dtype == dtype, what + " must be " + dtypeTag(dtype) + ", got " + dtypeTag(arg.dtype));
  }
  void requireShape(const v4rt::ArgRef &arg, const std::vector<int64_t> &shape, const std::string &what) const {
    require(arg.shape == shape, what + " must be " + shapeText(shape) + ", got " + shapeText(arg.shape));
  }
  void requirePositions(int64_t operand) const {
    const v4rt::ArgRef &arg = view.in(operand);
    requireDtype(arg, DType::I32, "positions");
    require(!arg.shape.empty() && arg.shape[0] == tokens(),
            "positions must have the bucket's " + str(tokens()) + " rows, got " + shapeText(arg.shape));
  }

  // The cache slot of operand `operand`, checked to be of `kind` with a
  // float element type.
  const v4rt::CacheSlot &cache(int64_t operand, CacheKind kind, const std::string &what) const {
    const v4rt::ArgRef &arg = view.in(operand);
    require(arg.kind == v4rt::ArgKind::Cache, what + " must be a cache slot (operand " + str(operand) + ")");
    const v4rt::CacheSlot &slot = view.cacheSlot(arg);
    require(slot.kind == kind, what + " must be a " + cacheKindName(kind) + " cache, got " +
                                   cacheKindName(slot.kind) + " slot '" + slot.name + "'");
    require(arg.dtype != DType::F8E4M3, what + " cache '" + slot.name +
                                            "' is fp8; the CUDA state kernels read f32/bf16 caches only "
                                            "(compile with --kv-cache bf16 or fp32)");
    requireFloat(arg, what);
    require(slot.width > 0, what + " cache '" + slot.name + "' has no width");
    return slot;
  }
  // The kernel argument of cache operand `operand` / cache result `result`:
  // the slot pointer, or in a batched decode bucket the table of the rows'
  // slots as v4cuda::RowSlots (KernelEmitter.h, "Entry ABI").
  bool perRow() const { return view.perRowCaches(); }
  std::string cacheIn(int64_t operand) const {
    if (!perRow())
      return in(operand);
    return std::string("v4cuda::RowSlots<const ") + cTypeName(view.in(operand).dtype) + ">{" + in(operand) + "}";
  }
  std::string cacheOut(int64_t result) const {
    if (!perRow())
      return out(result);
    return std::string("v4cuda::RowSlots<") + cTypeName(view.out(result).dtype) + ">{" + out(result) + "}";
  }
  // Result `result` is the new version of cache operand `operand` (same slot).
  void requireCacheResult(int64_t result, int64_t operand) const {
    const v4rt::ArgRef &o = view.out(result), &i = view.in(operand);
    require(o.kind == v4rt::ArgKind::Cache && o.index == i.index && o.dtype == i.dtype,
            "result " + str(result) + " must be the updated cache of operand " + str(operand));
  }

  // "<op>_<dtypes of ins>_to_<dtypes of outs>_T<tokens>_<detail>".
  std::string baseName(const std::string &detail) const {
    std::string name = "v4s_" + identifierFragment(op.substr(op.find('.') + 1));
    for (const v4rt::ArgRef &arg : view.step.ins)
      name += std::string("_") + dtypeTag(arg.dtype);
    name += "_to";
    for (const v4rt::ArgRef &arg : view.step.outs)
      name += std::string("_") + dtypeTag(arg.dtype);
    return name + "_T" + str(tokens()) + (detail.empty() ? "" : "_" + detail);
  }

  // `globals` and `body` may say "@E@" for the entry name (scratch names).
  // The entry is `base` plus a hash of the source, so equal names always
  // mean equal sources.
  EmittedKernel finish(const std::string &base, const std::string &globals, const std::string &body,
                       uint32_t threads, LaunchDims dims) const {
    const std::string text = globals + "extern \"C\" __global__ void __launch_bounds__(" + str(threads) +
                             ") @E@(" + view.paramList() + ") {\n" + body + "}\n";
    uint64_t hash = 1469598103934665603ull; // FNV-1a
    for (char c : text) {
      hash ^= static_cast<unsigned char>(c);
      hash *= 1099511628211ull;
    }
    char tag[12];
    std::snprintf(tag, sizeof tag, "%08llx", static_cast<unsigned long long>(hash & 0xffffffffull));
    EmittedKernel kernel;
    kernel.entry = base + "_" + tag;
    kernel.source = text;
    for (size_t at = kernel.source.find("@E@"); at != std::string::npos; at = kernel.source.find("@E@", at))
      kernel.source.replace(at, 3, kernel.entry);
    dims.block[0] = threads;
    dims.block[1] = dims.block[2] = 1;
    require(dims.sharedBytes <= kMaxSharedBytes,
            "needs " + str(dims.sharedBytes) + " bytes of shared memory per block (the limit is 227 KB)");
    kernel.dims = dims;
    return kernel;
  }

  // The rope attributes (head_dim, rope_dim, inv_freq) checked for a head of
  // `headDim` channels; returns the inv_freq table definition.
  std::string ropeTable(int64_t headDim) const {
    const int64_t ropeDim = view.attrInt("rope_dim");
    const std::vector<double> invFreq = view.attrFloats("inv_freq");
    require(headDim > 0 && headDim % 2 == 0, "head_dim " + str(headDim) + " must be even and positive");
    require(ropeDim >= 0 && ropeDim % 2 == 0 && ropeDim <= headDim,
            "rope_dim " + str(ropeDim) + " must be even and at most head_dim " + str(headDim));
    require(static_cast<int64_t>(invFreq.size()) == ropeDim / 2,
            "inv_freq has " + str(invFreq.size()) + " values; rope_dim " + str(ropeDim) + " needs " + str(ropeDim / 2));
    return deviceFloatTable("@E@_inv_freq", invFreq);
  }
};

std::string floatArg(double value) { return "static_cast<float>(" + floatLiteral(value) + ")"; }

// ---- window ring ------------------------------------------------------------

// v4.cache_append %window, %kv, %positions -> window'
EmittedKernel emitCacheAppend(const StepView &view) {
  StateStep s(view);
  const v4rt::CacheSlot &slot = s.cache(0, CacheKind::Window, "window");
  const int64_t width = s.inRows(1, "kv");
  s.requireFloat(view.in(1), "kv");
  s.require(width == slot.width, "kv has " + str(width) + " channels but the window cache rows have " + str(slot.width));
  s.require(slot.rows > 0, "window cache '" + slot.name + "' has no rows");
  s.requirePositions(2);
  s.requireCacheResult(0, 0);
  LaunchDims dims; // a chunk keeps its last W tokens; batched rows each go to their own ring
  dims.grid[0] = static_cast<uint32_t>(s.perRow() ? s.tokens() : std::min(s.tokens(), slot.rows));
  const std::string body = "  v4cuda::cacheAppendRows(" + s.cacheOut(0) + ", " + s.in(1) + ", " + s.in(2) + ", " +
                           str(slot.rows) + ", " + str(width) + ", dyn);\n";
  return s.finish(s.baseName("W" + str(slot.rows) + "_C" + str(width)), "", body, roundUpWarps(width), dims);
}

// v4.rope_cache_append %window, %kv, %positions -> roped, window'
EmittedKernel emitRopeCacheAppend(const StepView &view) {
  StateStep s(view);
  const v4rt::CacheSlot &slot = s.cache(0, CacheKind::Window, "window");
  const int64_t width = s.inRows(1, "kv"), headDim = view.attrInt("head_dim");
  s.requireFloat(view.in(1), "kv");
  s.requireFloat(view.out(0), "roped");
  s.require(s.rows(view.out(0), "roped") == width, "roped must have kv's " + str(width) + " channels");
  s.require(width == slot.width, "kv has " + str(width) + " channels but the window cache rows have " + str(slot.width));
  s.require(slot.rows > 0, "window cache '" + slot.name + "' has no rows");
  const std::string table = s.ropeTable(headDim);
  s.require(width % headDim == 0, "kv's " + str(width) + " channels are not whole heads of head_dim " + str(headDim));
  s.requirePositions(2);
  s.requireCacheResult(1, 0);
  LaunchDims dims;
  dims.grid[0] = static_cast<uint32_t>(s.tokens());
  const std::string body = "  v4cuda::ropeCacheAppendRows(" + s.in(1) + ", " + s.in(2) + ", " + s.out(0) + ", " +
                           s.cacheOut(1) + ", @E@_inv_freq, " + str(slot.rows) + ", " + str(width) + ", " +
                           str(headDim) + ", " + str(view.attrInt("rope_dim")) + ", " +
                           floatLiteral(view.attrFloat("scaling")) + ", " +
                           (view.attrBool("inverse") ? "true" : "false") + ", dyn);\n";
  return s.finish(s.baseName("W" + str(slot.rows) + "_C" + str(width) + "_hd" + str(headDim)), table, body,
                  roundUpWarps(width / 2), dims);
}

// ---- single-token decode (AttentionDecode.cuh, IndexerDecode.cuh) ------------
// A decode bucket of one session (one token, plain slot pointers) splits each
// token's candidates / keys over many blocks, so 1M tokens of context are read
// by the whole GPU; the last block of a split group combines (scratch below).

constexpr int64_t kDecodeBlocks = 264;        // two blocks per SM of an H100 (132 SMs)
constexpr int64_t kAttentionDecodeMaxSplits = 64;
constexpr int64_t kIndexerDecodeGroup = 16;   // split lists per first-level merge
constexpr int64_t kIndexerDecodeKeysPerThread = 4; // IndexerDecode.cuh

bool singleTokenDecode(const StateStep &s) { return s.tokens() == 1 && !s.perRow(); }

// v4.attention of one token: S splits per head group (partials + combine with the sink).
EmittedKernel emitAttentionDecode(const StateStep &s, int64_t nh, int64_t hd, int64_t W, int64_t rate, int64_t group,
                                  int64_t topkWidth, const std::string &entries, const std::string &topk) {
  const int64_t groups = nh / group;
  const int64_t splits = std::clamp<int64_t>((2 * kDecodeBlocks + groups - 1) / groups, 1, kAttentionDecodeMaxSplits);
  const int64_t partialFloats = groups * splits * group * (hd + 2);
  const std::string globals = "static __device__ float @E@_partials[" + str(partialFloats) + "];\n" +
                              "static __device__ unsigned int @E@_done[" + str(groups) + "];\n";
  LaunchDims dims;
  dims.grid[0] = static_cast<uint32_t>(groups * splits);
  dims.sharedBytes = static_cast<uint32_t>((kAttentionWarps * hd + 2 * kAttentionWarps + splits) * 4);
  const std::string body = "  const v4cuda::AttentionShape shape{" + str(nh) + ", " + str(W) + ", " + str(rate) +
                           ", " + str(topkWidth) + ", " + floatArg(s.view.attrFloat("scale")) + "};\n" +
                           "  v4cuda::attentionDecodeSplit<" + str(hd) + ", " + str(group) + ">(" + s.in(0) + ", " +
                           s.in(1) + ", " + s.in(2) + ", " + s.in(3) + ", " + s.in(4) + ", " + entries + ", " + topk +
                           ", " + s.out(0) + ", shape, @E@_partials, @E@_done, dyn);\n";
  return s.finish(s.baseName("nh" + str(nh) + "_hd" + str(hd) + "_W" + str(W) + "_m" + str(rate) + "_K" +
                             str(topkWidth) + "_split" + str(splits)),
                  globals, body, kStateThreads, dims);
}

// IndexerDecodeLayout::bytes() of IndexerDecode.cuh (the same arithmetic).
int64_t indexerDecodeSharedBytes(int64_t H, int64_t dI, int64_t tileKeys, int64_t K, int64_t G) {
  auto align4 = [](int64_t words) { return (words + 3) / 4 * 4; };
  const int64_t staging = align4(H * (dI + 1)), scoring = align4(dI * tileKeys) + align4(H * tileKeys),
                merging = 2 * align4(G * K);
  return (align4(dI * H) + align4(H) + std::max({staging, scoring, merging}) + 4 * align4(tileKeys) + 4 * align4(K) +
          align4(G)) *
         4;
}

// Dynamic shared memory one block may opt into on the target (sm_89: 99 KB,
// sm_80: 163 KB, Hopper and later: 227 KB).
int64_t targetSharedLimit(const std::string &target) {
  if (target == "sm_89")
    return 99 * 1024;
  if (target == "sm_80")
    return 163 * 1024;
  return kMaxSharedBytes;
}

// Heads per thread of the indexer's decode tile (0: the shape does not fit it).
int64_t indexerDecodeHeadsPerThread(int64_t H) {
  for (int64_t ht : {8, 4, 2, 1})
    if (H % ht == 0 && H / ht <= static_cast<int64_t>(kStateThreads))
      return ht;
  return 0;
}

// v4.indexer_topk of one token: S splits scoring tiles of keys, two levels of
// "last block" merges. Returns false (caller emits the chunk kernel) when the
// tile does not fit in the target's shared memory.
bool emitIndexerDecode(const StateStep &s, int64_t H, int64_t dI, int64_t K, int64_t m, EmittedKernel &kernel) {
  const int64_t ht = indexerDecodeHeadsPerThread(H);
  if (ht == 0)
    return false;
  const int64_t tileKeys = kIndexerDecodeKeysPerThread * (kStateThreads / (H / ht));
  const int64_t splits = kDecodeBlocks, group = kIndexerDecodeGroup, groups = (splits + group - 1) / group;
  const int64_t shared = indexerDecodeSharedBytes(H, dI, tileKeys, K, group);
  if (shared > targetSharedLimit(s.view.program.target))
    return false;
  const std::string globals =
      "static __device__ float @E@_split_score[" + str(splits * K) + "];\n" + "static __device__ int @E@_split_index[" +
      str(splits * K) + "];\n" + "static __device__ int @E@_split_count[" + str(splits) + "];\n" +
      "static __device__ float @E@_group_score[" + str(groups * K) + "];\n" + "static __device__ int @E@_group_index[" +
      str(groups * K) + "];\n" + "static __device__ int @E@_group_count[" + str(groups) + "];\n" +
      "static __device__ unsigned int @E@_group_done[" + str(groups) + "];\n" +
      "static __device__ unsigned int @E@_top_done;\n";
  const std::string body =
      "  const v4cuda::IndexerShape shape{" + str(H) + ", " + str(K) + ", " + str(m) + ", " +
      floatArg(s.view.attrFloat("weight_scale")) + ", " + floatArg(s.view.attrFloat("score_scale")) + "};\n" +
      "  const v4cuda::IndexerDecodeScratch scratch{@E@_split_score, @E@_split_index, @E@_split_count, "
      "@E@_group_score, @E@_group_index, @E@_group_count, @E@_group_done, &@E@_top_done};\n" +
      "  v4cuda::indexerTopKDecode<" + str(dI) + ", " + str(ht) + ">(" + s.in(0) + ", " + s.in(1) + ", " + s.in(2) +
      ", " + s.in(3) + ", " + s.out(0) + ", shape, " + str(group) + ", scratch, dyn);\n";
  LaunchDims dims;
  dims.grid[0] = static_cast<uint32_t>(splits);
  dims.sharedBytes = static_cast<uint32_t>(shared);
  kernel = s.finish(s.baseName("H" + str(H) + "_d" + str(dI) + "_K" + str(K) + "_m" + str(m) + "_decode" +
                               str(splits) + "x" + str(tileKeys)),
                    globals, body, kStateThreads, dims);
  return true;
}

// ---- attention --------------------------------------------------------------

// v4.attention %q, %kv, %sinks, %positions, %window[, %entries][, %topk]
EmittedKernel emitAttention(const StepView &view) {
  StateStep s(view);
  const int64_t nh = view.attrInt("num_heads"), hd = view.attrInt("head_dim");
  const int64_t W = view.attrInt("window"), rate = view.attrInt("rate");
  s.require(nh > 0 && hd > 0, "num_heads and head_dim must be positive");
  s.require(hd <= 1024, "head_dim " + str(hd) + " is over the 1024 channels a lane-register row supports");
  s.require(s.inRows(0, "q") == nh * hd, "q must have num_heads * head_dim = " + str(nh * hd) + " channels");
  s.require(s.inRows(1, "kv") == hd, "kv must have head_dim = " + str(hd) + " channels");
  s.requireShape(view.in(2), {nh}, "sinks");
  for (int64_t operand : {0, 1, 2})
    s.requireFloat(view.in(operand), "operand " + str(operand));
  s.requirePositions(3);
  const v4rt::CacheSlot &window = s.cache(4, CacheKind::Window, "window");
  s.require(window.rows == W && window.width == hd,
            "the window cache must be [window = " + str(W) + ", head_dim = " + str(hd) + "], got [" +
                str(window.rows) + ", " + str(window.width) + "]");
  s.require(rate >= 0, "rate must be >= 0 (0: sliding only)");
  std::string entries = "static_cast<const float *>(nullptr)", topk = "static_cast<const int32_t *>(nullptr)";
  int64_t topkWidth = 0;
  if (s.has(5)) {
    const v4rt::CacheSlot &slot = s.cache(5, CacheKind::Entries, "entries");
    s.require(slot.width == hd, "entries rows must have head_dim = " + str(hd) + " channels, got " + str(slot.width));
    entries = s.cacheIn(5);
  }
  if (s.has(6)) {
    s.requireDtype(view.in(6), DType::I32, "topk");
    topkWidth = s.inRows(6, "topk");
    topk = s.in(6);
  }
  s.require(s.rows(view.out(0), "the result") == nh * hd, "the result must have num_heads * head_dim channels");
  s.requireFloat(view.out(0), "the result");
  // Heads per block: candidates are loaded once per group; the group's q and
  // accumulators live in registers (HG * ceil(hd / 32) floats each).
  const int64_t perLane = (hd + 31) / 32;
  int64_t group = 1;
  for (int64_t g : {4, 2})
    if (nh % g == 0 && g * perLane <= 32) {
      group = g;
      break;
    }
  if (singleTokenDecode(s)) // one session's next token: split over its candidates
    return emitAttentionDecode(s, nh, hd, W, rate, group, topkWidth, entries, topk);
  const int64_t blocks = s.tokens() * (nh / group);
  s.require(blocks <= 0x7FFFFFFF, "too many (token, head group) blocks");
  LaunchDims dims;
  dims.grid[0] = static_cast<uint32_t>(blocks);
  dims.sharedBytes = static_cast<uint32_t>((kAttentionWarps * hd + 2 * kAttentionWarps) * 4);
  const std::string body = "  const v4cuda::AttentionShape shape{" + str(nh) + ", " + str(W) + ", " + str(rate) +
                           ", " + str(topkWidth) + ", " + floatArg(view.attrFloat("scale")) + "};\n" +
                           "  v4cuda::attentionHeads<" + str(hd) + ", " + str(group) + ">(" + s.in(0) + ", " +
                           s.in(1) + ", " + s.in(2) + ", " + s.in(3) + ", " + s.cacheIn(4) + ", " + entries + ", " +
                           topk + ", " + s.out(0) + ", shape, dyn);\n";
  return s.finish(s.baseName("nh" + str(nh) + "_hd" + str(hd) + "_W" + str(W) + "_m" + str(rate) + "_K" +
                             str(topkWidth)),
                  "", body, kStateThreads, dims);
}

// ---- compressor -------------------------------------------------------------

// v4.compress %kv, %gate, %position_bias, %norm_w, %positions, %state, %entries
// v4.linear_compress %h, %kv_w, %gate_w, then the same from %position_bias on.
EmittedKernel emitCompressor(const StepView &view, bool fused) {
  StateStep s(view);
  const int64_t m = view.attrInt("rate"), C = view.attrInt("head_dim");
  const bool overlap = view.attrBool("overlap");
  const int64_t Cin = overlap ? 2 * C : C;
  const int64_t first = fused ? 3 : 2; // position_bias; then norm_w, positions, state, entries
  s.require(m > 0 && C > 0, "rate and head_dim must be positive");
  int64_t D = 0;
  std::string source;
  const int64_t perBlock = std::max<int64_t>(1, C / 128); // entry channels per block (CPB)
  int64_t tileTokens = 32;                                  // TT
  if (fused) {
    D = s.inRows(0, "h");
    s.requireFloat(view.in(0), "h");
    for (int64_t operand : {1, 2}) {
      s.requireShape(view.in(operand), {Cin, D}, operand == 1 ? "kv_w" : "gate_w");
      s.requireFloat(view.in(operand), operand == 1 ? "kv_w" : "gate_w");
    }
    tileTokens = s.tokens() == 1 ? 1 : std::min<int64_t>(16, s.tokens());
  } else {
    s.require(s.inRows(0, "kv") == Cin && s.inRows(1, "gate") == Cin,
              "kv and gate must have " + str(Cin) + " channels (" + (overlap ? "2 * head_dim, overlap" : "head_dim") + ")");
    s.requireFloat(view.in(0), "kv");
    s.requireFloat(view.in(1), "gate");
  }
  s.requireShape(view.in(first), {m, Cin}, "position_bias");
  s.requireShape(view.in(first + 1), {C}, "norm_w");
  s.requireFloat(view.in(first), "position_bias");
  s.requireFloat(view.in(first + 1), "norm_w");
  s.requirePositions(first + 2);
  const v4rt::CacheSlot &state = s.cache(first + 3, CacheKind::CompressState, "state");
  s.require(state.rows == 2 * m && state.width == 2 * Cin,
            "the state cache must be [2 * rate, 2 * Cin] = [" + str(2 * m) + ", " + str(2 * Cin) + "], got [" +
                str(state.rows) + ", " + str(state.width) + "]");
  const v4rt::CacheSlot &entries = s.cache(first + 4, CacheKind::Entries, "entries");
  s.require(entries.width == C, "entries rows must have head_dim = " + str(C) + " channels, got " + str(entries.width));
  s.requireCacheResult(0, first + 3);
  s.requireCacheResult(1, first + 4);
  const std::string table = s.ropeTable(C);

  const int64_t components = overlap ? 4 : 2, rowsPerBlock = perBlock * components;
  int64_t sharedFloats = 1;
  if (fused)
    sharedFloats = tileTokens * rowsPerBlock + (tileTokens == 1 ? 0 : (tileTokens + rowsPerBlock) * (kCompressKTile + 1));
  // Windows one chunk can complete; batched rows: at most one per row.
  const int64_t maxWindows = s.perRow() ? s.tokens() : (s.tokens() + m - 1) / m + 1;
  const std::string ov = overlap ? "true" : "false";
  const std::string globals = table + "static __device__ float @E@_pooled[" + str(maxWindows * C) + "];\n" +
                              "static __device__ unsigned int @E@_done;\n";
  if (fused)
    source = "  const v4cuda::state::ProjectedColumns<" + ov + ", " + str(perBlock) + ", " + str(tileTokens) + ", " +
             cTypeName(view.in(0).dtype) + ", " + cTypeName(view.in(1).dtype) + ", " + cTypeName(view.in(2).dtype) +
             "> source{" + s.in(0) + ", " + s.in(1) + ", " + s.in(2) + "};\n";
  else
    source = "  const v4cuda::state::LoadedColumns<" + ov + ", " + cTypeName(view.in(0).dtype) + ", " +
             cTypeName(view.in(1).dtype) + "> source{" + s.in(0) + ", " + s.in(1) + "};\n";
  const std::string body =
      source + "  const v4cuda::CompressShape shape{" + str(m) + ", " + str(C) + ", " + str(D) + ", " +
      str(view.attrInt("rope_dim")) + ", " + floatLiteral(view.attrFloat("scaling")) + ", " +
      floatLiteral(view.attrFloat("eps")) + "};\n" + "  v4cuda::compressChunk<" + ov + ", " + str(perBlock) + ", " +
      str(tileTokens) + ">(source, " + s.in(first) + ", " + s.in(first + 1) + ", " + s.in(first + 2) + ", " +
      s.cacheOut(0) + ", " + s.cacheOut(1) + ", @E@_inv_freq, shape, @E@_pooled, &@E@_done, dyn);\n";
  LaunchDims dims;
  dims.grid[0] = static_cast<uint32_t>((C + perBlock - 1) / perBlock);
  dims.sharedBytes = static_cast<uint32_t>(sharedFloats * 4);
  return s.finish(s.baseName("m" + str(m) + "_C" + str(C) + (overlap ? "_csa" : "_hca") + (fused ? "_D" + str(D) : "")),
                  globals, body, kStateThreads, dims);
}

EmittedKernel emitCompress(const StepView &view) { return emitCompressor(view, /*fused=*/false); }
EmittedKernel emitLinearCompress(const StepView &view) { return emitCompressor(view, /*fused=*/true); }

// ---- indexer ----------------------------------------------------------------

// v4.indexer_topk %q, %weights, %positions, %keys -> [T, K] i32
EmittedKernel emitIndexerTopK(const StepView &view) {
  StateStep s(view);
  const int64_t H = view.attrInt("heads"), dI = view.attrInt("head_dim"), K = view.attrInt("top_k");
  const int64_t m = view.attrInt("rate");
  s.require(H > 0 && dI > 0 && K > 0 && m > 0, "heads, head_dim, top_k and rate must be positive");
  s.require(dI <= 256, "head_dim " + str(dI) + " is over the 256 channels a key held in registers supports");
  s.require(s.inRows(0, "q") == H * dI, "q must have heads * head_dim = " + str(H * dI) + " channels");
  s.require(s.inRows(1, "weights") == H, "weights must have heads = " + str(H) + " channels");
  s.requireFloat(view.in(0), "q");
  s.requireFloat(view.in(1), "weights");
  s.requirePositions(2);
  const v4rt::CacheSlot &keys = s.cache(3, CacheKind::Entries, "keys");
  s.require(keys.width == dI, "keys rows must have head_dim = " + str(dI) + " channels, got " + str(keys.width));
  s.requireDtype(view.out(0), DType::I32, "the result");
  s.require(s.rows(view.out(0), "the result") == K, "the result must have top_k = " + str(K) + " columns");

  EmittedKernel decode;
  if (singleTokenDecode(s) && emitIndexerDecode(s, H, dI, K, m, decode)) // one session's next token
    return decode;
  const int64_t T = s.tokens();
  const int64_t splits = std::clamp<int64_t>(kIndexerSplitBudget / T, 1, kIndexerMaxSplits);
  const int64_t buffer = nextPowerOfTwo(K + kStateThreads);
  std::string globals, scratch;
  if (splits > 1) {
    const int64_t pairs = T * splits * K;
    globals = "static __device__ float @E@_score[" + str(pairs) + "];\n" + "static __device__ int @E@_index[" +
              str(pairs) + "];\n" + "static __device__ unsigned int @E@_done[" + str(T) + "];\n";
    scratch = "@E@_score, @E@_index, @E@_done";
  } else {
    scratch = "static_cast<float *>(nullptr), static_cast<int *>(nullptr), static_cast<unsigned int *>(nullptr)";
  }
  const std::string body = "  const v4cuda::IndexerShape shape{" + str(H) + ", " + str(K) + ", " + str(m) + ", " +
                           floatArg(view.attrFloat("weight_scale")) + ", " +
                           floatArg(view.attrFloat("score_scale")) + "};\n" + "  v4cuda::indexerTopK<" + str(dI) +
                           ", " + str(buffer) + ">(" + s.in(0) + ", " + s.in(1) + ", " + s.in(2) + ", " + s.cacheIn(3) +
                           ", " + s.out(0) + ", shape, " + scratch + ", dyn);\n";
  LaunchDims dims;
  dims.grid[0] = static_cast<uint32_t>(T);
  dims.grid[1] = static_cast<uint32_t>(splits);
  dims.sharedBytes = static_cast<uint32_t>((H * dI + H) * 4 + buffer * 8 + 16);
  return s.finish(s.baseName("H" + str(H) + "_d" + str(dI) + "_K" + str(K) + "_m" + str(m) + "_S" + str(splits)),
                  globals, body, kStateThreads, dims);
}

// ---- mixture of experts -------------------------------------------------------

// v4.moe %h, %weights, %experts, %gate_up, %down
// v4.moe_fp4 %h, %weights, %experts, %gate_up, %gate_up_scale, %down, %down_scale {block = [1, bc]}
EmittedKernel emitExperts(const StepView &view, bool fp4) {
  StateStep s(view);
  const int64_t D = s.inRows(0, "h"), k = s.inRows(1, "weights");
  s.requireFloat(view.in(0), "h");
  s.requireFloat(view.in(1), "weights");
  s.require(s.inRows(2, "experts") == k, "experts must have the weights' " + str(k) + " columns");
  s.requireDtype(view.in(2), DType::I32, "experts");
  const v4rt::ArgRef &gateUp = view.in(3), &down = view.in(fp4 ? 5 : 4);
  s.require(gateUp.shape.size() == 3 && gateUp.shape[1] % 2 == 0 && gateUp.shape[2] == D,
            "gate_up must be [E, 2I, D = " + str(D) + "], got " + shapeText(gateUp.shape));
  const int64_t E = gateUp.shape[0], I = gateUp.shape[1] / 2;
  s.require(E > 0 && I > 0, "gate_up has no experts or no rows");
  s.requireShape(down, {E, D, I}, "down");
  s.require(s.rows(view.out(0), "the result") == D, "the result must have D = " + str(D) + " channels");
  s.requireFloat(view.out(0), "the result");
  int64_t blockCols = 0;
  if (fp4) {
    const std::vector<int64_t> block = view.attrInts("block");
    s.require(block.size() == 2 && block[0] == 1 && block[1] > 0,
              "block must be [1, cols] (one ue8m0 scale per 1 x cols of an expert row)");
    blockCols = block[1];
    s.requireDtype(gateUp, DType::U8, "gate_up codes");
    s.requireDtype(down, DType::U8, "down codes");
    s.requireDtype(view.in(4), DType::U8, "gate_up_scale");
    s.requireDtype(view.in(6), DType::U8, "down_scale");
    s.requireShape(view.in(4), {E, 2 * I, (D + blockCols - 1) / blockCols}, "gate_up_scale");
    s.requireShape(view.in(6), {E, D, (I + blockCols - 1) / blockCols}, "down_scale");
  } else {
    s.requireFloat(gateUp, "gate_up");
    s.requireFloat(down, "down");
  }
  // Columns per load: 16 bytes of weights where every row start, slice and
  // column offset is a multiple of V (Moe.cuh warpRowDot / threadRowDot).
  const int64_t T = s.tokens();
  const int64_t slice = I % 128 == 0 ? 128 : I; // rows of I per block: whole e4m3 groups of 128
  const int64_t weightBytes = fp4 ? 1 : static_cast<int64_t>(v4rt::dtypeSize(gateUp.dtype));
  int64_t V = 1;
  for (int64_t v : {16, 8, 4})
    if (v * weightBytes <= 16 && D % v == 0 && I % v == 0 && slice % v == 0 &&
        v * static_cast<int64_t>(v4rt::dtypeSize(down.dtype)) <= 16) {
      V = v;
      break;
    }
  std::string rows;
  if (fp4)
    rows = "  const v4cuda::state::Fp4ExpertRows gateUp{" + s.in(3) + ", " + s.in(4) + ", " + str(D) + ", " +
           str(blockCols) + "};\n  const v4cuda::state::Fp4ExpertRows down{" + s.in(5) + ", " + s.in(6) + ", " +
           str(I) + ", " + str(blockCols) + "};\n";
  else
    rows = "  const v4cuda::state::DenseExpertRows<" + std::string(cTypeName(gateUp.dtype)) + "> gateUp{" + s.in(3) +
           ", " + str(D) + "};\n  const v4cuda::state::DenseExpertRows<" + cTypeName(down.dtype) + "> down{" +
           s.in(4) + ", " + str(I) + "};\n";
  rows += "  const v4cuda::MoeShape shape{" + str(E) + ", " + str(k) + ", " + str(D) + ", " + str(I) + ", " +
          floatArg(view.attrFloat("swiglu_limit")) + "};\n";
  const std::string call = std::string("<") + str(V) + ", " + (fp4 ? "true" : "false") + ">(" + s.in(0) + ", " +
                           s.in(1) + ", " + s.in(2) + ", gateUp, down, " + s.out(0) + ", shape, ";
  LaunchDims dims;
  std::string globals, body, detail = "E" + str(E) + "_k" + str(k) + "_D" + str(D) + "_I" + str(I) + "_V" + str(V);
  uint32_t threads = kStateThreads;
  // Tensor cores (MoeMma.cuh; MoeWgmma.cuh with --tensor-cores wgmma) where
  // the operands are exact in bf16: fp4 experts (quantized operands), or bf16
  // h with bf16 experts.
  const bool mma = T > kMoeSplitMaxTokens && I % kMoeMmaSlice == 0 && D % 32 == 0 &&
                   (fp4 || (view.in(0).dtype == DType::BF16 && gateUp.dtype == DType::BF16 &&
                            down.dtype == DType::BF16));
  if (T <= kMoeSplitMaxTokens) {
    // Decode: one block per (token, slot, slice), no id scan. Without fp4 the
    // slice shrinks (down to 32 rows) until the weights spread over
    // >= kMoeSpreadBlocks blocks; fp4 keeps whole e4m3 groups of 128 rows and
    // streams with more warps instead.
    int64_t splitSlice = slice;
    if (!fp4)
      while (splitSlice % 64 == 0 && splitSlice / 2 >= V && T * k * (I / splitSlice) < kMoeSpreadBlocks)
        splitSlice /= 2;
    if (fp4)
      threads = 512;
    globals = "static __device__ float @E@_acc[" + str(T * D) + "];\n" + "static __device__ unsigned int @E@_done[" +
              str(T) + "];\n";
    body = rows + "  v4cuda::moeSplit" + call + str(splitSlice) + ", @E@_acc, @E@_done, dyn);\n";
    dims.grid[0] = static_cast<uint32_t>(T * k * (I / splitSlice));
    dims.sharedBytes = static_cast<uint32_t>((D + splitSlice) * 4);
    detail += "_split" + str(splitSlice);
  } else if (mma) {
    // Prefill on tensor cores: routing, gate/up and down work items of one
    // launch (MoeMma.cuh), scratch sized for the bucket's tokens.
    const int64_t pairs = T * k;
    const int64_t maxTiles = std::min((pairs + kMoeMmaRows - 1) / kMoeMmaRows + E, pairs);
    const int64_t blocks = 1 + maxTiles * (I / kMoeMmaSlice + (D + kMoeMmaCols - 1) / kMoeMmaCols);
    // wgmma (sm_90a, MoeWgmma.cuh moeWgmmaTileBytes): 1024 bytes of alignment
    // slack and a ring of swizzled operand stages of 64 K columns, 4 with
    // bf16 experts (cp.async), 2 with fp4; wmma: the padded tiles and the f32 staging.
    const bool wgmma = view.wgmma();
    const int64_t stages = fp4 ? 2 : 4;
    s.require(!wgmma || view.program.target == "sm_90a",
              "the wgmma MoE GEMM needs --target sm_90a, not " + view.program.target);
    const int64_t tileBytes = wgmma ? 1024 + stages * kMoeWgmmaAtomBytes
                                    : (3 * kMoeMmaRows + 2 * kMoeMmaSlice) * (32 + 8) * 2 +
                                          kMoeMmaRows * (2 * kMoeMmaSlice + 4) * 4;
    const int64_t shared = tileBytes + kMoeMmaRows * ((D + 127) / 128) + 3 * kMoeMmaRows * 4; // + row tables
    const std::string variant = wgmma ? "Wgmma" : "Mma";
    globals = "static __device__ int @E@_order[" + str(pairs) + "];\n" + "static __device__ int @E@_tile_expert[" +
              str(maxTiles) + "];\n" + "static __device__ int @E@_tile_begin[" + str(maxTiles) + "];\n" +
              "static __device__ int @E@_tile_count[" + str(maxTiles) + "];\n" + "static __device__ __align__(16) float @E@_act[" +
              str(pairs * I) + "];\n" + "static __device__ float @E@_acc[" + str(T * D) + "];\n" +
              "static __device__ unsigned int @E@_token_done[" + str(T) + "];\n" +
              "static __device__ unsigned int @E@_tile_done[" + str(maxTiles) + "];\n" +
              "static __device__ unsigned int @E@_control[4];\n";
    body = rows + "  static_assert(v4cuda::kMoeMmaThreads == " + str(kStateThreads) +
           " && v4cuda::moeMmaMaxTiles(" + str(T) + ", " + str(k) + ", " + str(E) + ") == " + str(maxTiles) +
           " && v4cuda::moeMmaBlocks(" + str(T) + ", " + str(k) + ", " + str(E) + ", " + str(D) + ", " + str(I) +
           ") == " + str(blocks) + " && v4cuda::moe" + variant + "SharedBytes(" + str(D) +
           (wgmma ? std::string(", ") + (fp4 ? "true" : "false") : std::string()) + ") == " + str(shared) +
           ", \"StateEmitters.cpp and Moe" + variant + ".cuh disagree on the MoE geometry\");\n" +
           "  const v4cuda::MoeMmaScratch scratch{@E@_order, @E@_tile_expert, @E@_tile_begin, @E@_tile_count, "
           "@E@_act, @E@_acc, @E@_token_done, @E@_tile_done, @E@_control};\n" +
           "  v4cuda::moeGrouped" + variant + "<" + (fp4 ? "true" : "false") + ">(" + s.in(0) + ", " + s.in(1) +
           ", " + s.in(2) + ", gateUp, down, " + s.out(0) + ", shape, " + str(maxTiles) + ", scratch, dyn);\n";
    dims.grid[0] = static_cast<uint32_t>(blocks);
    dims.sharedBytes = static_cast<uint32_t>(shared);
    detail += (wgmma ? "_wgmma" : "_mma") + str(kMoeMmaRows);
  } else {
    // Prefill on CUDA cores (f32): one block per (expert, slice), TOK tokens
    // per weight load, as many as fit in kGroupedSharedBudget (over 48 KB:
    // the runtime raises the function's limit).
    const int64_t slices = I / slice;
    globals = "static __device__ float @E@_acc[" + str(T * D) + "];\n" + "static __device__ unsigned int @E@_done[" +
              str(T) + "];\n";
    int64_t group = 8;
    while (group > 1 && (group * (D + slice) + kStateThreads + 1 + group) * 4 > kGroupedSharedBudget)
      group /= 2;
    const std::string groupedCall = std::string("<") + str(V) + ", " + (fp4 ? "true" : "false") + ", " +
                                    str(group) + ">(" + s.in(0) + ", " + s.in(1) + ", " + s.in(2) + ", gateUp, down, " +
                                    s.out(0) + ", shape, ";
    body = rows + "  v4cuda::moeGrouped" + groupedCall + str(slice) + ", @E@_acc, @E@_done, dyn);\n";
    dims.grid[0] = static_cast<uint32_t>(E * slices);
    dims.sharedBytes = static_cast<uint32_t>((group * (D + slice) + kStateThreads + 1 + group) * 4);
    detail += "_grouped" + str(slice) + "x" + str(group);
  }
  if (fp4)
    detail += "_bc" + str(blockCols);
  return s.finish(s.baseName(detail), globals, body, threads, dims);
}

EmittedKernel emitMoe(const StepView &view) { return emitExperts(view, /*fp4=*/false); }
EmittedKernel emitMoeFp4(const StepView &view) { return emitExperts(view, /*fp4=*/true); }

} // namespace

std::vector<NamedEmitter> stateEmitters() {
  return {
      {"v4.cache_append", emitCacheAppend},
      {"v4.rope_cache_append", emitRopeCacheAppend},
      {"v4.attention", emitAttention},
      {"v4.compress", emitCompress},
      {"v4.linear_compress", emitLinearCompress},
      {"v4.indexer_topk", emitIndexerTopK},
      {"v4.moe", emitMoe},
      {"v4.moe_fp4", emitMoeFp4},
  };
}

} // namespace v4c::cuda
