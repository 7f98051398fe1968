// profile's CPU timer: the reference runtime's session, timed on the host
// clock between the step hook's calls (each step runs synchronously, so
// the time from one call to the next is the next step's).
#include <chrono>
#include <numeric>

#include "common/Error.h"
#include "runtime/Model.h"
#include "runtime/Session.h"
#include "tools/v4run/Runner.h"
#include "tools/v4run/StepTimer.h"

namespace v4run {
namespace {

using Clock = std::chrono::steady_clock;

double microseconds(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::micro>(to - from).count();
}

class CpuStepTimer final : public StepTimer {
public:
  CpuStepTimer(const std::string &path, unsigned threads) : threads_(threads) {
    v4rt::LoadOptions load;
    load.threads = threads;
    model_ = v4rt::Model::load(path, load);
  }

  const v4rt::Program &program() const override { return model_->program(); }
  std::string describe() const override {
    return "cpu (" + (threads_ ? std::to_string(threads_) + " threads" : std::string("all cores")) + ")";
  }
  std::string clock() const override { return "host clock"; }

  double fill(int64_t context, int64_t sessions, bool tiled, int64_t) override {
    v4c::check(sessions == 1, "profile: cpu artifacts profile one session (--batch 1); batched decode buckets are "
                              "timed on GPU artifacts");
    v4c::check(!tiled, "profile: --fill tiled is for GPU artifacts; cpu artifacts compute the context");
    const auto start = Clock::now();
    session_ = std::make_unique<v4rt::Session>(*model_);
    session_->setStepHook([this](const v4rt::BoundBucket &bound, size_t, const v4rt::KernelArgs &args) {
      if (!recording_)
        return;
      stamps_.push_back(Clock::now());
      if (bound.bucket != expectedBucket_ || args.tokens != expectedRows_)
        split_ = true;
    });
    const std::vector<int32_t> ids = syntheticIds(context, model_->vocabSize());
    if (context > 0)
      session_->prefill(ids.data(), context, nullptr, v4rt::PrefillLogits::LastRow);
    context_ = context;
    return std::chrono::duration<double>(Clock::now() - start).count();
  }

  StepTimings time(const v4rt::Bucket &bucket, const RunShape &run, int64_t warmup, int64_t repeat) override {
    v4c::check(session_ && run.context == context_, "internal error: profile timed before filling the session");
    const bool decode = &bucket == model_->decodeBucket().bucket && run.rows == 1;
    v4c::check(decode || &bucket == model_->prefillBucket().bucket,
               "profile: the cpu runtime runs bucket " + bucket.name + " only inside a batch; profile " +
                   model_->decodeBucket().bucket->name + " or " + model_->prefillBucket().bucket->name);
    if (!decode) { // Session::prefill ends every run at a page boundary (for its snapshots)
      int64_t page = 1;
      for (const v4rt::CacheSlot &slot : program().caches)
        if (slot.kind == v4rt::CacheKind::Entries && slot.rate > 0)
          page = std::lcm(page, slot.rate);
      v4c::check(run.rows <= page - run.context % page,
                 "profile: the cpu runtime runs prefill up to the next page boundary (every " + std::to_string(page) +
                     " tokens here), so " + std::to_string(run.rows) + " tokens at context " +
                     std::to_string(run.context) + " would be split; use --tokens <= " +
                     std::to_string(page - run.context % page));
    }
    const std::vector<int32_t> ids = syntheticIds(run.rows, model_->vocabSize(), 7);
    expectedBucket_ = &bucket;
    expectedRows_ = run.rows;
    StepTimings timings;
    timings.stepUs.resize(bucket.steps.size());
    for (int64_t r = 0; r < warmup + repeat; ++r) {
      stamps_.clear();
      split_ = false;
      recording_ = true;
      const auto start = Clock::now();
      if (decode)
        session_->decode(ids[0], nullptr);
      else
        session_->prefill(ids.data(), run.rows, nullptr, v4rt::PrefillLogits::LastRow);
      recording_ = false;
      v4c::check(!split_ && stamps_.size() == bucket.steps.size(),
                 "profile: the cpu session ran the " + std::to_string(run.rows) + " tokens at context " +
                     std::to_string(run.context) + " in pieces, not as one run of " + bucket.name +
                     " (it cuts chunks at page boundaries): use a context and --tokens that are multiples of the page");
      session_->truncate(run.context); // the next run at the same positions
      if (r < warmup)
        continue;
      for (size_t s = 0; s < stamps_.size(); ++s)
        timings.stepUs[s].push_back(microseconds(s ? stamps_[s - 1] : start, stamps_[s]));
      timings.bucketUs.push_back(microseconds(start, stamps_.back()));
    }
    return timings;
  }

private:
  unsigned threads_ = 0;
  std::unique_ptr<v4rt::Model> model_;
  std::unique_ptr<v4rt::Session> session_;
  int64_t context_ = 0;
  bool recording_ = false, split_ = false;
  const v4rt::Bucket *expectedBucket_ = nullptr;
  int64_t expectedRows_ = 0;
  std::vector<Clock::time_point> stamps_;
};

} // namespace

std::unique_ptr<StepTimer> openCpuStepTimer(const std::string &path, unsigned threads) {
  return std::make_unique<CpuStepTimer>(path, threads);
}

} // namespace v4run
