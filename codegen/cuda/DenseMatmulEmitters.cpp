// Emitters of the dense family's matmuls (include/v4cuda/DenseLinear.cuh, DenseMma.cuh,
// DenseWgmma.cuh, DenseWgmmaFp8.cuh, Quant.cuh): linear, grouped_linear, the
// norm_linear and linear_swiglu fusions, linear_fp8. One tile choice
// (matmulShape: GEMV, FFMA, wmma, wgmma, e4m3 wgmma) and one shared-memory
// account (matmulSharedBytes) serve them all; launch geometry mirrors the
// headers' comments and is asserted in each entry.
#include <algorithm>

#include "codegen/cuda/CudaCodegen.h"
#include "codegen/cuda/DenseEmit.h"

namespace v4c::cuda::dense {
namespace {

constexpr uint32_t kMatmulThreads = 256;      // DenseLinear.cuh kGemmThreads = 8 warps (GEMV)
constexpr int64_t kGemvRowsPerBlock = 8 * 2; // kGemvWarps * kGemvRowsPerWarp
constexpr int64_t kGemmBK = 16, kGemmPad = 4;       // DenseLinear.cuh (FFMA tile)
constexpr int64_t kMmaBK = 32, kMmaPad = 8;         // DenseMma.cuh (tensor-core tile)
constexpr int64_t kWgmmaBK = 64, kWgmmaStages = 4;  // wgmma tile: one 128-byte swizzle row of bf16, 4 cp.async stages
constexpr int64_t kWgmmaAlignSlack = 1024;          // the tile base is rounded up to 1024 bytes
constexpr int64_t kWgmmaFp8Stages = 4, kWgmmaFp8Group = 128; // DenseWgmmaFp8.cuh: one 128-byte row of e4m3 per stage, 4 stages
constexpr int64_t kDefaultSharedLimit = 48 * 1024;

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

} // namespace

std::vector<NamedEmitter> matmulEmitters() {
  return {
      {"v4.linear", emitLinear},
      {"v4.grouped_linear", emitGroupedLinear},
      {"v4.norm_linear", emitNormLinear},
      {"v4.linear_swiglu", emitLinearSwiglu},
      {"v4.linear_fp8", emitLinearFp8},
  };
}

} // namespace v4c::cuda::dense
