/* The v4c runtime C API: opaque handles, every call returns a status.
 *
 * One API for every target: v4rt_model_open reads the artifact's target and
 * runs a "cpu" artifact on the CPU backend and an "sm_*" artifact on the CUDA
 * backend (runtime/cuda; the driver is loaded at run time, so a process
 * without a GPU still starts, and opening a GPU artifact there returns the
 * status "no CUDA device: <reason>; this artifact targets sm_90a").
 *
 * A NULL status is success; any other status carries a one-line message and
 * must be released with v4rt_status_free. A NULL handle or required pointer
 * is an error status, never a crash. Handles are not thread-safe: use one
 * session per thread. Sessions of one CPU model may run concurrently; calls
 * on sessions of one GPU model run one at a time (they share the model's
 * stream and buffers). Close a model's sessions before the model.
 *
 * The option and stats structs only grow at the end (existing fields keep
 * their offsets and meaning); the library is static, so a caller compiles
 * against the header of the library it links. */
#ifndef V4RT_H_
#define V4RT_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct v4rt_status_t *v4rt_status;
typedef struct v4rt_model_t v4rt_model;
typedef struct v4rt_session_t v4rt_session;

const char *v4rt_status_message(v4rt_status status);
void v4rt_status_free(v4rt_status status);

/* Zero-initialise it ({0}) and set what you need: 0 is the default of every
 * field but verify_checksums (NULL options verify). Fields are only ever
 * appended (existing offsets never move). */
typedef struct v4rt_model_options {
  uint32_t threads;          /* CPU artifacts: worker threads; 0: one per core */
  uint32_t verify_checksums; /* nonzero: hash every weight at load */
  /* GPU artifacts only (nonzero on a cpu artifact is an error): */
  int64_t max_context;        /* tokens a session holds (sizes its device cache slots);
                                 0: the model's max_position_embeddings */
  uint64_t device_kv_bytes;   /* device bytes for sessions' cache slots; sessions beyond it
                                 are preempted to pinned host memory and swapped back in when
                                 used; 0: 90% of the memory free after loading, less 256 MiB */
  int64_t device_kv_sessions; /* when > 0 and device_kv_bytes is 0: room for exactly this
                                 many resident sessions (the rest stays free, e.g. for the
                                 cache's device tier) */
} v4rt_model_options;

/* Loads (mmaps and verifies) an artifact on the backend of its target.
 * options may be NULL (defaults). */
v4rt_status v4rt_model_open(const char *path, const v4rt_model_options *options,
                            v4rt_model **out_model);
/* Closes the model (NULL: nothing); its sessions must be closed first. */
void v4rt_model_close(v4rt_model *model);
/* -1 for a NULL model. */
int64_t v4rt_model_vocab_size(const v4rt_model *model);
/* Hex sha256 of the artifact's manifest; valid while the model is open; ""
 * for a NULL model. */
const char *v4rt_model_identity(const v4rt_model *model);
/* The artifact's target: "cpu", "sm_90a", ...; "" for a NULL model. */
const char *v4rt_model_target(const v4rt_model *model);

/* Prefix reuse through a tiered page cache (GPU artifacts: device memory ->
 * pinned host memory -> disk directory; cpu: host memory -> disk). Sessions
 * created after this call restore cached prompt prefixes in
 * v4rt_session_prefill_last and store the pages they compute. Fails while
 * the model has open sessions (they use the cache it would replace). */
typedef struct v4rt_cache_options {
  const char *directory;   /* disk tier; NULL or "": none */
  uint64_t disk_bytes;     /* disk budget; 0: 16 GiB */
  uint64_t host_bytes;     /* host-memory tier budget; 0: none */
  const char *tenant_salt; /* pages are shared only within a salt; NULL: none */
  const char *swa_cache;   /* window state in pages: NULL or "full" (every page), "periodic:P"
                              (pages ending at multiples of P tokens, P a multiple of the
                              page size), "zero" (none; rebuilt by running recent tokens) */
  uint64_t device_bytes;   /* GPU artifacts: device-memory tier budget; 0: none (nonzero on a
                              cpu artifact is an error) */
} v4rt_cache_options;

v4rt_status v4rt_model_attach_cache(v4rt_model *model, const v4rt_cache_options *options);

