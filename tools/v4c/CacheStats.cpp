// KV cache bytes per token for `v4c compile --stats` (see CacheStats.h).
#include "tools/v4c/CacheStats.h"

#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "common/Error.h"
#include "dialects/plan/PlanOps.h"
#include "runtime/cpu/CacheStorage.h"

namespace v4c {
namespace {

v4rt::DType cacheDType(plan::CacheSlotOp slot) {
  mlir::Type element = slot.getElementType();
  if (element.isF32())
    return v4rt::DType::F32;
  if (element.isBF16())
    return v4rt::DType::BF16;
  if (element.isFloat8E4M3FN())
    return v4rt::DType::F8E4M3;
  throw Error("cache slot " + slot.getSymName().str() + " stores a type --stats cannot size");
}

} // namespace

void printCacheStats(mlir::ModuleOp planned) {
  constexpr int64_t kTokens = 1'000'000;
  double perToken = 0.0;
  uint64_t fixedBytes = 0, entryBytesAtTokens = 0;
  int64_t entrySlots = 0;
  std::string dtype; // of the kv slots (window, entries); compressor state is always f32
  for (auto slot : planned.getOps<plan::CacheSlotOp>()) {
    const v4rt::CacheRowFormat format{cacheDType(slot), static_cast<int64_t>(slot.getRopeWidth().value_or(0))};
    const uint64_t rowBytes = v4rt::cacheRowBytes(format, slot.getWidth());
    if (slot.getKind() == "entries") {
      perToken += static_cast<double>(rowBytes) / static_cast<double>(slot.getRate());
      entryBytesAtTokens += rowBytes * static_cast<uint64_t>(kTokens / slot.getRate());
      ++entrySlots;
    } else {
      fixedBytes += rowBytes * static_cast<uint64_t>(slot.getRows());
    }
    if (slot.getKind() != "compress_state")
      dtype = v4rt::cacheDTypeName(format.dtype);
  }
  const uint64_t atTokens = fixedBytes + entryBytesAtTokens;
  std::printf("kv cache %s: %.1f bytes/token in %lld entry slots, %llu bytes fixed per session "
              "(windows, compressor state), %.3f GB at 1M tokens\n",
              dtype.c_str(), perToken, static_cast<long long>(entrySlots),
              static_cast<unsigned long long>(fixedBytes), static_cast<double>(atTokens) / 1e9);
  std::printf("%s\n", nlohmann::json{{"kv_cache",
                                      {{"dtype", dtype},
                                       {"bytes_per_token", perToken},
                                       {"fixed_bytes", fixedBytes},
                                       {"bytes_at_1m_tokens", atTokens}}}}
                          .dump()
                          .c_str());
}

} // namespace v4c
