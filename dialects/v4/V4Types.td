//===- V4Types.td - types of the v4 dialect ----------------*- tablegen -*-===//

#ifndef V4_TYPES_TD
#define V4_TYPES_TD

include "dialects/v4/V4Dialect.td"
include "dialects/v4/V4Enums.td"

def V4_CacheType : TypeDef<V4_Dialect, "Cache"> {
  let mnemonic = "cache";
  let summary = "decode state of one attention layer, threaded as an SSA value";
  let description = [{
    A cache is a matrix of `rows x width` elements whose meaning depends on
    `kind`:

    - `window`: ring of the last W kv rows (`rows` = W, `width` = head_dim;
      slot = position mod W).
    - `compress_state`: the compressor's previous and pending window
      (`rows` = 2m, `width` = 2*Cin: row r holds `[kv | gate + position_bias]`).
    - `entries`: compressed entries, one row per `rate` tokens; `rows` is the
      capacity, `?` (the default, omitted when printed) while it is unbounded.

    The element type is the storage format of a row (docs/quantization.md,
    "KV cache"): `f32`, `bf16`, or `f8E4M3FN`, which means V4's mixed row:
    the first `width - rope` channels are e4m3 codes with one ue8m0 scale per
    64 channels, the last `rope` channels (the rotary part) are bf16. `rope`
    is only written for `f8E4M3FN` (0, the default, stores every channel as
    e4m3). Ops compute in f32: a store rounds a row to the format, and readers
    see exactly the stored values. Compressor state stays f32 or bf16 (it is a
    running pool, not stored kv).

    ```mlir
    !v4.cache<window, rows = 8, width = 32, f32>
    !v4.cache<compress_state, rows = 8, width = 128, f32>
    !v4.cache<entries, width = 32, rate = 4, f32>
    !v4.cache<entries, rows = 64, width = 32, rate = 4, bf16>
    !v4.cache<window, rows = 128, width = 512, rope = 64, f8E4M3FN>
    ```
  }];
  let parameters = (ins
    EnumParameter<V4_CacheKind>:$kind,
    "int64_t":$rows,
    "int64_t":$width,
    "int64_t":$rate,
    "::mlir::Type":$elementType,
    "int64_t":$ropeWidth
  );
  // ropeWidth defaults to 0 (every format but f8E4M3FN has no split).
  let skipDefaultBuilders = 1;
  let builders = [
    TypeBuilder<(ins "CacheKind":$kind, "int64_t":$rows, "int64_t":$width, "int64_t":$rate,
                     "::mlir::Type":$elementType, CArg<"int64_t", "0">:$ropeWidth), [{
      return $_get($_ctxt, kind, rows, width, rate, elementType, ropeWidth);
    }]>
  ];
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    bool isWindow() const { return getKind() == CacheKind::window; }
    bool isCompressState() const { return getKind() == CacheKind::compress_state; }
    bool isEntries() const { return getKind() == CacheKind::entries; }
    bool hasStaticRows() const { return !::mlir::ShapedType::isDynamic(getRows()); }
    // Stores rows narrower than f32 (bf16 or fp8): a store rounds.
    bool isNarrowStorage() const { return !getElementType().isF32(); }
    // Whether rows of element type `rowElement` may be stored: the cache's own
    // type, or f32 rows that a narrow cache rounds on store.
    bool storesRowsOf(::mlir::Type rowElement) const {
      return rowElement == getElementType() || (rowElement.isF32() && isNarrowStorage());
    }
  }];
}

class V4_CacheOfKind<string kind> : Type<
    And<[CPred<"::llvm::isa<::v4c::v4::CacheType>($_self)">,
         CPred<"::llvm::cast<::v4c::v4::CacheType>($_self).getKind() == "
               "::v4c::v4::CacheKind::" # kind>]>,
    "!v4.cache<" # kind # ", ...>", "::v4c::v4::CacheType">;

def V4_WindowCache : V4_CacheOfKind<"window">;
def V4_CompressStateCache : V4_CacheOfKind<"compress_state">;
def V4_EntriesCache : V4_CacheOfKind<"entries">;

#endif // V4_TYPES_TD
