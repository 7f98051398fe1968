// Emitters of the dense kernel family (include/v4cuda/Dense.cuh, DenseLinear.cuh,
// HyperConnection.cuh, Router.cuh, Quant.cuh): each checks the step's shapes,
// names its entry after everything baked into it, and instantiates the
// template with the step's dtypes, static shapes and attributes. Launch
// geometry mirrors the comments in those headers.
#include <algorithm>
#include <cstdio>

#include "codegen/cuda/CudaCodegen.h"
#include "codegen/cuda/KernelEmitter.h"
#include "common/Error.h"

namespace v4c::cuda {
namespace {

// Must match the constants of the headers.
constexpr uint32_t kElementwiseThreads = 256; // Dense.cuh, HyperConnection.cuh (expand/post)
constexpr uint32_t kMatmulThreads = 256;      // DenseLinear.cuh kGemmThreads = 8 warps (GEMV)
constexpr int64_t kGemvMaxTokens = 8;
constexpr int64_t kGemvRowsPerBlock = 8 * 2; // kGemvWarps * kGemvRowsPerWarp
constexpr int64_t kGemmBK = 16, kGemmPad = 4;       // DenseLinear.cuh (FFMA tile)
constexpr int64_t kMmaBK = 32, kMmaPad = 8;         // DenseMma.cuh (tensor-core tile)
constexpr int64_t kWgmmaBK = 64, kWgmmaStages = 4;  // wgmma tile: one 128-byte swizzle row of bf16, 4 cp.async stages
constexpr int64_t kWgmmaAlignSlack = 1024;          // the tile base is rounded up to 1024 bytes
constexpr int64_t kWgmmaFp8Stages = 4, kWgmmaFp8Group = 128; // DenseWgmmaFp8.cuh: one 128-byte row of e4m3 per stage, 4 stages
constexpr uint32_t kRmsNormThreads = 256;
constexpr uint32_t kHcThreads = 512;
constexpr int64_t kHcTileTokens = 8; // HyperConnection.cuh: tokens per block at prefill
constexpr uint32_t kRouterThreads = 1024;
constexpr int64_t kRouterSplitWarps = 8;  // Router.cuh kRouterSplitThreads / 32
constexpr int64_t kSpreadBlocks = 2 * 132; // decode kernels that stream a weight: two blocks per H100 SM
constexpr int64_t kMaxGridBlocks = 65535; // for grid-stride kernels (any grid works)
constexpr int64_t kMaxGridYZ = 65535;
constexpr int64_t kDefaultSharedLimit = 48 * 1024;

const char *shortName(v4rt::DType dtype) {
  switch (dtype) {
  case v4rt::DType::F32: return "f32";
  case v4rt::DType::BF16: return "bf16";
  case v4rt::DType::F16: return "f16";
  case v4rt::DType::F8E4M3: return "e4m3";
  case v4rt::DType::I32: return "i32";
  case v4rt::DType::I64: return "i64";
  case v4rt::DType::U8: return "u8";
  }
  return "unknown";
}

bool isFloat(v4rt::DType dtype) {
  return dtype == v4rt::DType::F32 || dtype == v4rt::DType::BF16 || dtype == v4rt::DType::F16;
}

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

std::string str(int64_t value) { return std::to_string(value); }

// FNV-1a of a float table's literals: a short, stable tag for entry names.
std::string tableTag(const std::vector<double> &values) {
  uint64_t hash = 1469598103934665603ull;
  for (double v : values)
    for (char c : floatLiteral(v)) {
      hash ^= static_cast<unsigned char>(c);
      hash *= 1099511628211ull;
    }
  char text[24];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(hash));
  return text;
}

// Helpers bound to one step.
class Emit {
public:
  explicit Emit(const StepView &view) : view(view), op(view.opName()) {}

  const StepView &view;
  const std::string op;
  // static_asserts put at the top of the entry: the geometry this emitter
  // computed must be what the headers' templates assume, or nvcc fails.
  std::string checks;

  void expect(const std::string &condition, const std::string &what) {
    checks += "  static_assert(" + condition + ", \"DenseEmitters.cpp and the v4cuda headers disagree on " + what +
              "\");\n";
  }

  [[noreturn]] void fail(const std::string &message) const { throw Error(op + ": " + message); }
  void require(bool condition, const std::string &message) const {
    if (!condition)
      fail(message);
  }

  // Parameter name of ODS operand `operand` ("in3").
  std::string in(int64_t operand) const { return "in" + str(view.operandIndex(operand)); }
  std::string inType(int64_t operand) const { return cTypeName(view.in(operand).dtype); }
  std::string outType(int64_t result) const { return cTypeName(view.out(result).dtype); }

  const std::vector<int64_t> &inShape(int64_t operand) const { return view.in(operand).shape; }
  const std::vector<int64_t> &outShape(int64_t result) const { return view.out(result).shape; }

  // A token-major [T, C] activation: checks rank and rows, returns C.
  int64_t rowWidth(const std::vector<int64_t> &shape, const char *what) const {
    require(shape.size() == 2 && shape[0] == tokens(),
            std::string(what) + " must be [" + str(tokens()) + ", C] (the bucket's tokens), got " + shapeText(shape));
    require(shape[1] > 0, std::string(what) + " has no columns");
    return shape[1];
  }
  int64_t inWidth(int64_t operand, const char *what) const { return rowWidth(inShape(operand), what); }
  int64_t outWidth(int64_t result, const char *what) const { return rowWidth(outShape(result), what); }

  void requireFloat(v4rt::DType dtype, const char *what) const {
    require(isFloat(dtype), std::string(what) + " must be f32, bf16 or f16, got " + shortName(dtype));
  }
  void requireFloatIns(std::initializer_list<int64_t> operands) const {
    for (int64_t operand : operands)
      requireFloat(view.in(operand).dtype, ("operand " + str(operand)).c_str());
  }
  void requireFloatOuts(std::initializer_list<int64_t> results) const {
    for (int64_t result : results)
      requireFloat(view.out(result).dtype, ("result " + str(result)).c_str());
  }
  void requireDtype(const v4rt::ArgRef &arg, v4rt::DType dtype, const char *what) const {
    require(arg.dtype == dtype, std::string(what) + " must be " + shortName(dtype) + ", got " + shortName(arg.dtype));
  }

  int64_t tokens() const { return view.bucketTokens(); }

  // "v4_<op>_<variant>_<dtypes of every argument>": the tail is added by callers.
  std::string entryBase(const std::string &variant = "") const {
    std::string name = "v4_" + identifierFragment(op.substr(op.find('.') + 1));
    if (!variant.empty())
      name += "_" + variant;
    for (const v4rt::ArgRef &arg : view.step.ins)
      name += std::string("_") + shortName(arg.dtype);
    name += "_to";
    for (const v4rt::ArgRef &arg : view.step.outs)
      name += std::string("_") + shortName(arg.dtype);
    return name + "_T" + str(tokens());
  }

  static std::string shapeText(const std::vector<int64_t> &shape) {
    std::string text = "[";
    for (size_t i = 0; i < shape.size(); ++i)
      text += (i ? ", " : "") + str(shape[i]);
    return text + "]";
  }

