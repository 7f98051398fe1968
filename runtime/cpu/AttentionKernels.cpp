// Reference kernels for V4's attention: the compressor (CSA/HCA entries), the
// lightning indexer's top-k, and attention over window + entries with a sink.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <vector>

#include "common/Error.h"
#include "runtime/cpu/CacheStorage.h"
#include "runtime/cpu/ReferenceKernels.h"
#include "runtime/cpu/VectorMath.h"

namespace v4rt::ref {

namespace {

// Pools one complete window into an entry (before norm and rope). Slot s of
// the pending window is state row m+s; of the previous window, row s.
void poolWindow(const CacheBuffer &state, int64_t Cin, const CompressParams &p,
                bool hasPrevious, float *entry) {
  const int64_t m = p.rate, C = p.headDim;
  std::vector<float> gates, values;
  gates.reserve(2 * m);
  values.reserve(2 * m);
  for (int64_t c = 0; c < C; ++c) {
    gates.clear();
    values.clear();
    if (p.overlap) {
      // Window w-1 contributes its first halves, window w its second halves.
      if (hasPrevious)
        for (int64_t s = 0; s < m; ++s) {
          values.push_back(state.row(s)[c]);
          gates.push_back(state.row(s)[Cin + c]);
        }
      for (int64_t s = 0; s < m; ++s) {
        values.push_back(state.row(m + s)[C + c]);
        gates.push_back(state.row(m + s)[Cin + C + c]);
      }
    } else {
      for (int64_t s = 0; s < m; ++s) {
        values.push_back(state.row(m + s)[c]);
        gates.push_back(state.row(m + s)[Cin + c]);
      }
    }
    const float mx = *std::max_element(gates.begin(), gates.end());
    float denom = 0.0f;
    for (float &g : gates)
      denom += (g = std::exp(g - mx));
    float sum = 0.0f;
    for (size_t i = 0; i < gates.size(); ++i)
      sum += values[i] * (gates[i] / denom);
    entry[c] = sum;
  }
}

} // namespace

void compress(const float *kv, const float *gate, int64_t T, const float *positionBias,
              const float *normWeight, const int32_t *positions, const CompressParams &p,
              CacheBuffer &state, CacheBuffer &entries) {
  const int64_t m = p.rate, C = p.headDim, Cin = p.overlap ? 2 * C : C;
  v4c::check(state.width == 2 * Cin && state.rows == 2 * m,
             "compress: state cache has the wrong shape");
  v4c::check(entries.width == C, "compress: entries cache has the wrong width");
  std::vector<float> entry(C), normed(C);
  for (int64_t t = 0; t < T; ++t) {
    const int64_t pos = positions[t];
    const int64_t slot = pos % m;
    float *row = state.row(m + slot);
    for (int64_t i = 0; i < Cin; ++i) {
      row[i] = kv[t * Cin + i];
      row[Cin + i] = gate[t * Cin + i] + positionBias[slot * Cin + i];
    }
    if (slot != m - 1)
      continue;
    const int64_t w = pos / m;
    if (w < entries.frozenRows) { // a restored entry (Session::restorePages): keep it
      std::memcpy(state.row(0), state.row(m), sizeof(float) * m * 2 * Cin);
      continue;
    }
    v4c::check(entries.rows == w, "compress: entries cache out of sync with positions");
    poolWindow(state, Cin, p, /*hasPrevious=*/w > 0, entry.data());
    rmsNorm(entry.data(), 1, C, C, normWeight, p.eps, normed.data());
    ropeVector(normed.data(), w * m, p.rope, /*inverse=*/false);
    entries.resizeRows(w + 1);
    storeCacheRow(entries, w, normed.data()); // rounded to the slot's format
    // The completed window becomes the previous one for entry w+1.
    std::memcpy(state.row(0), state.row(m), sizeof(float) * m * 2 * Cin);
  }
}

void indexerTopK(const float *q, const float *weights, const int32_t *positions, int64_t T,
                 const CacheBuffer &keys, const IndexerParams &p, int32_t *out, ThreadPool *pool) {
  const int64_t H = p.heads, dI = p.headDim;
  parallelFor(pool, T, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scores;
    std::vector<int32_t> order;
    for (int64_t t = begin; t < end; ++t) {
      const int64_t visible = std::min<int64_t>((positions[t] + 1) / p.rate, keys.rows);
      scores.assign(visible, 0.0f);
      for (int64_t w = 0; w < visible; ++w) {
        float score = 0.0f;
        for (int64_t h = 0; h < H; ++h) {
          const float qk = dot(q + (t * H + h) * dI, keys.row(w), dI);
          const float head = std::max(qk, 0.0f) * static_cast<float>(p.scoreScale);
          score += head * (weights[t * H + h] * static_cast<float>(p.weightScale));
        }
        scores[w] = score;
      }
      order.resize(visible);
      std::iota(order.begin(), order.end(), 0);
      const int64_t keep = std::min(visible, p.topK);
      // Highest score first; equal scores: lower entry index first, so
      // prefill, chunked prefill and decode agree.
      std::partial_sort(order.begin(), order.begin() + keep, order.end(),
                        [&](int32_t a, int32_t b) {
                          return scores[a] != scores[b] ? scores[a] > scores[b] : a < b;
                        });
      int32_t *o = out + t * p.topK;
      for (int64_t i = 0; i < p.topK; ++i)
        o[i] = i < keep ? order[i] : -1;
    }
  });
}

