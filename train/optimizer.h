// AdamW over a model's named parameters with fp32 states, a warmup-cosine learning rate, global
// gradient-norm clipping, and skipping of steps whose gradients are not finite.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "decoder/model.h"
#include "kernels/ops/adamw.h"

namespace nuri {

// Learning rate at optimizer step `step` (from 1): linear warmup over warmup_steps, then a cosine
// from peak_lr down to peak_lr * min_ratio at total_steps.
double warmup_cosine_lr(int64_t step, int64_t total_steps, int64_t warmup_steps, double peak_lr,
                        double min_ratio);

// What one optimizer step did.
struct StepResult {
  double grad_norm = 0;  // before clipping
  bool skipped = false;  // the gradients held a NaN or inf, so nothing changed
};

class AdamW {
 public:
  // States for every parameter. Parameter i learns at lr * lr_scales[i] (all 1 when lr_scales is
  // empty) and decays when decays[i] (when decays is empty: matrices do, norms and biases not).
  AdamW(std::vector<NamedParameter>& parameters, const AdamWOptions& options, float grad_clip,
        std::vector<float> lr_scales = {}, std::vector<bool> decays = {});

  // The sum of squared gradients over every rank from this rank's (ZeRO-1: each rank holds a
  // part of the gradients, and the clipping norm is the whole's).
  void set_squares_reduction(std::function<double(double)> reduce) {
    reduce_squares_ = std::move(reduce);
  }

  // Clips the accumulated gradients to the global norm, updates every parameter at learning
  // rate `lr`, and clears the gradients. A non-finite norm skips the update (and still clears).
  StepResult step(double lr);
  int64_t steps_taken() const { return step_; }
  void set_steps_taken(int64_t steps) { step_ = steps; }

  // States as named tensors ("<param>.exp_avg", "<param>.exp_avg_sq") for checkpoints.
  std::vector<std::pair<std::string, Tensor>> state() const;
  // Parameter i's states, to fill from a checkpoint (train/data_parallel.h reads any layout).
  Tensor& exp_avg(size_t i) { return exp_avg_[i]; }
  Tensor& exp_avg_sq(size_t i) { return exp_avg_sq_[i]; }

 private:
  std::vector<NamedParameter>& parameters_;
  AdamWOptions options_;
  float grad_clip_;
  std::vector<float> lr_scales_;
  std::vector<bool> decays_;
  std::function<double(double)> reduce_squares_;
  int64_t step_ = 0;
  std::vector<Tensor> exp_avg_, exp_avg_sq_;
};

}  // namespace nuri
