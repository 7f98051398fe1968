// The C API over Model and Session: exceptions stop here and become statuses.
#include "runtime/api/v4rt.h"

#include <exception>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "common/Error.h"
#include "runtime/DecodeBatch.h"
#include "runtime/Model.h"
#include "runtime/PrefixCache.h"
#include "runtime/Session.h"

struct v4rt_status_t {
  std::string message;
};
struct v4rt_model_t {
  std::unique_ptr<v4rt::Model> model;
  std::string identity;
  std::unique_ptr<v4rt::PrefixCache> cache; // sessions hold a pointer: freed after them
};
struct v4rt_session_t {
  std::unique_ptr<v4rt::Session> session;
  int64_t vocab = 0;
};

namespace {

template <typename Fn> v4rt_status guarded(Fn &&fn) {
  try {
    fn();
    return nullptr;
  } catch (const std::bad_alloc &) {
    return new v4rt_status_t{"out of memory"};
  } catch (const std::exception &e) {
    return new v4rt_status_t{e.what()};
  }
}

} // namespace

extern "C" {

const char *v4rt_status_message(v4rt_status status) {
  return status ? status->message.c_str() : "ok";
}
void v4rt_status_free(v4rt_status status) { delete status; }

v4rt_status v4rt_model_open(const char *path, const v4rt_model_options *options,
                            v4rt_model **out_model) {
  return guarded([&] {
    v4rt::LoadOptions load;
    if (options) {
      load.threads = options->threads;
      load.verifyChecksums = options->verify_checksums != 0;
    }
    auto handle = std::make_unique<v4rt_model_t>();
    handle->model = v4rt::Model::load(path ? path : "", load);
    handle->identity = handle->model->identity();
    *out_model = handle.release();
  });
}

void v4rt_model_close(v4rt_model *model) { delete model; }
int64_t v4rt_model_vocab_size(const v4rt_model *model) { return model->model->vocabSize(); }
const char *v4rt_model_identity(const v4rt_model *model) { return model->identity.c_str(); }

v4rt_status v4rt_model_attach_cache(v4rt_model *model, const v4rt_cache_options *options) {
  return guarded([&] {
    v4c::check(options != nullptr, "v4rt_model_attach_cache: options are required");
    v4rt::PrefixCacheOptions cache;
    cache.directory = options->directory ? options->directory : "";
    if (options->disk_bytes)
      cache.diskBytes = options->disk_bytes;
    cache.hostBytes = options->host_bytes;
    cache.tenantSalt = options->tenant_salt ? options->tenant_salt : "";
    cache.strategy = v4rt::parseSwaCacheStrategy(options->swa_cache ? options->swa_cache : "full");
    model->cache = std::make_unique<v4rt::PrefixCache>(*model->model, cache);
  });
}

v4rt_status v4rt_model_cache_stats(const v4rt_model *model, v4rt_cache_stats *out_stats) {
  return guarded([&] {
    v4c::check(model->cache != nullptr, "no KV cache attached: call v4rt_model_attach_cache first");
    const v4rt::PrefixCacheStats stats = model->cache->stats();
    v4rt_cache_stats out{};
    out.page_tokens = stats.pageTokens;
    out.prefill_tokens_saved = stats.prefillTokensSaved;
    out.pages_hit = stats.pagesHit;
    out.pages_missed = stats.pagesMissed;
    out.pages_rejected = stats.pagesRejected;
    out.pages_stored = stats.pagesStored;
    out.window_tokens_recomputed = stats.windowTokensRecomputed;
    out.page_bytes_stored = stats.pageBytesStored;
    out.io_failures = stats.ioFailures;
    for (const v4rt::kvcache::TierStats &tier : stats.tiers.tiers) {
      if (tier.name == "host") {
        out.host_pages = tier.pages;
        out.host_bytes = tier.bytes;
        out.host_pinned = tier.pinned ? 1 : 0;
        out.host_pinned_bytes = tier.pinnedBytes;
        out.host_pin_failures = tier.pinFailures;
      } else if (tier.name == "disk") {
        out.disk_pages = tier.pages;
        out.disk_bytes = tier.bytes;
        out.disk_corrupt = tier.corrupt;
        out.disk_orphans_removed = tier.orphansRemoved;
      }
    }
    *out_stats = out;
  });
}

v4rt_status v4rt_session_create(v4rt_model *model, v4rt_session **out_session) {
  return guarded([&] {
    auto handle = std::make_unique<v4rt_session_t>();
    handle->session = std::make_unique<v4rt::Session>(*model->model, model->cache.get());
    handle->vocab = model->model->vocabSize();
    *out_session = handle.release();
  });
}

void v4rt_session_close(v4rt_session *session) { delete session; }

v4rt_status v4rt_session_prefill(v4rt_session *session, const int32_t *ids, size_t count,
                                 float *logits) {
  return guarded([&] { session->session->prefill(ids, static_cast<int64_t>(count), logits); });
}

v4rt_status v4rt_session_prefill_last(v4rt_session *session, const int32_t *ids, size_t count,
                                      float *last_logits, int64_t *tokens_reused) {
  return guarded([&] {
    const int64_t reused = session->session->prefill(ids, static_cast<int64_t>(count), last_logits,
                                                     v4rt::PrefillLogits::LastRow);
    if (tokens_reused)
      *tokens_reused = reused;
  });
}

v4rt_status v4rt_session_decode(v4rt_session *session, int32_t id, float *logits) {
  return guarded([&] { session->session->decode(id, logits); });
}

int64_t v4rt_session_position(const v4rt_session *session) {
  return session->session->position();
}

v4rt_status v4rt_session_fork(const v4rt_session *session, int64_t position,
                              v4rt_session **out_session) {
  return guarded([&] {
    v4c::check(out_session != nullptr, "v4rt_session_fork: out_session is required");
    auto handle = std::make_unique<v4rt_session_t>();
    handle->session = session->session->fork(position);
    handle->vocab = session->vocab;
    *out_session = handle.release();
  });
}

v4rt_status v4rt_session_truncate(v4rt_session *session, int64_t position) {
  return guarded([&] { session->session->truncate(position); });
}

int64_t v4rt_session_prefill_tokens_computed(const v4rt_session *session) {
  return session->session->prefillTokensComputed();
}

v4rt_status v4rt_decode_batch(v4rt_session *const *sessions, size_t n, const int32_t *ids,
                              float *logits) {
  return guarded([&] {
    if (n == 0)
      return;
    v4c::check(sessions != nullptr && ids != nullptr, "v4rt_decode_batch: sessions and ids are required");
    std::vector<v4rt::Session *> batch(n);
    for (size_t i = 0; i < n; ++i) {
      v4c::check(sessions[i] != nullptr, "v4rt_decode_batch: session " + std::to_string(i) + " is NULL");
      batch[i] = sessions[i]->session.get();
    }
    v4rt::decodeBatch(batch.data(), n, ids, logits);
  });
}

size_t v4rt_model_decode_batch_sizes(const v4rt_model *model, int64_t *sizes, size_t capacity) {
  const std::vector<int64_t> &batches = model->model->decodeBatches();
  for (size_t i = 0; sizes && i < batches.size() && i < capacity; ++i)
    sizes[i] = batches[i];
  return batches.size();
}

} // extern "C"
