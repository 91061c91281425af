// CPU reductions: f32 data, double accumulation, and a fixed summation order, so that a sum
// does not depend on the number of threads.
#include <algorithm>
#include <vector>

#include "kernels/cpu/parallel.h"
#include "kernels/ops/checks.h"
#include "kernels/ops/reduce.h"

namespace nuri::cpu {

namespace {

constexpr int64_t kChunk = 4096;      // elements per partial sum of a long row
constexpr int64_t kColumnBlock = 64;  // columns per task when summing over a middle dimension

// Sum of one chunk, vectorised, in double.
double chunk_sum(const float* x, int64_t n) {
  double total = 0;
#pragma omp simd reduction(+ : total)
  for (int64_t k = 0; k < n; ++k) total += x[k];
  return total;
}

// Sum of a row as the in-order sum of its chunk sums. The chunks may be summed on any threads:
// the result is the same, whatever the thread count.
double row_sum(const float* row, int64_t n, bool parallel) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(static_cast<size_t>(chunks));
#pragma omp parallel for if (parallel && n > 2 * kParallelElements)
  for (int64_t c = 0; c < chunks; ++c) {
    partial[c] = chunk_sum(row + c * kChunk, std::min(kChunk, n - c * kChunk));
  }
  double total = 0;
  for (double p : partial) total += p;
  return total;
}

}  // namespace

void reduce_sum_forward(const Tensor& x, int64_t outer, int64_t n, int64_t inner, float factor,
                        Tensor& out) {
  checks::cpu_f32("sum", x, "x");
  const float* px = x.data<float>();
  float* po = out.data<float>();
  if (inner == 1) {  // sums of contiguous rows; one long row splits across threads by chunk
    if (outer == 1) {
      po[0] = static_cast<float>(row_sum(px, n, true) * factor);
      return;
    }
#pragma omp parallel for if (outer * n > kParallelElements)
    for (int64_t o = 0; o < outer; ++o)
      po[o] = static_cast<float>(row_sum(px + o * n, n, false) * factor);
    return;
  }
  // Sums over a middle dimension: each task owns a block of output columns and adds the n rows
  // in order, so every output is summed the same way on any number of threads.
  const int64_t blocks = (inner + kColumnBlock - 1) / kColumnBlock;
#pragma omp parallel for collapse(2) if (outer * n * inner > kParallelElements)
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t c0 = blk * kColumnBlock;
      const int64_t width = std::min(kColumnBlock, inner - c0);
      double acc[kColumnBlock] = {};
      for (int64_t k = 0; k < n; ++k) {
        const float* row = px + (o * n + k) * inner + c0;
#pragma omp simd
        for (int64_t i = 0; i < width; ++i) acc[i] += row[i];
      }
      for (int64_t i = 0; i < width; ++i)
        po[o * inner + c0 + i] = static_cast<float>(acc[i] * factor);
    }
  }
}

void reduce_sum_backward(const Tensor& grad, int64_t outer, int64_t n, int64_t inner, float factor,
                         Tensor& grad_x) {
  checks::cpu_f32("sum backward", grad, "grad");
  const float* pg = grad.data<float>();
  float* px = grad_x.data<float>();
#pragma omp parallel for collapse(2) if (outer * n * inner > kParallelElements)
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t k = 0; k < n; ++k) {
      float* row = px + (o * n + k) * inner;
      const float* g = pg + o * inner;
#pragma omp simd
      for (int64_t i = 0; i < inner; ++i) row[i] = g[i] * factor;
    }
  }
}

}  // namespace nuri::cpu
