// Reductions across one thread block in a fixed tree order, so a block's result is the same on
// every run. The block size must be a power of two, at most kMaxBlock.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace nuri::cuda {

inline constexpr int kMaxBlock = 1024;
// Threads of a block that owns one row of a row-wise kernel.
inline constexpr unsigned kRowThreads = 256;
static_assert((kRowThreads & (kRowThreads - 1)) == 0 && kRowThreads <= kMaxBlock,
              "block_reduce needs a power-of-two block of at most kMaxBlock threads");

// Blocks for a row-wise kernel over `rows` rows (each block loops over rows by the grid's size).
inline unsigned row_blocks(int64_t rows) {
  return static_cast<unsigned>(rows < 1 ? 1 : (rows > 65535 * 32 ? 65535 * 32 : rows));
}

// Every thread passes its value; every thread gets the block's combine() of all of them.
template <class T, class Combine>
__device__ T block_reduce(T value, Combine combine) {
  __shared__ T slots[kMaxBlock];
  slots[threadIdx.x] = value;
  __syncthreads();
  for (unsigned stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride)
      slots[threadIdx.x] = combine(slots[threadIdx.x], slots[threadIdx.x + stride]);
    __syncthreads();
  }
  const T result = slots[0];
  __syncthreads();  // the slots may be reused by the next call
  return result;
}

__device__ inline double block_sum(double value) {
  return block_reduce(value, [](double a, double b) { return a + b; });
}

__device__ inline float block_max(float value) {
  // NaN wins, as in the CPU kernels' comparisons.
  return block_reduce(value, [](float a, float b) { return a > b || a != a ? a : b; });
}

}  // namespace nuri::cuda
