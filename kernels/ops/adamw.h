// AdamW with decoupled weight decay (Loshchilov & Hutter), updating fp32 master weights and
// optimizer states in place; the formula is torch.optim.AdamW's. A step over a whole model runs
// as one multi-tensor update (a few launches on a GPU, whatever the number of parameters).
#pragma once

#include <cstdint>
#include <vector>

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

// One parameter of a multi-tensor step: its tensors (f32, one shape, one device, no two sharing
// memory) and its own learning rate and weight decay.
struct AdamWTensors {
  Tensor param, grad, exp_avg, exp_avg_sq;
  float lr = 0, weight_decay = 0;
};

// One in-place update at `step` (counting from 1) of every entry, its gradient first multiplied
// by grad_scale (global-norm clipping), with beta1, beta2 and eps from `options`:
//   g = grad_scale grad
//   param -= lr * weight_decay * param
//   m = beta1 m + (1 - beta1) g,  v = beta2 v + (1 - beta2) g^2
//   param -= lr * (m / (1 - beta1^step)) / (sqrt(v / (1 - beta2^step)) + eps)
// Every entry is on one device. Not recorded by autograd.
void adamw_multi_step(const std::vector<AdamWTensors>& entries, const AdamWOptions& options,
                      float grad_scale, int64_t step);

// The same for one parameter, at options.lr and options.weight_decay.
void adamw_step(Tensor& param, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq,
                const AdamWOptions& options, int64_t step);

// The sum of the squares of every element of every tensor (f32, one device), accumulated in
// double in a fixed order: the same bits on every run and at any thread count.
double sum_of_squares(const std::vector<Tensor>& tensors);

// The update above, with bias_correction1 = 1 - beta1^step and bias_correction2 = 1 - beta2^step.
NURI_KERNEL(adamw_multi_update,
            (const std::vector<AdamWTensors>& entries, const AdamWOptions& options,
             float grad_scale, double bias_correction1, double bias_correction2))
NURI_KERNEL(sum_of_squares_of, (const std::vector<Tensor>& tensors, double& total))

}  // namespace nuri
