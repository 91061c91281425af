// CPU AdamW (f32 weights and states): one fused pass over each parameter's four arrays, and the
// sum of squares of the gradients for clipping.
#include <cmath>
#include <vector>

#include "kernels/cpu/parallel.h"
#include "kernels/ops/adamw.h"

namespace nuri::cpu {
namespace {

// Sum of x^2 in double over fixed-size chunks added in order: the same bits at any thread count.
double chunked_sum_of_squares(const float* x, int64_t n) {
  constexpr int64_t kChunk = 1 << 16;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(static_cast<size_t>(chunks));
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    double local = 0;
    for (int64_t i = c * kChunk; i < std::min(n, (c + 1) * kChunk); ++i) {
      local += static_cast<double>(x[i]) * x[i];
    }
    partial[static_cast<size_t>(c)] = local;
  }
  double total = 0;
  for (double value : partial) total += value;
  return total;
}

}  // namespace

void adamw_multi_update(const std::vector<AdamWTensors>& entries, const AdamWOptions& options,
                        float grad_scale, double bias_correction1, double bias_correction2) {
  const float beta1 = options.beta1, beta2 = options.beta2, eps = options.eps;
  const float sqrt_bc2 = static_cast<float>(std::sqrt(bias_correction2));
  for (const AdamWTensors& e : entries) {
    float* p = e.param.data<float>();
    const float* g = e.grad.data<float>();
    float* m = e.exp_avg.data<float>();
    float* v = e.exp_avg_sq.data<float>();
    const int64_t n = e.param.numel();
    const float decay = static_cast<float>(1.0 - static_cast<double>(e.lr) * e.weight_decay);
    const float step_size = static_cast<float>(e.lr / bias_correction1);
#pragma omp parallel for simd if (n > kParallelElements)
    for (int64_t i = 0; i < n; ++i) {
      const float gi = g[i] * grad_scale;
      const float mi = beta1 * m[i] + (1.0f - beta1) * gi;
      const float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
      m[i] = mi;
      v[i] = vi;
      p[i] = p[i] * decay - step_size * (mi / (std::sqrt(vi) / sqrt_bc2 + eps));
    }
  }
}

void sum_of_squares_of(const std::vector<Tensor>& tensors, double& total) {
  total = 0;
  for (const Tensor& t : tensors) total += chunked_sum_of_squares(t.data<float>(), t.numel());
}

}  // namespace nuri::cpu
