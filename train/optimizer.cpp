#include "train/optimizer.h"

#include <cmath>
#include <numbers>

#include "kernels/autograd.h"
#include "kernels/error.h"

namespace nuri {

double warmup_cosine_lr(int64_t step, int64_t total_steps, int64_t warmup_steps, double peak_lr,
                        double min_ratio) {
  if (warmup_steps > 0 && step <= warmup_steps) {
    return peak_lr * static_cast<double>(step) / static_cast<double>(warmup_steps);
  }
  const int64_t span = std::max<int64_t>(1, total_steps - warmup_steps);
  const double progress = std::min(1.0, static_cast<double>(step - warmup_steps) / span);
  const double cosine = 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
  return peak_lr * (min_ratio + (1.0 - min_ratio) * cosine);
}

AdamW::AdamW(std::vector<NamedParameter>& parameters, const AdamWOptions& options, float grad_clip,
             std::vector<float> lr_scales, std::vector<bool> decays)
    : parameters_(parameters),
      options_(options),
      grad_clip_(grad_clip),
      lr_scales_(lr_scales.empty() ? std::vector<float>(parameters.size(), 1.0f)
                                   : std::move(lr_scales)),
      decays_(std::move(decays)) {
  NURI_CHECK(lr_scales_.size() == parameters_.size(), "adamw: ", lr_scales_.size(),
             " learning-rate factors for ", parameters_.size(), " parameters");
  if (decays_.empty()) {
    for (const auto& p : parameters_) decays_.push_back(p.tensor.dim() >= 2);
  }
  NURI_CHECK(decays_.size() == parameters_.size(), "adamw: ", decays_.size(),
             " weight-decay flags for ", parameters_.size(), " parameters");
  for (const auto& p : parameters_) {
    exp_avg_.push_back(Tensor::zeros(p.tensor.shape(), DType::f32, p.tensor.device()));
    exp_avg_sq_.push_back(Tensor::zeros(p.tensor.shape(), DType::f32, p.tensor.device()));
  }
}

StepResult AdamW::step(double lr) {
  NoGradScope no_grad;
  StepResult result;
  std::vector<Tensor> grads;
  for (const auto& p : parameters_) {
    if (Tensor grad = p.tensor.grad(); grad.defined()) grads.push_back(grad);
  }
  double squares = sum_of_squares(grads);
  if (reduce_squares_) squares = reduce_squares_(squares);
  result.grad_norm = std::sqrt(squares);
  if (!std::isfinite(result.grad_norm)) {
    result.skipped = true;
    for (auto& p : parameters_) p.tensor.clear_grad();
    return result;
  }
  const float clip = grad_clip_ > 0 && result.grad_norm > grad_clip_
                         ? static_cast<float>(grad_clip_ / (result.grad_norm + 1e-6))
                         : 1.0f;
  ++step_;
  std::vector<AdamWTensors> entries;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    const Tensor& param = parameters_[i].tensor;
    Tensor grad = param.grad();
    if (!grad.defined()) continue;
    const float weight_decay = decays_[i] ? options_.weight_decay : 0.0f;
    entries.push_back({param, grad, exp_avg_[i], exp_avg_sq_[i],
                       static_cast<float>(lr) * lr_scales_[i], weight_decay});
  }
  adamw_multi_step(entries, options_, clip, step_);
  for (auto& p : parameters_) p.tensor.clear_grad();
  return result;
}

std::vector<std::pair<std::string, Tensor>> AdamW::state() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    out.emplace_back(parameters_[i].name + ".exp_avg", exp_avg_[i]);
    out.emplace_back(parameters_[i].name + ".exp_avg_sq", exp_avg_sq_[i]);
  }
  return out;
}

}  // namespace nuri
