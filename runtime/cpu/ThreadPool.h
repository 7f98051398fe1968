// A fixed pool of worker threads for data-parallel kernel loops.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace v4rt {

class ThreadPool {
public:
  // threads == 0: one per hardware core.
  explicit ThreadPool(unsigned threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool &) = delete;
  ThreadPool &operator=(const ThreadPool &) = delete;

  unsigned size() const { return static_cast<unsigned>(workers_.size()) + 1; }

  // Splits [0, count) into contiguous ranges and runs fn(begin, end) on them,
  // the calling thread included; returns when all are done. Ranges smaller
  // than `grain` items are not split further.
  void parallelFor(int64_t count, int64_t grain,
                   const std::function<void(int64_t, int64_t)> &fn);

private:
  void workerLoop(unsigned index);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(int64_t, int64_t)> *job_ = nullptr;
  int64_t jobCount_ = 0, jobChunk_ = 0;
  uint64_t generation_ = 0;
  unsigned pending_ = 0;
  bool stopping_ = false;
};

// Runs fn over [0, count) on `pool`, or inline when pool is null.
void parallelFor(ThreadPool *pool, int64_t count, int64_t grain,
                 const std::function<void(int64_t, int64_t)> &fn);

} // namespace v4rt
