// !v4.cache: assembly syntax and verification.
//
//   !v4.cache<window, rows = 8, width = 32, f32>
//   !v4.cache<compress_state, rows = 8, width = 128, bf16>
//   !v4.cache<entries, width = 32, rate = 4, f32>          (rows = ?)
//   !v4.cache<entries, rows = 64, width = 32, rate = 4, f32>
//   !v4.cache<window, rows = 8, width = 32, rope = 4, f8E4M3FN>  (e4m3 + bf16 rope tail)
#include "dialects/v4/V4Types.h"

#include "dialects/v4/V4Dialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace v4c::v4;

#include "dialects/v4/V4Enums.cpp.inc"

#define GET_TYPEDEF_CLASSES
#include "dialects/v4/V4Types.cpp.inc"

void V4Dialect::registerTypes() {
  addTypes<
#define GET_TYPEDEF_LIST
#include "dialects/v4/V4Types.cpp.inc"
      >();
}

Type CacheType::parse(AsmParser &parser) {
  MLIRContext *context = parser.getContext();
  SMLoc kindLoc = parser.getCurrentLocation();
  StringRef kindName;
  if (parser.parseLess() || parser.parseKeyword(&kindName))
    return {};
  std::optional<CacheKind> kind = symbolizeCacheKind(kindName);
  if (!kind) {
    parser.emitError(kindLoc) << "unknown cache kind '" << kindName
                              << "'; expected window, compress_state or entries";
    return {};
  }

  // `, key = value` fields in any order, then `, element-type >`.
  int64_t rows = ShapedType::kDynamic, width = 0, rate = 0, ropeWidth = 0;
  bool sawWidth = false;
  Type elementType;
  while (true) {
    if (parser.parseComma())
      return {};
    StringRef key;
    if (failed(parser.parseOptionalKeyword(&key, {"rows", "width", "rate", "rope"}))) {
      if (parser.parseType(elementType) || parser.parseGreater())
        return {};
      break;
    }
    if (parser.parseEqual())
      return {};
    if (key == "rows") {
      if (succeeded(parser.parseOptionalQuestion()))
        rows = ShapedType::kDynamic;
      else if (parser.parseInteger(rows))
        return {};
    } else if (key == "width") {
      if (parser.parseInteger(width))
        return {};
      sawWidth = true;
    } else if (key == "rope") {
      if (parser.parseInteger(ropeWidth))
        return {};
    } else if (parser.parseInteger(rate)) {
      return {};
    }
  }
  if (!sawWidth) {
    parser.emitError(kindLoc) << "!v4.cache needs `width = N` (channels per row)";
    return {};
  }
  return parser.getChecked<CacheType>(context, *kind, rows, width, rate, elementType, ropeWidth);
}

void CacheType::print(AsmPrinter &printer) const {
  printer << '<' << stringifyCacheKind(getKind());
  // Unbounded entry caches are the default and print without rows.
  if (!(isEntries() && !hasStaticRows())) {
    printer << ", rows = ";
    if (hasStaticRows())
      printer << getRows();
    else
      printer << '?';
  }
  printer << ", width = " << getWidth();
  if (isEntries())
    printer << ", rate = " << getRate();
  if (getRopeWidth() != 0)
    printer << ", rope = " << getRopeWidth();
  printer << ", " << getElementType() << '>';
}

LogicalResult CacheType::verify(function_ref<InFlightDiagnostic()> emitError,
                                CacheKind kind, int64_t rows, int64_t width,
                                int64_t rate, Type elementType, int64_t ropeWidth) {
  StringRef kindName = stringifyCacheKind(kind);
  const bool fp8 = elementType && elementType.isFloat8E4M3FN();
  if (!elementType || !(elementType.isF32() || elementType.isBF16() || fp8))
    return emitError() << "!v4.cache element type must be f32, bf16 or f8E4M3FN, got "
                       << elementType;
  if (width <= 0)
    return emitError() << "!v4.cache<" << kindName << "> width must be positive, got "
                       << width;
  if (!fp8 && ropeWidth != 0)
    return emitError() << "`rope = " << ropeWidth
                       << "` is only for f8E4M3FN caches (their bf16 rope channels); remove it "
                          "from the "
                       << elementType << " cache";
  if (fp8 && (ropeWidth < 0 || ropeWidth >= width))
    return emitError() << "!v4.cache rope = " << ropeWidth << " must be in [0, width = " << width
                       << "): the last `rope` channels are bf16, the others e4m3 (a cache "
                          "with no e4m3 channel is bf16)";
  if (fp8 && kind == CacheKind::compress_state)
    return emitError() << "!v4.cache<compress_state> cannot be f8E4M3FN: the compressor "
                          "state is a running pool, not stored kv; keep it f32 (or bf16)";
  bool dynamicRows = ShapedType::isDynamic(rows);
  if (kind == CacheKind::entries) {
    if (rate <= 0)
      return emitError() << "!v4.cache<entries> needs `rate = m` with m > 0 (tokens "
                            "per compressed entry), got "
                         << rate;
    if (!dynamicRows && rows < 0)
      return emitError() << "!v4.cache<entries> rows must be >= 0 or `?`, got " << rows;
    return success();
  }
  if (rate != 0)
    return emitError() << "only !v4.cache<entries> has a rate; remove `rate = " << rate
                       << "` from the " << kindName << " cache";
  if (dynamicRows || rows <= 0)
    return emitError() << "!v4.cache<" << kindName
                       << "> needs a static positive `rows = N`"
                       << (kind == CacheKind::window ? " (the window size W)"
                                                     : " (2 * rate)");
  if (kind == CacheKind::compress_state && (rows % 2 != 0 || width % 2 != 0))
    return emitError() << "!v4.cache<compress_state> rows (2m) and width (2*Cin) must "
                          "be even, got rows = "
                       << rows << ", width = " << width;
  return success();
}
