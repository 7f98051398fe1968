#include "runtime/cpu/ThreadPool.h"

#include <algorithm>

namespace v4rt {

ThreadPool::ThreadPool(unsigned threads) {
  if (threads == 0)
    threads = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 1; i < threads; ++i)
    workers_.emplace_back([this, i] { workerLoop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto &worker : workers_)
    worker.join();
}

void ThreadPool::workerLoop(unsigned index) {
  uint64_t seen = 0;
  for (;;) {
    const std::function<void(int64_t, int64_t)> *job;
    int64_t begin, end;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_)
        return;
      seen = generation_;
      job = job_;
      begin = std::min<int64_t>(jobCount_, index * jobChunk_);
      end = std::min<int64_t>(jobCount_, begin + jobChunk_);
    }
    if (begin < end)
      (*job)(begin, end);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (--pending_ == 0)
        done_.notify_one();
    }
  }
}

void ThreadPool::parallelFor(int64_t count, int64_t grain,
                             const std::function<void(int64_t, int64_t)> &fn) {
  if (count <= 0)
    return;
  const int64_t parts = std::min<int64_t>(size(), std::max<int64_t>(1, count / std::max<int64_t>(1, grain)));
  if (parts <= 1 || workers_.empty()) {
    fn(0, count);
    return;
  }
  const int64_t chunk = (count + size() - 1) / size();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = &fn;
    jobCount_ = count;
    jobChunk_ = chunk;
    pending_ = static_cast<unsigned>(workers_.size());
    ++generation_;
  }
  wake_.notify_all();
  fn(0, std::min(count, chunk)); // the caller takes range 0
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [&] { return pending_ == 0; });
}

void parallelFor(ThreadPool *pool, int64_t count, int64_t grain,
                 const std::function<void(int64_t, int64_t)> &fn) {
  if (pool)
    pool->parallelFor(count, grain, fn);
  else if (count > 0)
    fn(0, count);
}

} // namespace v4rt
