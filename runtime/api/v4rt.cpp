// The C API over Model and Session: exceptions stop here and become statuses.
#include "runtime/api/v4rt.h"

#include <exception>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "runtime/Model.h"
#include "runtime/Session.h"

struct v4rt_status_t {
  std::string message;
};
struct v4rt_model_t {
  std::unique_ptr<v4rt::Model> model;
  std::string identity;
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

v4rt_status v4rt_session_create(v4rt_model *model, v4rt_session **out_session) {
  return guarded([&] {
    auto handle = std::make_unique<v4rt_session_t>();
    handle->session = std::make_unique<v4rt::Session>(*model->model);
    handle->vocab = model->model->vocabSize();
    *out_session = handle.release();
  });
}

void v4rt_session_close(v4rt_session *session) { delete session; }

v4rt_status v4rt_session_prefill(v4rt_session *session, const int32_t *ids, size_t count,
                                 float *logits) {
  return guarded([&] { session->session->prefill(ids, static_cast<int64_t>(count), logits); });
}

v4rt_status v4rt_session_decode(v4rt_session *session, int32_t id, float *logits) {
  return guarded([&] { session->session->decode(id, logits); });
}

int64_t v4rt_session_position(const v4rt_session *session) {
  return session->session->position();
}

} // extern "C"
