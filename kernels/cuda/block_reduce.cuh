// Reductions across one thread block in a fixed tree order, so a block's result is the same on
// every run. The block size must be a power of two, at most kMaxBlock.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace nuri::cuda {

inline constexpr int kMaxBlock = 1024;
// Threads of a block that owns one row of a row-wise kernel.
inline constexpr unsigned kRowThreads = 256;

// Whether block_reduce can run on blocks of `threads` threads.
constexpr bool reducible_block(unsigned threads) {
  return (threads & (threads - 1)) == 0 && threads <= kMaxBlock;
}
static_assert(reducible_block(kRowThreads));

// Deterministic sums over a long dimension of n, in two passes: partial sums over spans of it
// (in order), then each output's partials in order. A span is at least `least` long and there
// are at most kMaxSpans, so the split depends on the shape alone.
inline constexpr int64_t kMaxSpans = 128;
inline int64_t span_length(int64_t n, int64_t least) {
  const int64_t even = (n + kMaxSpans - 1) / kMaxSpans;
  return even > least ? even : least;
}
// The second pass: out[c] = factor * the sum over p < parts of partial[p * outputs + c], in
// order of p (reduce.cu).
void add_partials(int device, const double* partial, int64_t outputs, int64_t parts, float factor,
                  float* out);

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
