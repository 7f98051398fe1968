// One sequence being generated: its cache state and position.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/Model.h"
#include "runtime/cpu/CacheBuffer.h"
#include "runtime/kvcache/PageKey.h"

namespace v4rt {

class PrefixCache;

// Which prompt rows' logits prefill returns. Only LastRow may reuse cached
// pages: the logits of restored rows are never computed.
enum class PrefillLogits { AllRows, LastRow };

class Session {
public:
  // With a prefix cache (which must outlive the session), a fresh session's
  // LastRow prefill restores the cached prefix, and every complete page the
  // session passes is stored.
  explicit Session(const Model &model, PrefixCache *prefixCache = nullptr);

  // Feeds `count` tokens (in chunks of the prefill bucket, cut at page
  // boundaries when a cache is attached). `logits` receives count x vocab
  // floats (AllRows) or the last row's vocab floats (LastRow), or nothing
  // when null. Returns the prompt tokens restored from the cache (< count).
  int64_t prefill(const int32_t *ids, int64_t count, float *logits,
                  PrefillLogits rows = PrefillLogits::AllRows);
  // Feeds one token; `logits` receives vocab floats.
  void decode(int32_t id, float *logits);
  int64_t position() const { return position_; }

private:
  void run(const BoundBucket &bucket, const int32_t *ids, int64_t count, float *logits);
  void checkIds(const int32_t *ids, int64_t count) const;
  // Restores the longest cached prefix of complete pages shorter than the
  // prompt; returns the tokens restored.
  int64_t restorePrefix(const int32_t *ids, int64_t count);
  // Keeps the ids just fed and stores the page they completed, if any.
  void notePageProgress(const int32_t *ids, int64_t count);

  const Model &model_;
  std::vector<CacheBuffer> caches_;
  std::vector<uint8_t> arenaStorage_;
  uint8_t *arena_ = nullptr; // 64-byte aligned view into arenaStorage_
  std::vector<int32_t> positions_;
  int64_t position_ = 0;

  PrefixCache *prefixCache_ = nullptr;
  std::vector<int32_t> pageIds_;          // ids of the current incomplete page
  std::vector<kvcache::PageKey> lastKey_; // key of the last complete page (0 or 1 of them)
};

} // namespace v4rt
