// CPU reductions (f32 data, double accumulation for the sums that decide losses and norms).
#include <vector>

#include "kernels/ops/checks.h"
#include "kernels/ops/reduce.h"

namespace nuri::cpu {

void reduce_sum_forward(const Tensor& x, int64_t outer, int64_t n, int64_t inner, float factor,
                        Tensor& out) {
  checks::cpu_f32("sum", x, "x");
  const float* px = x.data<float>();
  float* po = out.data<float>();
  if (outer == 1 && inner == 1) {  // a full reduction: split the one long row across threads
    double total = 0;
#pragma omp parallel for reduction(+ : total) if (n > (1 << 16))
    for (int64_t k = 0; k < n; ++k) total += px[k];
    po[0] = static_cast<float>(total * factor);
    return;
  }
  if (inner == 1) {
#pragma omp parallel for if (outer * n > (1 << 15))
    for (int64_t o = 0; o < outer; ++o) {
      const float* row = px + o * n;
      double total = 0;
#pragma omp simd reduction(+ : total)
      for (int64_t k = 0; k < n; ++k) total += row[k];
      po[o] = static_cast<float>(total * factor);
    }
    return;
  }
#pragma omp parallel for if (outer * n * inner > (1 << 15))
  for (int64_t o = 0; o < outer; ++o) {
    std::vector<double> acc(static_cast<size_t>(inner), 0.0);
    for (int64_t k = 0; k < n; ++k) {
      const float* row = px + (o * n + k) * inner;
#pragma omp simd
      for (int64_t i = 0; i < inner; ++i) acc[i] += row[i];
    }
    for (int64_t i = 0; i < inner; ++i) po[o * inner + i] = static_cast<float>(acc[i] * factor);
  }
}

void reduce_sum_backward(const Tensor& grad, int64_t outer, int64_t n, int64_t inner, float factor,
                         Tensor& grad_x) {
  checks::cpu_f32("sum backward", grad, "grad");
  const float* pg = grad.data<float>();
  float* px = grad_x.data<float>();
#pragma omp parallel for collapse(2) if (outer * n * inner > (1 << 15))
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
