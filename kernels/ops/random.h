// Random fills from a counter-based stream: element i of a fill drawn at (seed, offset) comes from
// Philox block offset + i/4, lane i%4, so CPU and GPU produce the same numbers.
#pragma once

#include <cstdint>

#include "kernels/dispatch.h"
#include "kernels/tensor.h"

namespace nuri {

// A seed and a position in its stream; each fill advances the position past what it used.
// Plain data, so that checkpoints can save and restore it exactly.
struct Generator {
  uint64_t seed = 0;
  uint64_t offset = 0;  // in 4-number Philox blocks

  // Reserves the blocks for `count` numbers and returns the first block's offset.
  uint64_t take(int64_t count);
};

// Fills x with uniform numbers in [low, high).
void uniform_(Tensor& x, Generator& gen, float low = 0.0f, float high = 1.0f);
// Fills x with normal numbers (Box-Muller over lane pairs).
void normal_(Tensor& x, Generator& gen, float mean = 0.0f, float stddev = 1.0f);

NURI_KERNEL(random_uniform, (Tensor & x, uint64_t seed, uint64_t offset, float low, float high))
NURI_KERNEL(random_normal, (Tensor & x, uint64_t seed, uint64_t offset, float mean, float stddev))

}  // namespace nuri
