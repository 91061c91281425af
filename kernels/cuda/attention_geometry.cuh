// The shapes and mask of one attention call as the CUDA kernels see them, passed by value.
#pragma once

#include <cstdint>

#include "kernels/ops/attention.h"

namespace nuri::cuda {

struct AttentionGeometry {
  int64_t batch, tq, tk, hq, hkv, d;
  AttentionMask mask;
  int64_t block_size;
  float scale;

  // Whether query i sees key j (queries are aligned to the end of the keys).
  __device__ bool visible(int64_t i, int64_t j) const {
    const int64_t p = tk - tq + i;
    if (mask == AttentionMask::full) return true;
    if (mask == AttentionMask::causal) return j <= p;
    return j / block_size <= p / block_size;
  }
  // The end of the keys that queries up to `last` see (every mask shows each query a prefix).
  __device__ int64_t key_end(int64_t last) const {
    const int64_t p = tk - tq + last;
    const int64_t end = mask == AttentionMask::full     ? tk
                        : mask == AttentionMask::causal ? p + 1
                                                        : (p / block_size + 1) * block_size;
    return end < tk ? end : tk;
  }
  // The first query that sees any key from `first` on (under the full mask, query 0, even when
  // there are more queries than keys).
  __device__ int64_t first_query(int64_t first) const {
    if (mask == AttentionMask::full) return 0;
    const int64_t p = mask == AttentionMask::causal ? first : first / block_size * block_size;
    const int64_t i = p - (tk - tq);
    return i > 0 ? i : 0;
  }
  __device__ int64_t q_at(int64_t b, int64_t i, int64_t h) const {
    return ((b * tq + i) * hq + h) * d;
  }
  __device__ int64_t kv_at(int64_t b, int64_t j, int64_t h) const {
    return ((b * tk + j) * hkv + h) * d;
  }
};

inline AttentionGeometry attention_geometry(const Tensor& q, const Tensor& k,
                                            const AttentionOptions& o) {
  return {q.size(0), q.size(1), k.size(1),    q.size(2), k.size(2),
          q.size(3), o.mask,    o.block_size, o.scale};
}

}  // namespace nuri::cuda
