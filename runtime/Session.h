// One sequence being generated: its cache state and position.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/Model.h"
#include "runtime/cpu/CacheBuffer.h"

namespace v4rt {

class Session {
public:
  explicit Session(const Model &model);

  // Feeds `count` tokens (in chunks of the prefill bucket). `logits` receives
  // count x vocab floats, or nothing when null.
  void prefill(const int32_t *ids, int64_t count, float *logits);
  // Feeds one token; `logits` receives vocab floats.
  void decode(int32_t id, float *logits);
  int64_t position() const { return position_; }

private:
  void run(const BoundBucket &bucket, const int32_t *ids, int64_t count, float *logits);
  void checkIds(const int32_t *ids, int64_t count) const;

  const Model &model_;
  std::vector<CacheBuffer> caches_;
  std::vector<uint8_t> arenaStorage_;
  uint8_t *arena_ = nullptr; // 64-byte aligned view into arenaStorage_
  std::vector<int32_t> positions_;
  int64_t position_ = 0;
};

} // namespace v4rt
