// The C API over the backends (runtime/api/Backend.h): handles are checked
// here and exceptions stop here and become statuses.
#include "runtime/api/v4rt.h"

#include <atomic>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "common/Error.h"
#include "runtime/api/Backend.h"
#include "runtime/api/CacheStats.h"

struct v4rt_status_t {
  std::string message;
};
struct v4rt_model_t {
  std::unique_ptr<v4rt::api::BackendModel> backend;
  std::atomic<int64_t> openSessions{0}; // attach_cache must not pull the cache from under them
};
struct v4rt_session_t {
  v4rt_model_t *model = nullptr;
  std::unique_ptr<v4rt::api::BackendSession> backend;
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

// A NULL handle or required pointer is the caller's error, reported by name.
void require(const void *pointer, const char *function, const char *what) {
  if (!pointer)
    throw v4c::Error(std::string(function) + ": " + what + " is NULL");
}

void requireIds(const int32_t *ids, size_t count, const char *function) {
  if (count > 0 && !ids)
    throw v4c::Error(std::string(function) + ": ids is NULL for " + std::to_string(count) + " tokens");
}

// Wraps a backend session in a handle counted by its model.
v4rt_session *newSessionHandle(v4rt_model_t *model, std::unique_ptr<v4rt::api::BackendSession> backend) {
  auto handle = std::make_unique<v4rt_session_t>();
  handle->model = model;
  handle->backend = std::move(backend);
  ++model->openSessions;
  return handle.release();
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
    require(path, "v4rt_model_open", "path");
    require(out_model, "v4rt_model_open", "out_model");
    v4rt::api::ModelOptions open;
    if (options) {
      open.threads = options->threads;
      open.verifyChecksums = options->verify_checksums != 0;
      v4c::check(options->max_context >= 0 && options->device_kv_sessions >= 0,
                 "v4rt_model_open: max_context and device_kv_sessions must be >= 0");
      open.maxContext = options->max_context;
      open.deviceKvBytes = options->device_kv_bytes;
      open.deviceKvSessions = options->device_kv_sessions;
    }
    auto handle = std::make_unique<v4rt_model_t>();
    handle->backend = v4rt::api::openBackendModel(path, open);
    *out_model = handle.release();
  });
}

void v4rt_model_close(v4rt_model *model) { delete model; }
int64_t v4rt_model_vocab_size(const v4rt_model *model) { return model ? model->backend->vocabSize() : -1; }
const char *v4rt_model_identity(const v4rt_model *model) {
  return model ? model->backend->identity().c_str() : "";
}
const char *v4rt_model_target(const v4rt_model *model) { return model ? model->backend->target().c_str() : ""; }

v4rt_status v4rt_model_attach_cache(v4rt_model *model, const v4rt_cache_options *options) {
  return guarded([&] {
    require(model, "v4rt_model_attach_cache", "model");
    require(options, "v4rt_model_attach_cache", "options");
    v4c::check(model->openSessions == 0, "v4rt_model_attach_cache: the model has " +
                                             std::to_string(model->openSessions.load()) +
                                             " open sessions using its current cache; close them first");
    v4rt::api::CacheOptions cache;
    cache.tiers.directory = options->directory ? options->directory : "";
    if (options->disk_bytes)
      cache.tiers.diskBytes = options->disk_bytes;
    cache.tiers.hostBytes = options->host_bytes;
    cache.tiers.tenantSalt = options->tenant_salt ? options->tenant_salt : "";
    cache.tiers.strategy = v4rt::parseSwaCacheStrategy(options->swa_cache ? options->swa_cache : "full");
    cache.deviceBytes = options->device_bytes;
    model->backend->attachCache(cache);
  });
}

v4rt_status v4rt_model_cache_stats(const v4rt_model *model, v4rt_cache_stats *out_stats) {
  return guarded([&] {
    require(model, "v4rt_model_cache_stats", "model");
    require(out_stats, "v4rt_model_cache_stats", "out_stats");
    const v4rt::PrefixCache *cache = model->backend->cache();
    v4c::check(cache != nullptr, "no KV cache attached: call v4rt_model_attach_cache first");
    *out_stats = v4rt::toApiCacheStats(cache->stats());
  });
}

