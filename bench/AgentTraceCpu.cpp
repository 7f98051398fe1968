// cpu artifacts for v4bench-agent: the C API (runtime/api/v4rt.hpp).
#include <stdexcept>

#include "bench/AgentTraceBackend.h"
#include "runtime/api/v4rt.hpp"
#include "runtime/artifact/ArtifactReader.h"

namespace v4bench {

const TraceTier *TraceCacheStats::find(const std::string &prefix) const {
  for (const TraceTier &tier : tiers)
    if (tier.name.rfind(prefix, 0) == 0)
      return &tier;
  return nullptr;
}

std::string artifactTarget(const std::string &path) {
  v4rt::OpenOptions open;
  open.verifyChecksums = false; // the backend that runs it checks them
  return v4rt::Artifact::open(path, open)->program().target;
}

namespace {

class CpuTraceSession final : public TraceSession {
public:
  explicit CpuTraceSession(const v4rt::ModelHandle &model) : session_(model) {}
  std::vector<float> prefillLast(const std::vector<int32_t> &ids, int64_t &reused) override {
    return session_.prefillLast(ids, &reused);
  }
  std::vector<float> decode(int32_t id) override { return session_.decode(id); }

private:
  v4rt::SessionHandle session_;
};

class CpuTraceModel final : public TraceModel {
public:
  CpuTraceModel(const std::string &path, unsigned threads, bool verifyChecksums)
      : model_(path, threads, verifyChecksums) {}
  int64_t vocabSize() const override { return model_.vocabSize(); }
  void attachCache(const TraceCacheOptions &options) override {
    if (options.deviceBytes > 0)
      throw std::runtime_error("--cache-device-bytes: a device page tier needs a GPU artifact (this one targets cpu)");
    model_.attachCache(options.directory, options.diskBytes, options.hostBytes, "", options.swaCache);
    hasHost_ = options.hostBytes > 0;
    hasDisk_ = !options.directory.empty();
  }
  TraceCacheStats cacheStats() const override {
    const v4rt_cache_stats stats = model_.cacheStats();
    TraceCacheStats out;
    if (hasHost_)
      out.tiers.push_back({stats.host_pinned ? "host (pinned)" : "host", stats.host_pages, stats.host_bytes,
                           stats.host_pinned_bytes, stats.host_pin_failures});
    if (hasDisk_)
      out.tiers.push_back({"disk", stats.disk_pages, stats.disk_bytes, 0, 0});
    out.windowTokensRecomputed = stats.window_tokens_recomputed;
    return out;
  }
  std::unique_ptr<TraceSession> newSession() override { return std::make_unique<CpuTraceSession>(model_); }

private:
  v4rt::ModelHandle model_;
  bool hasHost_ = false, hasDisk_ = false;
};

} // namespace

std::unique_ptr<TraceModel> openCpuTraceModel(const std::string &path, unsigned threads, bool verifyChecksums) {
  return std::make_unique<CpuTraceModel>(path, threads, verifyChecksums);
}

} // namespace v4bench
