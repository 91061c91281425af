// A fixed-batch training loop for model tests: AdamW steps over a model's parameters, returning
// each step's loss.
#pragma once

#include <functional>
#include <vector>

#include "kernels/autograd.h"
#include "kernels/ops/adamw.h"
#include "kernels/parameter.h"

namespace nuri::test {

// `steps` steps of: the loss from `loss_of` under a tape, backward, one multi-tensor AdamW step
// with `options` over every parameter that got a gradient (states on the parameters' devices).
inline std::vector<double> adamw_losses(const std::vector<NamedParameter>& params, int steps,
                                        const AdamWOptions& options,
                                        const std::function<Tensor()>& loss_of) {
  std::vector<Tensor> exp_avg, exp_avg_sq;
  for (const NamedParameter& p : params) {
    exp_avg.push_back(Tensor::zeros(p.tensor.shape(), DType::f32, p.tensor.device()));
    exp_avg_sq.push_back(Tensor::zeros(p.tensor.shape(), DType::f32, p.tensor.device()));
  }
  std::vector<double> losses;
  for (int64_t step = 1; step <= steps; ++step) {
    Tape tape;
    Tensor loss;
    {
      TapeScope scope(tape);
      loss = loss_of();
    }
    tape.backward(loss);
    losses.push_back(static_cast<double>(loss.item()));
    std::vector<AdamWTensors> entries;
    for (size_t i = 0; i < params.size(); ++i) {
      if (!params[i].tensor.grad().defined()) continue;
      entries.push_back({params[i].tensor, params[i].tensor.grad(), exp_avg[i], exp_avg_sq[i],
                         options.lr, options.weight_decay});
    }
    adamw_multi_step(entries, options, 1.0f, step);
    for (NamedParameter p : params) p.tensor.clear_grad();  // the copy shares the gradient slot
  }
  return losses;
}

}  // namespace nuri::test
