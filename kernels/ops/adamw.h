// AdamW with decoupled weight decay (Loshchilov & Hutter), updating fp32 master weights and
// optimizer states in place; the formula is torch.optim.AdamW's.
#pragma once

#include <cstdint>

#include "kernels/dispatch.h"
#include "kernels/tensor.h"

namespace nuri {

// Hyperparameters of one AdamW step (PyTorch's defaults).
struct AdamWOptions {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.01f;
};

// One in-place update at `step` (counting from 1) of param with grad, exp_avg (m) and exp_avg_sq
// (v), all f32 of one shape on one device:
//   param -= lr * weight_decay * param
//   m = beta1 m + (1 - beta1) grad,  v = beta2 v + (1 - beta2) grad^2
//   param -= lr * (m / (1 - beta1^step)) / (sqrt(v / (1 - beta2^step)) + eps)
// Not recorded by autograd.
void adamw_step(Tensor& param, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq,
                const AdamWOptions& options, int64_t step);

// The update above, with bias_correction1 = 1 - beta1^step and bias_correction2 = 1 - beta2^step.
NURI_KERNEL(adamw_update,
            (Tensor & param, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq,
             const AdamWOptions& options, double bias_correction1, double bias_correction2))

}  // namespace nuri
