// GPU artifacts for v4bench-agent: the CUDA backend (runtime/cuda) with the
// prefix cache's device -> pinned host -> disk tiers. Built only with the
// CUDA backend (V4BENCH_HAVE_CUDA); otherwise GPU artifacts are an error.
#include <stdexcept>

#include "bench/AgentTraceBackend.h"

#ifdef V4BENCH_HAVE_CUDA
#include "runtime/cuda/CudaModel.h"
#include "runtime/cuda/CudaPrefixCache.h"
#include "runtime/cuda/CudaSession.h"
#endif

namespace v4bench {

#ifdef V4BENCH_HAVE_CUDA
namespace {

class CudaTraceSession final : public TraceSession {
public:
  CudaTraceSession(const v4rt::cuda::CudaModel &model, v4rt::PrefixCache *cache)
      : session_(model, options(cache)), vocab_(model.vocabSize()) {}
  std::vector<float> prefillLast(const std::vector<int32_t> &ids, int64_t &reused) override {
    std::vector<float> logits(static_cast<size_t>(vocab_));
    reused = session_.prefill(ids.data(), static_cast<int64_t>(ids.size()), logits.data(), /*lastRowOnly=*/true);
    return logits;
  }
  std::vector<float> decode(int32_t id) override {
    std::vector<float> logits(static_cast<size_t>(vocab_));
    session_.decode(id, logits.data());
    return logits;
  }

private:
  static v4rt::cuda::CudaSessionOptions options(v4rt::PrefixCache *cache) {
    v4rt::cuda::CudaSessionOptions options;
    options.prefixCache = cache;
    return options;
  }
  v4rt::cuda::CudaSession session_;
  int64_t vocab_;
};

class CudaTraceModel final : public TraceModel {
public:
  CudaTraceModel(const std::string &path, int64_t maxContext, bool verifyChecksums) {
    v4rt::cuda::CudaLoadOptions load;
    load.verifyChecksums = verifyChecksums;
    load.maxContext = maxContext;
    load.deviceKvSessions = 1; // one session at a time: the rest of the memory is the device tier's
    model_ = v4rt::cuda::CudaModel::load(path, load);
  }
  int64_t vocabSize() const override { return model_->vocabSize(); }
  void attachCache(const TraceCacheOptions &options) override {
    v4rt::PrefixCacheOptions cache;
    cache.directory = options.directory;
    if (options.diskBytes)
      cache.diskBytes = options.diskBytes;
    cache.hostBytes = options.hostBytes;
    cache.strategy = v4rt::parseSwaCacheStrategy(options.swaCache);
    cache_ = v4rt::cuda::makeCudaPrefixCache(*model_, cache, options.deviceBytes);
  }
  TraceCacheStats cacheStats() const override {
    const v4rt::PrefixCacheStats stats = cache_->stats();
    TraceCacheStats out;
    for (const v4rt::kvcache::TierStats &tier : stats.tiers.tiers)
      out.tiers.push_back({tier.displayName(), tier.pages, tier.bytes, tier.pinnedBytes, tier.pinFailures});
    out.windowTokensRecomputed = stats.windowTokensRecomputed;
    return out;
  }
  std::unique_ptr<TraceSession> newSession() override {
    return std::make_unique<CudaTraceSession>(*model_, cache_.get());
  }

private:
  std::unique_ptr<v4rt::cuda::CudaModel> model_;
  std::unique_ptr<v4rt::PrefixCache> cache_; // destroyed first: its device tier frees device memory
};

} // namespace

std::unique_ptr<TraceModel> openCudaTraceModel(const std::string &path, int64_t maxContext, bool verifyChecksums) {
  return std::make_unique<CudaTraceModel>(path, maxContext, verifyChecksums);
}
#else
std::unique_ptr<TraceModel> openCudaTraceModel(const std::string &path, int64_t, bool) {
  throw std::runtime_error(path + ": targets '" + artifactTarget(path) +
                           "', but v4bench-agent was built without the CUDA backend (no cuda.h at build time)");
}
#endif

} // namespace v4bench
