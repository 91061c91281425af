// CPU fused cross-entropy (f32 logits). Rows run in parallel; within a row, the vocabulary is
// read in blocks small enough to stay in L1, so the forward's max and exp-sum over a block cost
// one pass over memory, and every inner loop vectorises (cpu::fast_exp).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/parallel.h"
#include "kernels/cpu/vec_math.h"
#include "kernels/ops/checks.h"
#include "kernels/ops/cross_entropy.h"

namespace nuri::cpu {
namespace {

constexpr int64_t kBlock = 2048;  // floats per vocabulary block: 8 KiB

// logsumexp of one row: a running maximum and a running f64 sum of exp(x - max), rescaled when a
// block raises the maximum. The sum is kept in f64 so that a confident row (the target near the
// maximum, loss near 0) keeps its relative accuracy.
double row_logsumexp(const float* x, int64_t v) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  float top = kNegInf;
  double total = 0;
  for (int64_t begin = 0; begin < v; begin += kBlock) {
    const float* xb = x + begin;
    const int64_t len = std::min(kBlock, v - begin);
    float block_top = kNegInf;
#pragma omp simd reduction(max : block_top)
    for (int64_t j = 0; j < len; ++j) block_top = std::max(block_top, xb[j]);
    if (block_top == kNegInf) continue;  // every term is exp(-inf) = 0
    if (block_top > top) {
      total *= std::exp(static_cast<double>(top) - block_top);
      top = block_top;
    }
    double block_sum = 0;
#pragma omp simd reduction(+ : block_sum)
    for (int64_t j = 0; j < len; ++j) block_sum += fast_exp(xb[j] - top);
    total += block_sum;
  }
  return top + std::log(total);
}

}  // namespace

void cross_entropy_forward(const Tensor& logits, const Tensor& targets, int64_t ignore_index,
                           int64_t count, Tensor& lse, Tensor& loss) {
  checks::cpu_f32("cross_entropy", logits, "logits");
  const int64_t n = logits.size(0), v = logits.size(1);
  const float* px = logits.data<float>();
  float* pl = lse.data<float>();
  std::vector<double> row_loss(static_cast<size_t>(n), 0.0);
  const std::vector<int64_t> target = targets.to_int_vector();
#pragma omp parallel for schedule(dynamic, 1) if (n * v > kParallelElements)
  for (int64_t r = 0; r < n; ++r) {
    const int64_t t = target[r];
    if (t == ignore_index) {
      pl[r] = 0;
      continue;
    }
    const float* xr = px + r * v;
    const double row_lse = row_logsumexp(xr, v);
    pl[r] = static_cast<float>(row_lse);
    row_loss[r] = row_lse - xr[t];
  }
  double total = 0;  // summed in row order: the loss does not depend on the thread count
  for (double l : row_loss) total += l;
  loss.data<float>()[0] = count > 0 ? static_cast<float>(total / count) : 0.0f;
}

void cross_entropy_backward(const Tensor& grad_loss, const Tensor& logits, const Tensor& targets,
                            const Tensor& lse, int64_t ignore_index, int64_t count,
                            Tensor& grad_logits) {
  checks::cpu_f32("cross_entropy backward", grad_loss, "grad_loss");
  const int64_t n = logits.size(0), v = logits.size(1);
  const float* px = logits.data<float>();
  const float* pl = lse.data<float>();
  float* pd = grad_logits.data<float>();
  const float scale =
      count > 0 ? static_cast<float>(grad_loss.data<float>()[0] / static_cast<double>(count)) : 0;
  const std::vector<int64_t> target = targets.to_int_vector();
#pragma omp parallel for schedule(dynamic, 1) if (n * v > kParallelElements)
  for (int64_t r = 0; r < n; ++r) {
    const int64_t t = target[r];
    float* dr = pd + r * v;
    if (t == ignore_index || count == 0) {
      std::fill(dr, dr + v, 0.0f);
      continue;
    }
    const float* xr = px + r * v;
    const float row_lse = pl[r];
#pragma omp simd
    for (int64_t j = 0; j < v; ++j) dr[j] = scale * fast_exp(xr[j] - row_lse);
    dr[t] -= scale;
  }
}

}  // namespace nuri::cpu
