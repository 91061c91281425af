// CPU AdamW update (f32 weights and states), one fused pass over the four arrays.
#include <cmath>

#include "kernels/cpu/parallel.h"
#include "kernels/ops/adamw.h"
#include "kernels/ops/checks.h"

namespace nuri::cpu {

void adamw_update(Tensor& param, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq,
                  const AdamWOptions& options, double bias_correction1, double bias_correction2) {
  checks::cpu_f32("adamw_step", param, "param");
  float* p = param.data<float>();
  const float* g = grad.data<float>();
  float* m = exp_avg.data<float>();
  float* v = exp_avg_sq.data<float>();
  const int64_t n = param.numel();
  const float decay =
      static_cast<float>(1.0 - static_cast<double>(options.lr) * options.weight_decay);
  const float beta1 = options.beta1, beta2 = options.beta2, eps = options.eps;
  const float step_size = static_cast<float>(options.lr / bias_correction1);
  const float sqrt_bc2 = static_cast<float>(std::sqrt(bias_correction2));
#pragma omp parallel for simd if (n > kParallelElements)
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i];
    const float mi = beta1 * m[i] + (1.0f - beta1) * gi;
    const float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay - step_size * (mi / (std::sqrt(vi) / sqrt_bc2 + eps));
  }
}

}  // namespace nuri::cpu