v4rt_status v4rt_session_create(v4rt_model *model, v4rt_session **out_session) {
  return guarded([&] {
    require(model, "v4rt_session_create", "model");
    require(out_session, "v4rt_session_create", "out_session");
    *out_session = newSessionHandle(model, model->backend->newSession());
  });
}

void v4rt_session_close(v4rt_session *session) {
  if (!session)
    return;
  --session->model->openSessions;
  delete session;
}

v4rt_status v4rt_session_prefill(v4rt_session *session, const int32_t *ids, size_t count,
                                 float *logits) {
  return guarded([&] {
    require(session, "v4rt_session_prefill", "session");
    requireIds(ids, count, "v4rt_session_prefill");
    session->backend->prefill(ids, static_cast<int64_t>(count), logits);
  });
}

v4rt_status v4rt_session_prefill_last(v4rt_session *session, const int32_t *ids, size_t count,
                                      float *last_logits, int64_t *tokens_reused) {
  return guarded([&] {
    require(session, "v4rt_session_prefill_last", "session");
    requireIds(ids, count, "v4rt_session_prefill_last");
    const int64_t reused = session->backend->prefillLast(ids, static_cast<int64_t>(count), last_logits);
    if (tokens_reused)
      *tokens_reused = reused;
  });
}

v4rt_status v4rt_session_decode(v4rt_session *session, int32_t id, float *logits) {
  return guarded([&] {
    require(session, "v4rt_session_decode", "session");
    session->backend->decode(id, logits);
  });
}

int64_t v4rt_session_position(const v4rt_session *session) {
  return session ? session->backend->position() : -1;
}

v4rt_status v4rt_session_fork(const v4rt_session *session, int64_t position,
                              v4rt_session **out_session) {
  return guarded([&] {
    require(session, "v4rt_session_fork", "session");
    require(out_session, "v4rt_session_fork", "out_session");
    *out_session = newSessionHandle(session->model, session->backend->fork(position));
  });
}

v4rt_status v4rt_session_truncate(v4rt_session *session, int64_t position) {
  return guarded([&] {
    require(session, "v4rt_session_truncate", "session");
    session->backend->truncate(position);
  });
}

int64_t v4rt_session_prefill_tokens_computed(const v4rt_session *session) {
  return session ? session->backend->prefillTokensComputed() : -1;
}

v4rt_status v4rt_decode_batch(v4rt_session *const *sessions, size_t n, const int32_t *ids,
                              float *logits) {
  return guarded([&] {
    if (n == 0)
      return;
    v4c::check(sessions != nullptr && ids != nullptr, "v4rt_decode_batch: sessions and ids are required");
    std::vector<v4rt::api::BackendSession *> batch(n);
    for (size_t i = 0; i < n; ++i) {
      v4c::check(sessions[i] != nullptr, "v4rt_decode_batch: session " + std::to_string(i) + " is NULL");
      v4c::check(sessions[i]->model == sessions[0]->model,
                 "v4rt_decode_batch: session " + std::to_string(i) + " belongs to another model than session 0 (" +
                     sessions[i]->model->backend->target() + " " + sessions[i]->model->backend->identity().substr(0, 12) +
                     " vs " + sessions[0]->model->backend->target() + " " +
                     sessions[0]->model->backend->identity().substr(0, 12) + "); batch sessions of one model only");
      batch[i] = sessions[i]->backend.get();
    }
    sessions[0]->model->backend->decodeBatch(batch.data(), n, ids, logits);
  });
}

size_t v4rt_model_decode_batch_sizes(const v4rt_model *model, int64_t *sizes, size_t capacity) {
  if (!model)
    return 0;
  const std::vector<int64_t> &batches = model->backend->decodeBatchSizes();
  for (size_t i = 0; sizes && i < batches.size() && i < capacity; ++i)
    sizes[i] = batches[i];
  return batches.size();
}

} // extern "C"
