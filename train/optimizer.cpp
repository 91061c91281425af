#include "train/optimizer.h"

#include <cmath>
#include <numbers>

#include "kernels/autograd.h"
#include "kernels/error.h"

namespace nuri {

namespace {

// Sum of x^2 in double over fixed-size chunks added in order: the same bits at any thread count.
double sum_of_squares(const float* x, int64_t n) {
  constexpr int64_t kChunk = 1 << 16;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(chunks);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    double local = 0;
    for (int64_t i = c * kChunk; i < std::min(n, (c + 1) * kChunk); ++i) {
      local += static_cast<double>(x[i]) * x[i];
    }
    partial[c] = local;
  }
  double total = 0;
  for (double value : partial) total += value;
  return total;
}

}  // namespace

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
    exp_avg_.push_back(Tensor::zeros(p.tensor.shape()));
    exp_avg_sq_.push_back(Tensor::zeros(p.tensor.shape()));
  }
}

StepResult AdamW::step(double lr) {
  NoGradScope no_grad;
  StepResult result;
  double squares = 0;
  for (const auto& p : parameters_) {
    const Tensor grad = p.tensor.grad();
    if (!grad.defined()) continue;
    squares += sum_of_squares(grad.data<float>(), grad.numel());
  }
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
  for (size_t i = 0; i < parameters_.size(); ++i) {
    Tensor& param = parameters_[i].tensor;
    const Tensor grad = param.grad();
    if (!grad.defined()) continue;
    if (clip != 1.0f) {  // each leaf owns its gradient buffer, so it is scaled in place
      float* g = grad.data<float>();
      const int64_t n = grad.numel();
#pragma omp parallel for schedule(static)
      for (int64_t j = 0; j < n; ++j) g[j] *= clip;
    }
    AdamWOptions options = options_;
    options.lr = static_cast<float>(lr) * lr_scales_[i];
    if (!decays_[i]) options.weight_decay = 0;
    adamw_step(param, grad, exp_avg_[i], exp_avg_sq_[i], options, step_);
    param.clear_grad();
  }
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
