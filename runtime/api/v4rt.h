/* The v4c runtime C API: opaque handles, every call returns a status.
 *
 * A NULL status is success; any other status carries a one-line message and
 * must be released with v4rt_status_free. Handles are not thread-safe: use one
 * session per thread (sessions of one model may run concurrently). */
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

typedef struct v4rt_model_options {
  uint32_t threads;          /* 0: one per core */
  uint32_t verify_checksums; /* nonzero: hash every weight at load */
} v4rt_model_options;

/* Loads (mmaps and verifies) an artifact. options may be NULL. */
v4rt_status v4rt_model_open(const char *path, const v4rt_model_options *options,
                            v4rt_model **out_model);
void v4rt_model_close(v4rt_model *model);
int64_t v4rt_model_vocab_size(const v4rt_model *model);
/* Hex sha256 of the artifact's manifest; valid while the model is open. */
const char *v4rt_model_identity(const v4rt_model *model);

v4rt_status v4rt_session_create(v4rt_model *model, v4rt_session **out_session);
void v4rt_session_close(v4rt_session *session);
/* Feeds count tokens; logits (count x vocab floats) may be NULL. */
v4rt_status v4rt_session_prefill(v4rt_session *session, const int32_t *ids, size_t count,
                                 float *logits);
/* Feeds one token; logits receives vocab floats (may be NULL). */
v4rt_status v4rt_session_decode(v4rt_session *session, int32_t id, float *logits);
int64_t v4rt_session_position(const v4rt_session *session);

#ifdef __cplusplus
}
#endif

#endif /* V4RT_H_ */
