// CUDA AdamW update (f32 weights and states), one fused pass over the four arrays with the CPU
// kernel's formula.
#include <cmath>

#include "kernels/cuda/map.cuh"
#include "kernels/ops/adamw.h"

namespace nuri::cuda {

void adamw_update(Tensor& param, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq,
                  const AdamWOptions& options, double bias_correction1, double bias_correction2) {
  require_f32("adamw_step", param, "param");
  float* p = param.data<float>();
  const float* g = grad.data<float>();
  float* m = exp_avg.data<float>();
  float* v = exp_avg_sq.data<float>();
  const float decay =
      static_cast<float>(1.0 - static_cast<double>(options.lr) * options.weight_decay);
  const float beta1 = options.beta1, beta2 = options.beta2, eps = options.eps;
  const float step_size = static_cast<float>(options.lr / bias_correction1);
  const float sqrt_bc2 = static_cast<float>(std::sqrt(bias_correction2));
  launch_map(param, param.numel(), [=] __device__(int64_t i) {
    const float gi = g[i];
    const float mi = beta1 * m[i] + (1.0f - beta1) * gi;
    const float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay - step_size * (mi / (sqrtf(vi) / sqrt_bc2 + eps));
  });
}

}  // namespace nuri::cuda
