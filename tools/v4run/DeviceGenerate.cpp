#include "tools/v4run/DeviceGenerate.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "common/Error.h"
#include "tools/v4run/PromptIds.h"
#include "tools/v4run/Runner.h"

namespace v4run {

int runDeviceGenerate(const std::string &artifact, const std::vector<int32_t> &prompt, int64_t count,
                      const v4rt::SamplingOptions &sampling, int64_t maxContext) {
  using Clock = std::chrono::steady_clock;
  v4c::check(count >= 0, "-n must be >= 0");
  RunnerOptions options;
  options.maxContext = maxContext;
  std::unique_ptr<Runner> runner = openRunner(artifact, options);
  std::unique_ptr<RunnerSession> session = runner->newSession();
  v4rt::Sampler sampler(sampling);
  const int64_t V = runner->vocabSize();
  std::vector<float> logits(static_cast<size_t>(V));

  const auto t0 = Clock::now();
  session->prefillLast(prompt.data(), static_cast<int64_t>(prompt.size()), logits.data());
  const auto t1 = Clock::now();
  std::vector<int32_t> generated;
  for (int64_t i = 0; i < count; ++i) {
    const int32_t next = sampler.next(logits.data(), V);
    generated.push_back(next);
    if (i + 1 == count)
      break;
    session->decode(next, logits.data());
  }
  const auto t2 = Clock::now();
  printGeneration(generated, prompt.size(), std::chrono::duration<double>(t1 - t0).count(),
                  std::chrono::duration<double>(t2 - t1).count());
  return 0;
}

} // namespace v4run