  // The entry: `extern "C" __global__ void <entry>(<params>) { body }`.
  EmittedKernel kernel(const std::string &entry, const std::string &body, uint32_t threads, LaunchDims dims,
                       const std::string &tables = "") const {
    EmittedKernel k;
    k.entry = entry;
    k.source = tables + "extern \"C\" __global__ void __launch_bounds__(" + str(threads) + ") " + entry + "(" +
               view.paramList() + ") {\n" + checks + body + "}\n";
    dims.block[0] = threads;
    dims.block[1] = dims.block[2] = 1;
    require(dims.sharedBytes <= 227 * 1024, "needs " + str(dims.sharedBytes) + " bytes of shared memory (over 227 KB)");
    require(dims.grid[1] <= kMaxGridYZ && dims.grid[2] <= kMaxGridYZ, "grid.y/z over 65535");
    k.dims = dims;
    return k;
  }
};

std::string numberTag(double value) { return identifierFragment(floatLiteral(value)); }

LaunchDims gridX(int64_t blocks) {
  LaunchDims dims;
  dims.grid[0] = static_cast<uint32_t>(std::max<int64_t>(1, blocks));
  return dims;
}

// Grid of a grid-stride elementwise kernel over `count` items.
LaunchDims elementwiseGrid(int64_t count) {
  return gridX(std::min(kMaxGridBlocks, ceilDiv(count, kElementwiseThreads)));
}

// ---- elementwise / row ops ----------------------------------------------------

EmittedKernel emitEmbed(const StepView &view) {
  Emit e(view);
  e.requireDtype(view.in(0), v4rt::DType::I32, "ids");
  const auto &table = e.inShape(1);
  e.require(table.size() == 2, "table must be [V, D], got " + Emit::shapeText(table));
  e.requireFloat(view.in(1).dtype, "table");
  e.requireFloatOuts({0});
  const int64_t vocab = table[0], D = table[1];
  e.require(e.outWidth(0, "result") == D, "result width must equal the table's D = " + str(D));
  const std::string entry = e.entryBase() + "_V" + str(vocab) + "_D" + str(D);
  const std::string body = "  v4cuda::embed<" + e.inType(1) + ", " + e.outType(0) + ", " + str(vocab) + ", " + str(D) +
                           ">(" + e.in(0) + ", " + e.in(1) + ", out0, dyn);\n";
  e.expect("v4cuda::kElementwiseThreads == " + str(kElementwiseThreads), "the block size");
  return e.kernel(entry, body, kElementwiseThreads, gridX(e.tokens()));
}

EmittedKernel emitAdd(const StepView &view) {
  Emit e(view);
  e.requireFloatIns({0, 1});
  e.requireFloatOuts({0});
  const int64_t C = e.inWidth(0, "a");
  e.require(e.inWidth(1, "b") == C && e.outWidth(0, "result") == C, "a, b and the result must have equal widths");
  const std::string entry = e.entryBase() + "_C" + str(C);
  const std::string body = "  v4cuda::add<" + e.inType(0) + ", " + e.inType(1) + ", " + e.outType(0) + ", " +
                           str(e.tokens()) + ", " + str(C) + ">(" + e.in(0) + ", " + e.in(1) + ", out0, dyn);\n";
  e.expect("v4cuda::kElementwiseThreads == " + str(kElementwiseThreads), "the block size");
  return e.kernel(entry, body, kElementwiseThreads, elementwiseGrid(e.tokens() * C));
}

EmittedKernel emitSwiglu(const StepView &view) {
  Emit e(view);
  e.requireFloatIns({0, 1});
  e.requireFloatOuts({0});
  const int64_t I = e.inWidth(0, "gate");
  e.require(e.inWidth(1, "up") == I && e.outWidth(0, "result") == I, "gate, up and the result must have equal widths");
  const double limit = view.attrFloat("limit");
  const std::string entry = e.entryBase() + "_I" + str(I) + "_L" + numberTag(limit);
  const std::string body = "  v4cuda::swiglu<" + e.inType(0) + ", " + e.inType(1) + ", " + e.outType(0) + ", " +
                           str(e.tokens()) + ", " + str(I) + ">(" + e.in(0) + ", " + e.in(1) + ", out0, " +
                           floatLiteral(limit) + ", dyn);\n";
  e.expect("v4cuda::kElementwiseThreads == " + str(kElementwiseThreads), "the block size");
  return e.kernel(entry, body, kElementwiseThreads, elementwiseGrid(e.tokens() * I));
}

EmittedKernel emitRmsNorm(const StepView &view) {
  Emit e(view);
  e.requireFloatIns({0});
  e.requireFloatOuts({0});
  const int64_t C = e.inWidth(0, "x"), G = view.attrInt("group");
  e.require(G > 0 && C % G == 0, "group " + str(G) + " must divide the width " + str(C));
  e.require(e.outWidth(0, "result") == C, "result width must equal x's");
  const bool hasW = view.hasIn(1);
  if (hasW) {
    e.require(e.inShape(1) == std::vector<int64_t>{G}, "w must be [group] = [" + str(G) + "]");
    e.requireFloatIns({1});
  }
  const double eps = view.attrFloat("eps");
  const int64_t groups = C / G;
  const int64_t blocksPerRow = G <= 1024 ? ceilDiv(groups, kRmsNormThreads / 32) : groups;
  const std::string wType = hasW ? e.inType(1) : "float";
  const std::string entry = e.entryBase() + "_C" + str(C) + "_G" + str(G) + (hasW ? "_w" : "_now") + "_eps" +
                            numberTag(eps);
  const std::string body = "  v4cuda::rmsNorm<" + e.inType(0) + ", " + wType + ", " + e.outType(0) + ", " + str(C) +
                           ", " + str(G) + ", " + (hasW ? "true" : "false") + ">(" + e.in(0) + ", " +
                           (hasW ? e.in(1) : "static_cast<const float*>(nullptr)") + ", out0, " + floatLiteral(eps) +
                           ", dyn);\n";
  e.expect("v4cuda::kRmsNormThreads == " + str(kRmsNormThreads) + " && v4cuda::rmsNormBlocksPerRow<" + str(C) + ", " +
               str(G) + ">() == " + str(blocksPerRow),
           "the rms_norm geometry");
  return e.kernel(entry, body, kRmsNormThreads, gridX(e.tokens() * blocksPerRow));
}

EmittedKernel emitRope(const StepView &view) {
  Emit e(view);
  e.requireFloatIns({0});
  e.requireFloatOuts({0});
  e.requireDtype(view.in(1), v4rt::DType::I32, "positions");
  const int64_t C = e.inWidth(0, "x");
  const int64_t HD = view.attrInt("head_dim"), RD = view.attrInt("rope_dim");
  const std::vector<double> invFreq = view.attrFloats("inv_freq");
  const double scaling = view.attrFloat("scaling");
  const bool inverse = view.attrBool("inverse");
  e.require(HD > 0 && C % HD == 0, "head_dim " + str(HD) + " must divide the width " + str(C));
  e.require(HD % 2 == 0 && RD % 2 == 0 && RD >= 0 && RD <= HD, "head_dim and rope_dim must be even, rope_dim <= head_dim");
  e.require(static_cast<int64_t>(invFreq.size()) == RD / 2, "inv_freq must have rope_dim / 2 = " + str(RD / 2) + " entries");
  e.require(e.outWidth(0, "result") == C, "result width must equal x's");
  const std::string entry = e.entryBase() + "_C" + str(C) + "_HD" + str(HD) + "_RD" + str(RD) + "_f" +
                            tableTag(invFreq) + "_s" + numberTag(scaling) + (inverse ? "_inv" : "_fwd");
  const std::string table = entry + "_inv_freq";
  const std::string body = "  v4cuda::rope<" + e.inType(0) + ", " + e.outType(0) + ", " + str(e.tokens()) + ", " +
                           str(C) + ", " + str(HD) + ", " +
                           str(RD) + ">(" + e.in(0) + ", " + e.in(1) + ", out0, " + table + ", " +
                           floatLiteral(scaling) + ", " + (inverse ? "true" : "false") + ", dyn);\n";
  e.expect("v4cuda::kElementwiseThreads == " + str(kElementwiseThreads), "the block size");
  return e.kernel(entry, body, kElementwiseThreads, elementwiseGrid(e.tokens() * C / 2),
                  deviceFloatTable(table, invFreq));
}

// ---- matmuls -------------------------------------------------------------------

// The GEMM tile: DenseLinear.cuh matmulGemm's MMA argument (0, 1, 2; the
// native e4m3 wgmma tile is MMA 2 on e4m3 operands in 128-wide groups).
enum class GemmTile { Ffma, Wmma, Wgmma, WgmmaFp8 };

// Tile shape of the GEMM path for `tokens` rows and NV virtual columns.
struct MatmulShape {
  bool gemv = true;
  int64_t kSplit = 1; // GEMV: warps sharing a row pair, each over 1/kSplit of K
  GemmTile tile = GemmTile::Ffma; // tensor cores only for bf16 / fp8 operands
  int64_t BM = 0, BN = 0;
  // Dynamic shared bytes the launch may use: 48 KB without an opt-in; the
  // wgmma tile (sm_90a) opts in to the target's limit (the runtime sets
  // CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES above 48 KB).
  int64_t sharedLimit = kDefaultSharedLimit;
};

// DenseLinear.cuh gemvSplitBytes: the K-split partial sums.
int64_t gemvSplitBytes(const MatmulShape &shape, int64_t tokens) {
  return shape.kSplit > 1 ? kGemvRowsPerBlock * tokens * 4 : 0;
}

// The tile's bytes (DenseLinear.cuh gemmTileBytes, DenseMma.cuh gemmMmaTileBytes,
// gemmWgmmaTileBytes; the epilogue reuses them) plus the A policy's table.
int64_t gemmSharedBytes(GemmTile tile, int64_t BM, int64_t BN, int64_t tableBytesPerRow) {
  int64_t tiles = 0;
  switch (tile) {
  case GemmTile::Ffma: tiles = kGemmBK * (BM + kGemmPad + BN + kGemmPad) * 4; break;
  case GemmTile::Wmma: tiles = std::max<int64_t>((BM + BN) * (kMmaBK + kMmaPad) * 2, 8 * 256 * 4); break;
  case GemmTile::Wgmma: tiles = kWgmmaStages * (BM + BN) * kWgmmaBK * 2 + kWgmmaAlignSlack; break;
  case GemmTile::WgmmaFp8: tiles = kWgmmaFp8Stages * (BM + BN) * kWgmmaFp8Group + kWgmmaAlignSlack; break;
  }
  return tiles + BM * tableBytesPerRow;
}

// GEMV up to 8 tokens; else BM = 64 up to 64 tokens (or when a 128-row A
// table would not fit in the shared limit), 128 above; BN = 64 up to 64
// columns, else 128. `mma`: the operands are exact in bf16 (the caller's dtype
// rule); they then get wmma, or wgmma with `--tensor-cores wgmma` (`e4m3`:
// the native e4m3 wgmma tile, wgmmaFp8Native).
MatmulShape matmulShape(const Emit &e, int64_t virtualColumns, bool mma, int64_t tableBytesPerRow = 0,
                        bool e4m3 = false) {
  MatmulShape shape;
  const int64_t tokens = e.tokens();
  shape.gemv = tokens <= kGemvMaxTokens;
  if (!shape.gemv) {
    shape.tile = !mma ? GemmTile::Ffma : e.view.wgmma() ? (e4m3 ? GemmTile::WgmmaFp8 : GemmTile::Wgmma) : GemmTile::Wmma;
    if (shape.tile == GemmTile::Wgmma || shape.tile == GemmTile::WgmmaFp8)
      shape.sharedLimit = sharedOptinLimit(e.view.program.target);
    shape.BN = virtualColumns <= 64 ? 64 : 128;
    shape.BM =
        tokens <= 64 || gemmSharedBytes(shape.tile, 128, shape.BN, tableBytesPerRow) > shape.sharedLimit ? 64 : 128;
  }
  return shape;
}

std::string shapeTag(const MatmulShape &shape) {
  if (shape.gemv)
    return shape.kSplit > 1 ? "gemv_ks" + str(shape.kSplit) : "gemv";
  const char *kind = shape.tile == GemmTile::Wgmma || shape.tile == GemmTile::WgmmaFp8 ? "wgmma"
                     : shape.tile == GemmTile::Wmma                                    ? "mma"
                                                                                       : "gemm";
  return kind + str(shape.BM) + "x" + str(shape.BN);
}

int64_t gemvRowsPerBlock(int64_t kSplit) { return kGemvRowsPerBlock / kSplit; }

// GEMV K split (decode): the fewest warps per row pair (1, 2, 4, 8) that give
// >= kSpreadBlocks blocks over `columns` x `groups`, each warp keeping at
// least one 16-byte weight load per lane of K.
void chooseGemvSplit(MatmulShape &shape, int64_t columns, int64_t groups, int64_t K, int64_t weightElemBytes) {
  if (!shape.gemv)
    return;
  const int64_t step = 32 * std::max<int64_t>(1, 16 / weightElemBytes);
  shape.kSplit = 1;
  while (shape.kSplit < 8 && groups * ceilDiv(columns, gemvRowsPerBlock(shape.kSplit)) < kSpreadBlocks &&
         K / (2 * shape.kSplit) >= step)
    shape.kSplit *= 2;
}
int64_t elemBytes(const v4rt::ArgRef &arg) { return static_cast<int64_t>(v4rt::dtypeSize(arg.dtype)); }

bool isBf16(const v4rt::ArgRef &arg) { return arg.dtype == v4rt::DType::BF16; }

// Column blocks, shared bytes of one matmul over NV virtual columns with an A
// table of `tableBytesPerRow`.
int64_t columnBlocks(const MatmulShape &shape, int64_t virtualColumns) {
  return ceilDiv(virtualColumns, shape.gemv ? gemvRowsPerBlock(shape.kSplit) : shape.BN);
}

// Also asserts, in the entry, the header constants this geometry relies on;
// `aOperand` names the A policy type whose table it sized ("" for none).
int64_t matmulSharedBytes(Emit &e, const MatmulShape &shape, int64_t tableBytesPerRow, const std::string &aOperand = "") {
  if (shape.gemv) {
    e.expect("v4cuda::kGemvWarps * 32 == " + str(kMatmulThreads) + " && v4cuda::gemvRowsPerBlock<" +
                 str(shape.kSplit) + ">() == " + str(gemvRowsPerBlock(shape.kSplit)) + " && v4cuda::gemvSplitBytes<" +
                 str(e.tokens()) + ", " + str(shape.kSplit) + ">() == " + str(gemvSplitBytes(shape, e.tokens())),
             "the GEMV geometry");
  } else if (shape.tile == GemmTile::Wgmma) {
    e.expect("v4cuda::kGemmThreads == " + str(kMatmulThreads) + " && v4cuda::gemmWgmmaTileBytes<" + str(shape.BM) +
                 ", " + str(shape.BN) + ">() == " + str(gemmSharedBytes(GemmTile::Wgmma, shape.BM, shape.BN, 0)),
             "the wgmma tile");
  } else if (shape.tile == GemmTile::WgmmaFp8) {
    e.expect("v4cuda::kGemmThreads == " + str(kMatmulThreads) + " && v4cuda::gemmWgmmaFp8TileBytes<" + str(shape.BM) +
                 ", " + str(shape.BN) + ">() == " + str(gemmSharedBytes(GemmTile::WgmmaFp8, shape.BM, shape.BN, 0)),
             "the e4m3 wgmma tile");
  } else if (shape.tile == GemmTile::Wmma) {
    e.expect("v4cuda::kMmaBK == " + str(kMmaBK) + " && v4cuda::kMmaPad == " + str(kMmaPad) +
                 " && v4cuda::gemmMmaTileBytes<" + str(shape.BM) + ", " + str(shape.BN) + ">() == " +
                 str(gemmSharedBytes(GemmTile::Wmma, shape.BM, shape.BN, 0)),
             "the tensor-core tile");
  } else {
    e.expect("v4cuda::kGemmThreads == " + str(kMatmulThreads) + " && v4cuda::gemmTileBytes<" + str(shape.BM) + ", " +
                 str(shape.BN) + ">() == " + str(gemmSharedBytes(GemmTile::Ffma, shape.BM, shape.BN, 0)),
             "the FFMA tile");
  }
  if (!aOperand.empty())
    e.expect(aOperand + "::kTableBytesPerRow == " + str(tableBytesPerRow), "the per-row table");
  const int64_t bytes =
      !shape.gemv         ? gemmSharedBytes(shape.tile, shape.BM, shape.BN, tableBytesPerRow)
      : shape.kSplit == 1 ? e.tokens() * tableBytesPerRow
                          : (e.tokens() * tableBytesPerRow + 15) / 16 * 16 + gemvSplitBytes(shape, e.tokens());
  e.require(bytes <= shape.sharedLimit,
            "the per-row table (" + str(tableBytesPerRow) + " bytes per token) needs " + str(bytes) +
                " bytes of shared memory, over " + str(shape.sharedLimit / 1024) +
                " KB; use fewer, larger norm / quantization groups");
  return bytes;
}

LaunchDims matmulDims(const Emit &e, const MatmulShape &shape, int64_t columnBlocksTotal, int64_t groups,
                      int64_t sharedBytes) {
  LaunchDims dims = gridX(columnBlocksTotal);
  if (shape.gemv) {
    dims.grid[1] = static_cast<uint32_t>(groups);
  } else {
    dims.grid[1] = static_cast<uint32_t>(ceilDiv(e.tokens(), shape.BM));
    dims.grid[2] = static_cast<uint32_t>(groups);
  }
  dims.sharedBytes = static_cast<uint32_t>(sharedBytes);
  return dims;
}

// Template arguments after the dtypes: "<T_MAX, >" for the GEMV, "" for the GEMM
// (which gets ", BM, BN" at the end instead).
std::string tokensArg(const MatmulShape &shape, int64_t tokens) { return shape.gemv ? str(tokens) + ", " : ""; }
std::string tileArgs(const MatmulShape &shape) {
  // MMA: wmma / FFMA keep their bool spelling (unchanged entry sources), wgmma is 2.
  const char *mma = shape.tile == GemmTile::Wgmma || shape.tile == GemmTile::WgmmaFp8 ? ", 2"
                    : shape.tile == GemmTile::Wmma                                    ? ", true"
                                                                                      : ", false";
  return shape.gemv ? ", " + str(shape.kSplit) : ", " + str(shape.BM) + ", " + str(shape.BN) + mma;
}
std::string variant(const MatmulShape &shape) { return shape.gemv ? "Gemv" : "Gemm"; }

// [N, K] weight of a matmul whose activation is [T, K].
int64_t weightRows(const Emit &e, int64_t operand, int64_t K, const char *what) {
  const auto &w = e.inShape(operand);
  e.require(w.size() == 2 && w[1] == K && w[0] > 0,
            std::string(what) + " must be [N, " + str(K) + "], got " + Emit::shapeText(w));
  return w[0];
}

EmittedKernel emitLinear(const StepView &view) {
  Emit e(view);
  e.requireFloatIns({0, 1});
  e.requireFloatOuts({0});
  const int64_t K = e.inWidth(0, "x");
  const int64_t N = weightRows(e, 1, K, "w");
  e.require(e.outWidth(0, "result") == N, "result must be [T, " + str(N) + "]");
  MatmulShape shape = matmulShape(e, N, isBf16(view.in(0)) && isBf16(view.in(1)));
  chooseGemvSplit(shape, N, 1, K, elemBytes(view.in(1)));
  const std::string entry = e.entryBase(shapeTag(shape)) + "_K" + str(K) + "_N" + str(N);
  const std::string body = "  v4cuda::linear" + variant(shape) + "<" + e.inType(0) + ", " + e.inType(1) + ", " +
                           e.outType(0) + ", " + tokensArg(shape, e.tokens()) + str(K) + ", " + str(N) +
                           tileArgs(shape) + ">(" + e.in(0) + ", " + e.in(1) + ", out0, dyn);\n";
  return e.kernel(entry, body, kMatmulThreads,
                  matmulDims(e, shape, columnBlocks(shape, N), 1, matmulSharedBytes(e, shape, 0)));
}

EmittedKernel emitGroupedLinear(const StepView &view) {
  Emit e(view);
  e.requireFloatIns({0, 1});
  e.requireFloatOuts({0});
  const int64_t G = view.attrInt("groups");
  const int64_t width = e.inWidth(0, "x");
  e.require(G > 0 && width % G == 0, "groups " + str(G) + " must divide x's width " + str(width));
  e.require(G <= kMaxGridYZ, "more than 65535 groups");
  const int64_t KG = width / G;
  const int64_t rows = weightRows(e, 1, KG, "w");
  e.require(rows % G == 0, "w rows " + str(rows) + " must be groups x R");
  const int64_t R = rows / G;
  e.require(e.outWidth(0, "result") == G * R, "result must be [T, groups * R] = [T, " + str(G * R) + "]");
  MatmulShape shape = matmulShape(e, R, isBf16(view.in(0)) && isBf16(view.in(1)));
  chooseGemvSplit(shape, R, G, KG, elemBytes(view.in(1)));
  const std::string entry = e.entryBase(shapeTag(shape)) + "_G" + str(G) + "_KG" + str(KG) + "_R" + str(R);
  const std::string body = "  v4cuda::groupedLinear" + variant(shape) + "<" + e.inType(0) + ", " + e.inType(1) + ", " +
                           e.outType(0) + ", " + tokensArg(shape, e.tokens()) + str(G) + ", " + str(KG) + ", " +
                           str(R) + tileArgs(shape) + ">(" + e.in(0) + ", " + e.in(1) + ", out0, dyn);\n";
  return e.kernel(entry, body, kMatmulThreads,
                  matmulDims(e, shape, columnBlocks(shape, R), G, matmulSharedBytes(e, shape, 0)));
}

// v4.norm_linear x, optional norm_w, weights w0..wn -> one [T, N_i] per weight.
// One launch: blockIdx.x ranges select the weight.
EmittedKernel emitNormLinear(const StepView &view) {
  Emit e(view);
  e.requireFloatIns({0});
  const int64_t K = e.inWidth(0, "x"), G = view.attrInt("group");
  e.require(G > 0 && K % G == 0, "group " + str(G) + " must divide x's width " + str(K));
  const bool hasW = view.hasIn(1);
  if (hasW) {
    e.require(e.inShape(1) == std::vector<int64_t>{G}, "norm_w must be [group] = [" + str(G) + "]");
    e.requireFloatIns({1});
  }
  const int64_t firstWeight = view.operandIndex(2);
  e.require(firstWeight >= 0, "has no weights");
  const int64_t weights = static_cast<int64_t>(view.step.ins.size()) - firstWeight;
  e.require(weights >= 1 && weights == static_cast<int64_t>(view.step.outs.size()),
            "needs one result per weight (" + str(weights) + " weights, " + str(view.step.outs.size()) + " results)");
  const double eps = view.attrFloat("eps");
  const std::string normType = hasW ? e.inType(1) : "float";
  const std::string normArg = hasW ? e.in(1) : "static_cast<const float*>(nullptr)";
  const int64_t tableBytesPerRow = (K / G) * 4;

  std::vector<int64_t> Ns;
  int64_t maxN = 0;
  bool mma = isBf16(view.in(0));
  for (int64_t i = 0; i < weights; ++i) {
    const v4rt::ArgRef &w = view.step.ins.at(firstWeight + i);
    e.require(w.shape.size() == 2 && w.shape[1] == K && w.shape[0] > 0,
              "weight " + str(i) + " must be [N, " + str(K) + "], got " + Emit::shapeText(w.shape));
    e.requireFloat(w.dtype, "a weight");
    e.requireFloat(view.out(i).dtype, "a result");
    e.require(e.outWidth(i, "a result") == w.shape[0], "result " + str(i) + " must be [T, " + str(w.shape[0]) + "]");
    Ns.push_back(w.shape[0]);
    maxN = std::max(maxN, w.shape[0]);
    mma = mma && isBf16(w);
  }
  // One tile geometry for all weights (BM, threads); BN per the widest.
  MatmulShape shape = matmulShape(e, maxN, mma, tableBytesPerRow);
  int64_t totalN = 0, widestElem = 1;
  for (int64_t i = 0; i < weights; ++i) {
    totalN += Ns[i];
    widestElem = std::max(widestElem, elemBytes(view.step.ins.at(firstWeight + i)));
  }
  chooseGemvSplit(shape, totalN, 1, K, widestElem);
  std::string entry = e.entryBase(shapeTag(shape)) + "_K" + str(K) + "_G" + str(G) + (hasW ? "_w" : "_now") + "_eps" +
                      numberTag(eps);
  std::string body = "  const int tile = blockIdx.x;\n";
  int64_t start = 0;
  for (int64_t i = 0; i < weights; ++i) {
    const int64_t N = Ns[i];
    entry += "_N" + str(N);
    const int64_t blocks = columnBlocks(shape, N);
    body += "  if (tile < " + str(start + blocks) + ") {\n    v4cuda::normLinear" + variant(shape) + "<" +
            e.inType(0) + ", " + normType + ", " + cTypeName(view.step.ins.at(firstWeight + i).dtype) + ", " +
            e.outType(i) + ", " + tokensArg(shape, e.tokens()) + str(K) + ", " + str(G) + ", " +
            (hasW ? "true" : "false") + ", " + str(N) + tileArgs(shape) + ">(" + e.in(0) + ", " + normArg + ", in" +
            str(firstWeight + i) + ", out" + str(i) + ", " + floatLiteral(eps) + ", tile - " + str(start) +
            ", dyn);\n    return;\n  }\n";
    start += blocks;
  }
  return e.kernel(entry, body, kMatmulThreads,
                  matmulDims(e, shape, start, 1,
                             matmulSharedBytes(e, shape, tableBytesPerRow,
                                               "v4cuda::NormedRows<" + e.inType(0) + ", " + normType + ", " + str(K) +
                                                   ", " + str(G) + ", " + (hasW ? "true" : "false") + ">")));
}

EmittedKernel emitLinearSwiglu(const StepView &view) {
  Emit e(view);
  e.requireFloatIns({0, 1, 2});
  e.requireFloatOuts({0});
  e.require(view.in(1).dtype == view.in(2).dtype, "gate_w and up_w must have one dtype");
  const int64_t K = e.inWidth(0, "h");
  const int64_t I = weightRows(e, 1, K, "gate_w");
  e.require(weightRows(e, 2, K, "up_w") == I, "up_w must be [" + str(I) + ", " + str(K) + "] like gate_w");
  e.require(e.outWidth(0, "result") == I, "result must be [T, " + str(I) + "]");
  const double limit = view.attrFloat("limit");
  MatmulShape shape = matmulShape(e, 2 * I, isBf16(view.in(0)) && isBf16(view.in(1)));
  chooseGemvSplit(shape, 2 * I, 1, K, elemBytes(view.in(1)));
  const std::string entry = e.entryBase(shapeTag(shape)) + "_K" + str(K) + "_I" + str(I) + "_L" + numberTag(limit);
  const std::string body = "  v4cuda::linearSwiglu" + variant(shape) + "<" + e.inType(0) + ", " + e.inType(1) + ", " +
                           e.outType(0) + ", " + tokensArg(shape, e.tokens()) + str(K) + ", " + str(I) +
                           tileArgs(shape) + ">(" + e.in(0) + ", " + e.in(1) + ", " + e.in(2) + ", out0, " +
                           floatLiteral(limit) + ", dyn);\n";
  return e.kernel(entry, body, kMatmulThreads,
                  matmulDims(e, shape, columnBlocks(shape, 2 * I), 1, matmulSharedBytes(e, shape, 0)));
}

// v4.linear_fp8 x, w (e4m3 [N, K]), scale (u8 [ceil(N/BR), ceil(K/BC)]), attr block = [BR, BC].
EmittedKernel emitLinearFp8(const StepView &view) {
  Emit e(view);
  e.requireFloatIns({0});
  e.requireFloatOuts({0});
  e.requireDtype(view.in(1), v4rt::DType::F8E4M3, "w");
  e.requireDtype(view.in(2), v4rt::DType::U8, "scale");
  const std::vector<int64_t> block = view.attrInts("block");
  e.require(block.size() == 2 && block[0] > 0 && block[1] > 0, "attribute 'block' must be two positive sizes [rows, cols]");
  const int64_t BR = block[0], BC = block[1];
  const int64_t K = e.inWidth(0, "x");
  const int64_t N = weightRows(e, 1, K, "w");
  int64_t scaleCount = 1;
  for (int64_t d : e.inShape(2))
    scaleCount *= d;
  e.require(scaleCount == ceilDiv(N, BR) * ceilDiv(K, BC),
            "scale must hold ceil(N/" + str(BR) + ") x ceil(K/" + str(BC) + ") = " +
                str(ceilDiv(N, BR) * ceilDiv(K, BC)) + " bytes, got " + str(scaleCount));
  e.require(e.outWidth(0, "result") == N, "result must be [T, " + str(N) + "]");
  // Quantized operands are exact in bf16 whatever x's dtype: always tensor
  // cores. wgmma multiplies the e4m3 codes themselves when each 128-wide K
  // group has one weight scale per 128-row column block (DenseWgmmaFp8.cuh
  // kWgmmaFp8Native, asserted in the entry); other blocks dequantize to bf16.
  const bool e4m3Native = BC == kWgmmaFp8Group && BR % kWgmmaFp8Group == 0;
  MatmulShape shape = matmulShape(e, N, true, ceilDiv(K, BC), e4m3Native);
  chooseGemvSplit(shape, N, 1, K, 1);
  const std::string aOperand = "v4cuda::QuantRows<" + e.inType(0) + ", " + str(K) + ", " + str(BC) + ">";
  if (shape.tile == GemmTile::Wgmma || shape.tile == GemmTile::WgmmaFp8)
    e.expect(std::string(e4m3Native ? "" : "!") + "v4cuda::kWgmmaFp8Native<" + aOperand + ", v4cuda::Fp8Weights<" +
                 str(K) + ", " + str(BR) + ", " + str(BC) + ">>",
             e4m3Native ? "the native e4m3 wgmma tile" : "the bf16 wgmma tile (dequantized e4m3)");
  const std::string entry = e.entryBase(shapeTag(shape)) + "_K" + str(K) + "_N" + str(N) + "_B" + str(BR) + "x" + str(BC);
  const std::string body = "  v4cuda::linearFp8" + variant(shape) + "<" + e.inType(0) + ", " + e.outType(0) + ", " +
                           tokensArg(shape, e.tokens()) + str(K) + ", " + str(N) + ", " + str(BR) + ", " + str(BC) +
                           tileArgs(shape) + ">(" + e.in(0) + ", " + e.in(1) + ", " + e.in(2) + ", out0, dyn);\n";
  return e.kernel(entry, body, kMatmulThreads,
                  matmulDims(e, shape, columnBlocks(shape, N), 1, matmulSharedBytes(e, shape, ceilDiv(K, BC), aOperand)));
}

// ---- mHC -----------------------------------------------------------------------

// hc and D of streams [T, hc*D] with `D` from another operand.
int64_t hcStreams(const Emit &e, int64_t width, int64_t D) {
  const int64_t hc = e.view.attrInt("hc");
  e.require(hc >= 1 && hc <= 8, "hc must be in [1, 8], got " + str(hc));
  e.require(width == hc * D, "streams must be [T, hc * D] = [T, " + str(hc * D) + "], got width " + str(width));
  return hc;
}

// fn [rows, hc*D], base [rows], scale [scales] of hc_pre / hc_head.
void checkMixWeights(const Emit &e, int64_t fnOp, int64_t rows, int64_t width, int64_t scales) {
  e.require(e.inShape(fnOp) == std::vector<int64_t>{rows, width},
            "fn must be [" + str(rows) + ", " + str(width) + "], got " + Emit::shapeText(e.inShape(fnOp)));
  e.require(e.inShape(fnOp + 1) == std::vector<int64_t>{rows}, "base must be [" + str(rows) + "]");
  e.require(e.inShape(fnOp + 2) == std::vector<int64_t>{scales}, "scale must be [" + str(scales) + "]");
  e.requireFloatIns({fnOp, fnOp + 1, fnOp + 2});
}

EmittedKernel emitHcExpand(const StepView &view) {
  Emit e(view);
  e.requireFloatIns({0});
  e.requireFloatOuts({0});
  const int64_t D = e.inWidth(0, "x");
  const int64_t hc = hcStreams(e, e.outWidth(0, "result"), D);
  const std::string entry = e.entryBase() + "_hc" + str(hc) + "_D" + str(D);
  const std::string body = "  v4cuda::hcExpand<" + e.inType(0) + ", " + e.outType(0) + ", " + str(e.tokens()) + ", " +
                           str(hc) + ", " + str(D) + ">(" + e.in(0) + ", out0, dyn);\n";
  e.expect("v4cuda::kElementwiseThreads == " + str(kElementwiseThreads), "the block size");
  return e.kernel(entry, body, kElementwiseThreads, elementwiseGrid(e.tokens() * hc * D));
}

EmittedKernel emitHcPost(const StepView &view) {
  Emit e(view);
  e.requireFloatIns({0, 1, 2, 3});
  e.requireFloatOuts({0});
  const int64_t D = e.inWidth(1, "y");
  const int64_t hc = hcStreams(e, e.inWidth(0, "X"), D);
  e.require(e.inWidth(2, "post") == hc && e.inWidth(3, "comb") == hc * hc, "post must be [T, hc], comb [T, hc*hc]");
  e.require(e.outWidth(0, "result") == hc * D, "result must be [T, hc * D]");
  const std::string entry = e.entryBase() + "_hc" + str(hc) + "_D" + str(D);
  const std::string body = "  v4cuda::hcPost<" + e.inType(0) + ", " + e.inType(1) + ", " + e.inType(2) + ", " +
                           e.inType(3) + ", " + e.outType(0) + ", " + str(e.tokens()) + ", " + str(hc) + ", " + str(D) + ">(" +
                           e.in(0) + ", " + e.in(1) + ", " + e.in(2) + ", " + e.in(3) + ", out0, dyn);\n";
  e.expect("v4cuda::kElementwiseThreads == " + str(kElementwiseThreads), "the block size");
  return e.kernel(entry, body, kElementwiseThreads, elementwiseGrid(e.tokens() * D));
}

std::string hcEpsTag(const StepView &view) {
  return "_ne" + numberTag(view.attrFloat("norm_eps")) + "_he" + numberTag(view.attrFloat("hc_eps"));
}

// The split shape of hc_pre / hc_head / hc_post_pre (T <= 8): PARTS blocks
// of one 16-byte fn load per lane across the HC*D columns, and the entry's
// scratch (partial dots, the hand-off counter).
struct HcSplit {
  bool split = false;
  int64_t parts = 0, scratch = 0;
  std::string globals;
};
HcSplit hcSplit(Emit &e, const std::string &entry, int64_t fnOperand, int64_t width, int64_t rows) {
  HcSplit s;
  s.split = e.tokens() <= kGemvMaxTokens;
  if (!s.split)
    return s;
  const v4rt::DType fnType = e.view.in(fnOperand).dtype;
  const int64_t chunk = 32 * (16 / static_cast<int64_t>(v4rt::dtypeSize(fnType)));
  e.require(width % (chunk / 32) == 0, "hc * D must be a multiple of " + str(chunk / 32) + " (16-byte fn loads)");
  s.parts = ceilDiv(width, chunk);
  s.scratch = e.tokens() * rows * s.parts;
  s.globals = "static __device__ float " + entry + "_partials[" + str(s.scratch) + "];\nstatic __device__ unsigned int " +
              entry + "_done;\n";
  e.expect("v4cuda::hcSplitChunk<" + std::string(cTypeName(fnType)) + ">() == " + str(chunk) +
               " && v4cuda::hcSplitScratch<" + str(e.tokens()) + ", " + str(rows) + ", " + str(s.parts) +
               ">() == " + str(s.scratch),
           "the split mHC geometry");
  return s;
}
std::string hcSplitArgs(const std::string &entry) { return entry + "_partials, &" + entry + "_done, "; }
// The prefill shape (T > 8): token tiles of kHcTileTokens per block.
void expectHcTile(Emit &e) {
  e.expect("v4cuda::kHcThreads == " + str(kHcThreads) + " && v4cuda::kHcTileTokens == " + str(kHcTileTokens),
           "the mHC geometry");
}

EmittedKernel emitHcPre(const StepView &view) {
  Emit e(view);
  e.requireFloatIns({0});
  e.requireFloatOuts({0, 1, 2});
  const int64_t D = e.outWidth(0, "collapsed");
  const int64_t hc = hcStreams(e, e.inWidth(0, "X"), D);
  checkMixWeights(e, 1, (2 + hc) * hc, hc * D, 3);
  e.require(e.outWidth(1, "post") == hc && e.outWidth(2, "comb") == hc * hc, "post must be [T, hc], comb [T, hc*hc]");
  const int64_t iters = view.attrInt("sinkhorn_iters");
  const bool split = e.tokens() <= kGemvMaxTokens;
  const std::string entry = e.entryBase(split ? "split" : "tile") + "_hc" + str(hc) + "_D" + str(D) + hcEpsTag(view) +
                            "_it" + str(iters);
  const HcSplit sp = hcSplit(e, entry, 1, hc * D, (2 + hc) * hc);
  const std::string body = "  v4cuda::hcPre" + std::string(split ? "Split" : "Tile") + "<" + e.inType(0) + ", " +
                           e.inType(1) + ", " + e.inType(2) + ", " + e.inType(3) + ", " + e.outType(0) + ", " +
                           e.outType(1) + ", " + e.outType(2) + ", " + str(e.tokens()) + ", " + str(hc) + ", " + str(D) +
                           (split ? ", " + str(sp.parts) : "") + ">(" + e.in(0) + ", " + e.in(1) + ", " + e.in(2) +
                           ", " + e.in(3) + ", out0, out1, out2, " + floatLiteral(view.attrFloat("norm_eps")) + ", " +
                           floatLiteral(view.attrFloat("hc_eps")) + ", " + str(iters) + ", " +
                           (split ? hcSplitArgs(entry) : "") + "dyn);\n";
  expectHcTile(e);
  return e.kernel(entry, body, kHcThreads, gridX(split ? sp.parts : ceilDiv(e.tokens(), kHcTileTokens)), sp.globals);
}

EmittedKernel emitHcHead(const StepView &view) {
  Emit e(view);
  e.requireFloatIns({0});
  e.requireFloatOuts({0});
  const int64_t D = e.outWidth(0, "result");
  const int64_t hc = hcStreams(e, e.inWidth(0, "X"), D);
  checkMixWeights(e, 1, hc, hc * D, 1);
  const bool split = e.tokens() <= kGemvMaxTokens;
  const std::string entry = e.entryBase(split ? "split" : "tile") + "_hc" + str(hc) + "_D" + str(D) + hcEpsTag(view);
  const HcSplit sp = hcSplit(e, entry, 1, hc * D, hc);
  const std::string body = "  v4cuda::hcHead" + std::string(split ? "Split" : "Tile") + "<" + e.inType(0) + ", " +
                           e.inType(1) + ", " + e.inType(2) + ", " + e.inType(3) + ", " + e.outType(0) + ", " +
                           str(e.tokens()) + ", " + str(hc) + ", " + str(D) +
                           (split ? ", " + str(sp.parts) : "") + ">(" + e.in(0) + ", " + e.in(1) + ", " + e.in(2) +
                           ", " + e.in(3) + ", out0, " + floatLiteral(view.attrFloat("norm_eps")) + ", " +
                           floatLiteral(view.attrFloat("hc_eps")) + ", " + (split ? hcSplitArgs(entry) : "") +
                           "dyn);\n";
  expectHcTile(e);
  return e.kernel(entry, body, kHcThreads, gridX(split ? sp.parts : ceilDiv(e.tokens(), kHcTileTokens)), sp.globals);
}

// v4.hc_post_pre X, y, post, comb, fn, base, scale -> new_streams, collapsed, new_post, new_comb.
EmittedKernel emitHcPostPre(const StepView &view) {
  Emit e(view);
  e.requireFloatIns({0, 1, 2, 3});
  e.requireFloatOuts({0, 1, 2, 3});
  const int64_t D = e.inWidth(1, "y");
  const int64_t hc = hcStreams(e, e.inWidth(0, "X"), D);
  e.require(e.inWidth(2, "post") == hc && e.inWidth(3, "comb") == hc * hc, "post must be [T, hc], comb [T, hc*hc]");
  checkMixWeights(e, 4, (2 + hc) * hc, hc * D, 3);
  e.require(e.outWidth(0, "new_streams") == hc * D && e.outWidth(1, "collapsed") == D &&
                e.outWidth(2, "new_post") == hc && e.outWidth(3, "new_comb") == hc * hc,
            "results must be new_streams [T, hc*D], collapsed [T, D], new_post [T, hc], new_comb [T, hc*hc]");
  const int64_t iters = view.attrInt("sinkhorn_iters");
  const bool split = e.tokens() <= kGemvMaxTokens;
  const std::string entry = e.entryBase(split ? "split" : "tile") + "_hc" + str(hc) + "_D" + str(D) + hcEpsTag(view) +
                            "_it" + str(iters);
  const HcSplit sp = hcSplit(e, entry, 4, hc * D, (2 + hc) * hc);
  std::string types;
  for (int64_t i = 0; i < 7; ++i)
    types += e.inType(i) + ", ";
  for (int64_t r = 0; r < 4; ++r)
    types += e.outType(r) + ", ";
  std::string args;
  for (int64_t i = 0; i < 7; ++i)
    args += e.in(i) + ", ";
  const std::string body = "  v4cuda::hcPostPre" + std::string(split ? "Split" : "Tile") + "<" + types +
                           str(e.tokens()) + ", " + str(hc) + ", " + str(D) +
                           (split ? ", " + str(sp.parts) : "") + ">(" + args + "out0, out1, out2, out3, " +
                           floatLiteral(view.attrFloat("norm_eps")) + ", " + floatLiteral(view.attrFloat("hc_eps")) +
                           ", " + str(iters) + ", " + (split ? hcSplitArgs(entry) : "") + "dyn);\n";
  expectHcTile(e);
  return e.kernel(entry, body, kHcThreads, gridX(split ? sp.parts : ceilDiv(e.tokens(), kHcTileTokens)), sp.globals);
}

// ---- routers -------------------------------------------------------------------

// Checks gate [E, D] and the [T, k] results; returns E.
int64_t checkRouter(const Emit &e, int64_t D, int64_t k) {
  const auto &gate = e.inShape(1);
  e.require(gate.size() == 2 && gate[1] == D && gate[0] > 0 && gate[0] <= 4096,
            "gate must be [E, " + str(D) + "] with E <= 4096, got " + Emit::shapeText(gate));
  e.require(k >= 1 && k <= gate[0] && k <= 32, "top-k must be in [1, min(E, 32)], got " + str(k));
  e.require(e.outWidth(0, "weights") == k && e.outWidth(1, "experts") == k, "results must be [T, " + str(k) + "]");
  e.requireFloat(e.view.out(0).dtype, "weights");
  e.requireDtype(e.view.out(1), v4rt::DType::I32, "experts");
  return gate[0];
}

// Parts of D per expert in the split router: the fewest (a power of two) that
// give >= kSpreadBlocks blocks of 8 warps, each part at least one 16-byte
// load per lane.
int64_t routerParts(int64_t E, int64_t D, int64_t gateElemBytes) {
  const int64_t perLoad = std::max<int64_t>(1, 16 / gateElemBytes);
  int64_t parts = 1;
  while (ceilDiv(E * parts, kRouterSplitWarps) < kSpreadBlocks && D / (parts * 2) >= 32 * perLoad)
    parts *= 2;
  return parts;
}

EmittedKernel emitRouter(const StepView &view) {
  Emit e(view);
  e.requireFloatIns({0, 1, 2});
  const int64_t D = e.inWidth(0, "h"), k = view.attrInt("top_k");
  const int64_t E = checkRouter(e, D, k);
  e.require(e.inShape(2) == std::vector<int64_t>{E}, "bias must be [" + str(E) + "]");
  const double scaling = view.attrFloat("routed_scaling");
  const std::string types = e.inType(0) + ", " + e.inType(1) + ", " + e.inType(2) + ", " + e.outType(0) + ", ";
  const std::string args = "(" + e.in(0) + ", " + e.in(1) + ", " + e.in(2) + ", out0, out1, " + floatLiteral(scaling);
  const std::string tail = "_D" + str(D) + "_E" + str(E) + "_k" + str(k) + "_s" + numberTag(scaling);
  if (e.tokens() <= kGemvMaxTokens) {
    // Decode: the gate spread over the GPU, a warp per (expert, part of D).
    const int64_t parts = routerParts(E, D, static_cast<int64_t>(v4rt::dtypeSize(view.in(1).dtype)));
    const std::string entry = e.entryBase("split") + tail + "_P" + str(parts);
    const int64_t scratch = e.tokens() * E * parts;
    const std::string globals = "static __device__ float " + entry + "_partials[" + str(scratch) +
                                "];\nstatic __device__ unsigned int " + entry + "_done;\n";
    const std::string body = "  v4cuda::routerSplit<" + types + str(e.tokens()) + ", " + str(D) + ", " + str(E) +
                             ", " + str(k) + ", " + str(parts) + ">" + args + ", " + entry + "_partials, &" + entry +
                             "_done, dyn);\n";
    e.expect("v4cuda::kRouterSplitThreads == " + str(kRouterSplitWarps * 32) + " && v4cuda::routerSplitScratch<" +
                 str(e.tokens()) + ", " + str(E) + ", " + str(parts) + ">() == " + str(scratch),
             "the split router");
    return e.kernel(entry, body, static_cast<uint32_t>(kRouterSplitWarps * 32), gridX(ceilDiv(E * parts, kRouterSplitWarps)), globals);
  }
  // Prefill: blocks of 8 tokens (4 past 512 experts, 1 past 1024: shared
  // [tokens][E] score arrays), each gate row loaded once per block.
  const int64_t tokensPerBlock = E <= 512 ? 8 : (E <= 1024 ? 4 : 1);
  const std::string entry = e.entryBase() + tail;
  const std::string body = "  v4cuda::router<" + types + str(D) + ", " + str(E) + ", " + str(k) + ">" + args +
                           ", dyn);\n";
  e.expect("v4cuda::kRouterThreads == " + str(kRouterThreads) + " && v4cuda::routerTokensPerBlock<" + str(E) +
               ">() == " + str(tokensPerBlock),
           "the router geometry");
  return e.kernel(entry, body, kRouterThreads, gridX(ceilDiv(e.tokens(), tokensPerBlock)));
}

EmittedKernel emitHashRouter(const StepView &view) {
  Emit e(view);
  e.requireFloatIns({0, 1});
  e.requireDtype(view.in(2), v4rt::DType::I32, "tid2eid");
  e.requireDtype(view.in(3), v4rt::DType::I32, "ids");
  const auto &table = e.inShape(2);
  e.require(table.size() == 2 && table[0] > 0, "tid2eid must be [V, k], got " + Emit::shapeText(table));
  const int64_t D = e.inWidth(0, "h"), vocab = table[0], k = table[1];
  const int64_t E = checkRouter(e, D, k);
  const double scaling = view.attrFloat("routed_scaling");
  const std::string entry = e.entryBase() + "_D" + str(D) + "_E" + str(E) + "_k" + str(k) + "_V" + str(vocab) + "_s" +
                            numberTag(scaling);
  const std::string body = "  v4cuda::hashRouter<" + e.inType(0) + ", " + e.inType(1) + ", " + e.outType(0) + ", " +
                           str(D) + ", " + str(E) + ", " + str(k) + ", " + str(vocab) + ">(" + e.in(0) + ", " +
                           e.in(1) + ", " + e.in(2) + ", " + e.in(3) + ", out0, out1, " + floatLiteral(scaling) +
                           ", dyn);\n";
  e.expect("v4cuda::kRouterThreads == " + str(kRouterThreads), "the block size");
  return e.kernel(entry, body, kRouterThreads, gridX(e.tokens()));
}

} // namespace

std::vector<NamedEmitter> denseEmitters() {
  return {
      {"v4.embed", emitEmbed},
      {"v4.add", emitAdd},
      {"v4.rms_norm", emitRmsNorm},
      {"v4.linear", emitLinear},
      {"v4.grouped_linear", emitGroupedLinear},
      {"v4.swiglu", emitSwiglu},
      {"v4.rope", emitRope},
      {"v4.hc_expand", emitHcExpand},
      {"v4.hc_pre", emitHcPre},
      {"v4.hc_post", emitHcPost},
      {"v4.hc_head", emitHcHead},
      {"v4.router", emitRouter},
      {"v4.hash_router", emitHashRouter},
      {"v4.norm_linear", emitNormLinear},
      {"v4.linear_swiglu", emitLinearSwiglu},
      {"v4.hc_post_pre", emitHcPostPre},
      {"v4.linear_fp8", emitLinearFp8},
  };
}

} // namespace v4c::cuda
