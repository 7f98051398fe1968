// Bad input through the C API on a cpu artifact: every NULL handle or
// pointer, out-of-vocab id, malformed batch and misplaced GPU option is a
// status with a one-line message, and nothing runs.
#include <gtest/gtest.h>

#include "runtime/api/ApiTestSupport.h"
#include "runtime/api/v4rt.hpp"

namespace v4rt {
namespace {

using apitest::takeMessage;

const std::string &cpuArtifact() {
  static const std::string path = apitest::compiledConformanceCase("tiny-mixed", "--target cpu --decode-batch 1,4");
  return path;
}

// Expects an error status whose one-line message contains `expected`.
void expectError(v4rt_status status, const std::string &expected) {
  const std::string message = takeMessage(status);
  EXPECT_NE(message.find(expected), std::string::npos) << "message: " << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

TEST(CApiInput, OpensOnTheCpuBackend) {
  ModelHandle model(cpuArtifact());
  EXPECT_EQ(model.target(), "cpu");
  EXPECT_EQ(model.vocabSize(), 512);
  EXPECT_EQ(model.decodeBatchSizes(), (std::vector<int64_t>{1, 4}));
  EXPECT_EQ(model.identity().size(), 64u);
}

TEST(CApiInput, NullHandlesAndPointersAreStatuses) {
  v4rt_model *model = nullptr;
  expectError(v4rt_model_open(nullptr, nullptr, &model), "v4rt_model_open: path is NULL");
  expectError(v4rt_model_open(cpuArtifact().c_str(), nullptr, nullptr), "v4rt_model_open: out_model is NULL");
  EXPECT_EQ(model, nullptr);
  v4rt_session *session = nullptr;
  expectError(v4rt_session_create(nullptr, &session), "v4rt_session_create: model is NULL");
  EXPECT_EQ(session, nullptr);
  const int32_t ids[2] = {5, 6};
  float logits[512];
  expectError(v4rt_session_prefill(nullptr, ids, 2, nullptr), "v4rt_session_prefill: session is NULL");
  expectError(v4rt_session_prefill_last(nullptr, ids, 2, nullptr, nullptr),
              "v4rt_session_prefill_last: session is NULL");
  expectError(v4rt_session_decode(nullptr, 5, logits), "v4rt_session_decode: session is NULL");
  expectError(v4rt_session_truncate(nullptr, 0), "v4rt_session_truncate: session is NULL");
  expectError(v4rt_session_fork(nullptr, 0, &session), "v4rt_session_fork: session is NULL");
  expectError(v4rt_model_attach_cache(nullptr, nullptr), "v4rt_model_attach_cache: model is NULL");
  v4rt_cache_stats stats{};
  expectError(v4rt_model_cache_stats(nullptr, &stats), "v4rt_model_cache_stats: model is NULL");
  // Getters without a status answer a value no handle gives.
  EXPECT_EQ(v4rt_model_vocab_size(nullptr), -1);
  EXPECT_STREQ(v4rt_model_identity(nullptr), "");
  EXPECT_STREQ(v4rt_model_target(nullptr), "");
  EXPECT_EQ(v4rt_model_decode_batch_sizes(nullptr, nullptr, 0), 0u);
  EXPECT_EQ(v4rt_session_position(nullptr), -1);
  EXPECT_EQ(v4rt_session_prefill_tokens_computed(nullptr), -1);
  v4rt_session_close(nullptr);
  v4rt_model_close(nullptr);

  ModelHandle opened(cpuArtifact());
  SessionHandle live(opened);
  expectError(v4rt_session_prefill(live.get(), nullptr, 3, nullptr), "v4rt_session_prefill: ids is NULL for 3 tokens");
  expectError(v4rt_session_prefill_last(live.get(), nullptr, 3, nullptr, nullptr),
              "v4rt_session_prefill_last: ids is NULL for 3 tokens");
  expectError(v4rt_session_fork(live.get(), 0, nullptr), "v4rt_session_fork: out_session is NULL");
  expectError(v4rt_model_attach_cache(opened.get(), nullptr), "v4rt_model_attach_cache: options is NULL");
  expectError(v4rt_model_cache_stats(opened.get(), nullptr), "v4rt_model_cache_stats: out_stats is NULL");
  expectError(v4rt_model_cache_stats(opened.get(), &stats), "no KV cache attached");
  expectError(v4rt_session_create(opened.get(), nullptr), "v4rt_session_create: out_session is NULL");
  EXPECT_EQ(live.position(), 0);
}

TEST(CApiInput, OutOfVocabIdsRunNothing) {
  ModelHandle model(cpuArtifact());
  SessionHandle session(model);
  const int32_t ids[3] = {5, 512, 6};
  expectError(v4rt_session_prefill(session.get(), ids, 3, nullptr), "token id 512 is out of range (vocab size 512)");
  expectError(v4rt_session_decode(session.get(), -1, nullptr), "token id -1 is out of range");
  EXPECT_EQ(session.position(), 0);
  session.prefill({5, 6});
  SessionHandle other(model);
  other.prefill({7});
  v4rt_session *batch[2] = {session.get(), other.get()};
  const int32_t batchIds[2] = {9, 600};
  expectError(v4rt_decode_batch(batch, 2, batchIds, nullptr), "600 is out of range");
  EXPECT_EQ(session.position(), 2);
  EXPECT_EQ(other.position(), 1);
}

TEST(CApiInput, MalformedBatchesRunNothing) {
  ModelHandle model(cpuArtifact());
  SessionHandle a(model), b(model);
  a.prefill({5, 6});
  b.prefill({7});
  const int32_t ids[3] = {9, 10, 11};
  v4rt_session *withNull[2] = {a.get(), nullptr};
  expectError(v4rt_decode_batch(withNull, 2, ids, nullptr), "v4rt_decode_batch: session 1 is NULL");
  v4rt_session *repeated[2] = {a.get(), a.get()};
  expectError(v4rt_decode_batch(repeated, 2, ids, nullptr), "session 1");
  v4rt_session *pair[2] = {a.get(), b.get()};
  expectError(v4rt_decode_batch(pair, 2, nullptr, nullptr), "v4rt_decode_batch: sessions and ids are required");
  // The C++ wrapper: one id per session.
  try {
    decodeBatch({&a, &b}, {9});
    FAIL() << "a batch of 2 sessions and 1 id ran";
  } catch (const RuntimeError &e) {
    EXPECT_STREQ(e.what(), "decodeBatch: 1 ids for 2 sessions; give one id per session");
  }
  EXPECT_EQ(a.position(), 2);
  EXPECT_EQ(b.position(), 1);
  // Sessions of two models (the same file opened twice) never share a step.
  ModelHandle second(cpuArtifact());
  SessionHandle c(second);
  v4rt_session *mixed[2] = {a.get(), c.get()};
  expectError(v4rt_decode_batch(mixed, 2, ids, nullptr),
              "v4rt_decode_batch: session 1 belongs to another model than session 0");
  EXPECT_EQ(c.position(), 0);
}

TEST(CApiInput, GpuOptionsOnACpuArtifactAreErrors) {
  v4rt_model_options options{};
  options.max_context = 128;
  v4rt_model *model = nullptr;
  expectError(v4rt_model_open(cpuArtifact().c_str(), &options, &model),
              "max_context / device_kv_bytes / device_kv_sessions are for GPU artifacts; this one targets cpu");
  EXPECT_EQ(model, nullptr);
  options = v4rt_model_options{};
  options.max_context = -1;
  expectError(v4rt_model_open(cpuArtifact().c_str(), &options, &model), "max_context and device_kv_sessions must be >= 0");
  ModelHandle opened(cpuArtifact());
  try {
    opened.attachCache("", 0, 1 << 20, "", "full", /*deviceBytes=*/1 << 20);
    FAIL() << "a device page tier on a cpu artifact";
  } catch (const RuntimeError &e) {
    EXPECT_NE(std::string(e.what()).find("a device page tier needs a GPU artifact (this one targets cpu)"),
              std::string::npos)
        << e.what();
  }
}

TEST(CApiInput, AttachCacheWaitsForOpenSessions) {
  ModelHandle model(cpuArtifact());
  {
    SessionHandle session(model);
    SessionHandle child = session.fork(0);
    try {
      model.attachCache("", 0, 1 << 20);
      FAIL() << "the cache was replaced under two open sessions";
    } catch (const RuntimeError &e) {
      EXPECT_STREQ(e.what(), "v4rt_model_attach_cache: the model has 2 open sessions using its current cache; "
                             "close them first");
    }
  }
  model.attachCache("", 0, 1 << 20);
  EXPECT_EQ(model.cacheStats().host_pages, 0u);
}

} // namespace
} // namespace v4rt