typedef struct v4rt_cache_stats {
  int64_t page_tokens;
  uint64_t prefill_tokens_saved;
  uint64_t pages_hit, pages_missed, pages_rejected, pages_stored;
  uint64_t io_failures;         /* lookups/stores that failed on I/O (warnings) */
  uint64_t host_pages, host_bytes;
  uint64_t disk_pages, disk_bytes;
  uint64_t disk_corrupt;        /* damaged, truncated or foreign pages found (misses) */
  uint64_t disk_orphans_removed;
  uint64_t window_tokens_recomputed; /* restored tokens run again to rebuild the window */
  uint64_t page_bytes_stored;        /* payload bytes of the pages stored */
  uint32_t host_pinned;              /* nonzero: host-tier payloads are page-locked (CUDA backend) */
  uint64_t host_pinned_bytes;        /* of host_bytes, those in page-locked memory */
  uint64_t host_pin_failures;        /* host pages left pageable: pinning them failed (a warning) */
  uint64_t device_pages, device_bytes; /* the device tier (GPU artifacts; 0 without one) */
  uint64_t store_failures;           /* pages not stored or not restored (failed store, GPU page
                                        export or restore): recomputed, a warning */
} v4rt_cache_stats;

/* Fails when no cache is attached. */
v4rt_status v4rt_model_cache_stats(const v4rt_model *model, v4rt_cache_stats *out_stats);

v4rt_status v4rt_session_create(v4rt_model *model, v4rt_session **out_session);
void v4rt_session_close(v4rt_session *session);
/* Feeds count tokens; logits (count x vocab floats) may be NULL. */
v4rt_status v4rt_session_prefill(v4rt_session *session, const int32_t *ids, size_t count,
                                 float *logits);
/* Feeds count tokens; last_logits (vocab floats, may be NULL) receives the
 * last row's logits. A fresh session with a cache restores the longest cached
 * prefix instead of computing it; tokens_reused (may be NULL) says how many
 * prompt tokens it did not compute (restored minus those run again to rebuild
 * the window state under periodic:P / zero). */
v4rt_status v4rt_session_prefill_last(v4rt_session *session, const int32_t *ids, size_t count,
                                      float *last_logits, int64_t *tokens_reused);
/* Feeds one token; logits receives vocab floats (may be NULL). */
v4rt_status v4rt_session_decode(v4rt_session *session, int32_t id, float *logits);
/* Tokens fed so far; -1 for a NULL session. */
int64_t v4rt_session_position(const v4rt_session *session);

/* A new session whose state equals this one's after its first `position`
 * tokens (0 <= position <= v4rt_session_position); position == current
 * branches here. The new session uses the same model and cache, and is closed
 * with v4rt_session_close independently. Compressed entries below the fork
 * point are shared copy-on-write in page-sized chunks; the window and
 * compressor state is copied. An
 * earlier position restores the nearest page-boundary state (a snapshot, a
 * cached page, or the empty state) and prefills the tokens after it again.
 * (GPU artifacts: runtime/cuda/CudaSession.h says what a fork copies.) */
v4rt_status v4rt_session_fork(const v4rt_session *session, int64_t position,
                              v4rt_session **out_session);
/* Rolls the session back to its first `position` tokens (0..current). */
v4rt_status v4rt_session_truncate(v4rt_session *session, int64_t position);
/* Tokens this session ran through prefill plans itself: not restored from the
 * cache, not inherited from the session it was forked from; -1 for NULL. */
int64_t v4rt_session_prefill_tokens_computed(const v4rt_session *session);

/* Continuous batching: feeds ids[i] to sessions[i] (n distinct sessions of
 * one model, at any positions) in one decode step that reads every weight
 * once, and advances each session as v4rt_session_decode would. Sessions
 * join and leave between steps by being listed or not. logits (n x vocab
 * floats, row i for sessions[i]) may be NULL. Runs the artifact's smallest
 * decode bucket of >= n sessions (v4c compile --decode-batch 1,4,8); more
 * sessions than the largest bucket run as several steps. Nothing runs when
 * the batch is invalid (a NULL or repeated session, another model's session,
 * an id out of range). */
v4rt_status v4rt_decode_batch(v4rt_session *const *sessions, size_t n, const int32_t *ids,
                              float *logits);
/* The session counts of the artifact's decode buckets, ascending: writes up
 * to `capacity` of them to `sizes` (may be NULL) and returns how many exist. */
size_t v4rt_model_decode_batch_sizes(const v4rt_model *model, int64_t *sizes, size_t capacity);

#ifdef __cplusplus
}
#endif

#endif /* V4RT_H_ */
