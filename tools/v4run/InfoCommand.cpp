#include "tools/v4run/InfoCommand.h"

#include <cstdio>
#include <set>

#include <nlohmann/json.hpp>

#include "runtime/artifact/ArtifactReader.h"

namespace v4run {
namespace {

const char *bucketKindName(v4rt::BucketKind kind) { return kind == v4rt::BucketKind::Decode ? "decode" : "prefill"; }

} // namespace

int runInfo(const std::string &artifactPath, bool verifyChecksums) {
  v4rt::OpenOptions open;
  open.verifyChecksums = verifyChecksums; // throws on the first weight that does not match
  auto artifact = v4rt::Artifact::open(artifactPath, open);
  const v4rt::Program &program = artifact->program();

  uint64_t storedBytes = 0, dummyBytes = 0, dummyWeights = 0;
  for (const v4rt::Weight &weight : program.weights) {
    if (weight.isDummy()) {
      dummyBytes += weight.size;
      ++dummyWeights;
    } else {
      storedBytes += weight.size;
    }
  }
  std::printf("artifact  %s\nidentity  %s\nfile      %llu bytes\ntarget    %s\n", artifactPath.c_str(),
              artifact->identity().c_str(), static_cast<unsigned long long>(artifact->fileSize()),
              program.target.c_str());
  std::printf("options   %s\n", program.compileOptions.c_str());
  std::printf("weights   %zu (%llu bytes stored", program.weights.size(), static_cast<unsigned long long>(storedBytes));
  if (dummyWeights > 0)
    std::printf("; %llu dummy, %llu bytes generated at load from seed %llu",
                static_cast<unsigned long long>(dummyWeights), static_cast<unsigned long long>(dummyBytes),
                static_cast<unsigned long long>(program.dummySeed));
  std::printf(")\n");
  if (verifyChecksums)
    std::printf("checksums ok (%zu stored weights hashed)\n", program.weights.size() - dummyWeights);
  else
    std::printf("checksums not checked (--no-checksums)\n");
  std::printf("caches    %zu slots\n", program.caches.size());

  nlohmann::json buckets = nlohmann::json::array();
  std::printf("%-14s %-8s %7s %6s %7s %14s %9s\n", "bucket", "kind", "tokens", "batch", "steps", "arena_bytes",
              "kernels");
  for (const v4rt::Bucket &bucket : program.buckets) {
    std::set<uint32_t> kernels;
    for (const v4rt::Step &step : bucket.steps)
      kernels.insert(step.kernel);
    std::printf("%-14s %-8s %7lld %6lld %7zu %14llu %9zu\n", bucket.name.c_str(), bucketKindName(bucket.kind),
                static_cast<long long>(bucket.tokens), static_cast<long long>(bucket.batch), bucket.steps.size(),
                static_cast<unsigned long long>(bucket.arenaBytes), kernels.size());
    buckets.push_back({{"name", bucket.name},
                       {"kind", bucketKindName(bucket.kind)},
                       {"tokens", bucket.tokens},
                       {"batch", bucket.batch},
                       {"steps", bucket.steps.size()},
                       {"arena_bytes", bucket.arenaBytes},
                       {"distinct_kernels", kernels.size()}});
  }

  nlohmann::json modules = nlohmann::json::array();
  for (size_t m = 0; m < program.modules.size(); ++m) {
    size_t entries = 0;
    for (const v4rt::Kernel &kernel : program.kernels)
      entries += kernel.module == m ? 1 : 0;
    std::printf("module %zu  %s, cubin %zu bytes, %zu kernel entries (+ v4_fill_dummy)\n", m,
                program.modules[m].target.c_str(), program.modules[m].binary.size(), entries);
    modules.push_back({{"target", program.modules[m].target},
                       {"cubin_bytes", program.modules[m].binary.size()},
                       {"entries", entries}});
  }
  std::printf("kernels   %zu%s\n", program.kernels.size(),
              program.modules.empty() ? " (CPU builtins)" : " (generated entries)");

  const nlohmann::json line = {{"info",
                                {{"target", program.target},
                                 {"file_bytes", artifact->fileSize()},
                                 {"buckets", buckets},
                                 {"kernels", program.kernels.size()},
                                 {"modules", modules},
                                 {"weights", program.weights.size()},
                                 {"weight_bytes_stored", storedBytes},
                                 {"checksums", verifyChecksums ? "ok" : "not checked"},
                                 {"dummy_weights", dummyWeights},
                                 {"dummy", dummyWeights > 0},
                                 {"dummy_seed", program.dummySeed}}}};
  std::printf("%s\n", line.dump().c_str());
  return 0;
}

} // namespace v4run
