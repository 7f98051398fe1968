// Kernel counts before and after fusion for `v4c compile --stats`.
#include "tools/v4c/FusionStats.h"

#include <cstdio>

#include <nlohmann/json.hpp>

#include "mlir/Pass/PassManager.h"

#include "common/Error.h"
#include "dialects/plan/PlanOps.h"

namespace v4c {

KernelCounts countKernels(mlir::ModuleOp planned) {
  KernelCounts counts;
  for (auto bucket : planned.getOps<plan::BucketOp>()) {
    int64_t kernels = 0;
    bucket.getBodyBlock().walk([&](plan::LaunchOp) { ++kernels; });
    counts.emplace_back(bucket.getSymName().str(), kernels);
  }
  return counts;
}

KernelCounts countUnfusedKernels(mlir::ModuleOp imported, PipelineOptions options) {
  mlir::OwningOpRef<mlir::ModuleOp> clone(imported.clone());
  options.fuse = false;
  mlir::PassManager pm(imported.getContext());
  buildDefaultPipeline(pm, options);
  check(mlir::succeeded(pm.run(*clone)), "compiling without fusion for --stats failed");
  return countKernels(*clone);
}

void printFusionStats(const KernelCounts &unfused, const KernelCounts &fused) {
  check(unfused.size() == fused.size(), "internal error: fused and unfused compiles differ in buckets");
  std::printf("%-14s %-16s %10s %10s %8s\n", "bucket", "kernels per", "unfused", "fused", "saved");
  nlohmann::json rows = nlohmann::json::array();
  for (size_t i = 0; i < fused.size(); ++i) {
    const auto &[name, after] = fused[i];
    check(unfused[i].first == name, "internal error: bucket order differs without fusion");
    const int64_t before = unfused[i].second;
    const char *unit = name.rfind("decode", 0) == 0 ? "decode step" : "prefill chunk";
    std::printf("%-14s %-16s %10lld %10lld %7.1f%%\n", name.c_str(), unit,
                static_cast<long long>(before), static_cast<long long>(after),
                before ? 100.0 * static_cast<double>(before - after) / before : 0.0);
    rows.push_back({{"bucket", name}, {"kernels_unfused", before}, {"kernels_fused", after}});
  }
  std::printf("%s\n", nlohmann::json{{"fusion", rows}}.dump().c_str());
}

} // namespace v4c