void attention(const float *q, const float *kv, const float *sinks, const int32_t *positions,
               int64_t T, const CacheBuffer &windowCache, const CacheBuffer *entries,
               const int32_t *topk, const AttentionParams &p, float *out, ThreadPool *pool) {
  const int64_t H = p.numHeads, hd = p.headDim, W = p.window;
  const int64_t chunkStart = positions[0];
  // This chunk's kv is read as the window cache stores it, so a narrow cache
  // gives the same candidates in one prefill, in chunks and in decode.
  std::vector<float> storedKv;
  if (!windowCache.format.isF32()) {
    storedKv.resize(static_cast<size_t>(T * hd));
    roundCacheRows(windowCache.format, kv, T, hd, storedKv.data());
    kv = storedKv.data();
  }
  parallelFor(pool, T, 1, [&](int64_t begin, int64_t end) {
    std::vector<const float *> candidates;
    std::vector<float> logits;
    for (int64_t t = begin; t < end; ++t) {
      const int64_t pos = positions[t];
      candidates.clear();
      for (int64_t j = std::max<int64_t>(0, pos - W + 1); j <= pos; ++j)
        candidates.push_back(j >= chunkStart ? kv + (j - chunkStart) * hd
                                             : windowCache.row(j % windowCache.rows));
      if (p.rate > 0 && entries) {
        const int64_t visible = std::min<int64_t>((pos + 1) / p.rate, entries->rows);
        if (topk) {
          for (int64_t i = 0; i < p.topKWidth; ++i) {
            const int32_t w = topk[t * p.topKWidth + i];
            if (w >= 0 && w < visible)
              candidates.push_back(entries->row(w));
          }
        } else {
          for (int64_t w = 0; w < visible; ++w)
            candidates.push_back(entries->row(w));
        }
      }
      const int64_t n = static_cast<int64_t>(candidates.size());
      logits.resize(n);
      for (int64_t h = 0; h < H; ++h) {
        const float *qh = q + (t * H + h) * hd;
        float mx = sinks[h];
        for (int64_t i = 0; i < n; ++i) {
          logits[i] = dot(qh, candidates[i], hd) * static_cast<float>(p.scale);
          mx = std::max(mx, logits[i]);
        }
        // The sink takes probability mass but contributes no value.
        float denom = std::exp(sinks[h] - mx);
        for (int64_t i = 0; i < n; ++i)
          denom += (logits[i] = std::exp(logits[i] - mx));
        float *o = out + (t * H + h) * hd;
        std::fill(o, o + hd, 0.0f);
        for (int64_t i = 0; i < n; ++i) {
          const float prob = logits[i] / denom;
          const float *e = candidates[i];
          for (int64_t d = 0; d < hd; ++d)
            o[d] += prob * e[d];
        }
      }
    }
  });
}

void cacheAppend(CacheBuffer &windowCache, const float *kv, const int32_t *positions, int64_t T) {
  const int64_t W = windowCache.rows, width = windowCache.width;
  // Only the last W tokens of the chunk can still be read by later chunks.
  for (int64_t t = std::max<int64_t>(0, T - W); t < T; ++t)
    storeCacheRow(windowCache, positions[t] % W, kv + t * width);
}

} // namespace v4rt::ref
