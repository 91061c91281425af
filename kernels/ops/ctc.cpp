#include "kernels/ops/ctc.h"

#include <cmath>
#include <limits>

#include "kernels/autograd.h"
#include "kernels/ops/checks.h"

namespace nuri {

Tensor ctc_loss(const Tensor& logits, const Tensor& targets, const Tensor& input_lengths,
                const Tensor& target_lengths, int64_t blank) {
  checks::floating("ctc_loss", logits, "logits");
  NURI_CHECK(logits.dim() == 3, "ctc_loss: logits must be [B, T, C], not ",
             shape_str(logits.shape()));
  const int64_t b = logits.size(0), t = logits.size(1), c = logits.size(2);
  NURI_CHECK(blank >= 0 && blank < c, "ctc_loss: blank ", blank, " is outside the ", c, " classes");
  checks::integer("ctc_loss", targets, "targets");
  checks::integer("ctc_loss", input_lengths, "input_lengths");
  checks::integer("ctc_loss", target_lengths, "target_lengths");
  NURI_CHECK(targets.dim() == 2 && targets.size(0) == b, "ctc_loss: targets must be [", b,
             ", S], not ", shape_str(targets.shape()));
  checks::shape("ctc_loss", input_lengths, "input_lengths", {b});
  checks::shape("ctc_loss", target_lengths, "target_lengths", {b});
  const int64_t s = targets.size(1);
  const std::vector<int64_t> flat = targets.to_int_vector(), frames = input_lengths.to_int_vector(),
                             lengths = target_lengths.to_int_vector();
  std::vector<std::vector<int64_t>> labels(static_cast<size_t>(b));
  for (int64_t i = 0; i < b; ++i) {
    NURI_CHECK(frames[i] >= 0 && frames[i] <= t, "ctc_loss: input length ", frames[i], " of item ",
               i, " is outside [0, ", t, "]");
    NURI_CHECK(lengths[i] >= 0 && lengths[i] <= s, "ctc_loss: target length ", lengths[i],
               " of item ", i, " is outside [0, ", s, "]");
    for (int64_t j = 0; j < lengths[i]; ++j) {
      const int64_t label = flat[i * s + j];
      NURI_CHECK(label >= 0 && label < c && label != blank, "ctc_loss: label ", label, " at item ",
                 i, ", position ", j, " is outside [0, ", c, ") or is the blank ", blank);
      labels[i].push_back(label);
    }
  }
  Tensor lse = Tensor::zeros({b, t}, DType::f32, logits.device());
  std::vector<double> nll;
  NURI_DISPATCH(logits.device(), ctc_forward, logits, labels, frames, blank, lse, nll);
  // The mean over items of each item's loss per label; an impossible item counts as 0.
  std::vector<double> weight(static_cast<size_t>(b), 0.0);
  double total = 0;
  for (int64_t i = 0; i < b; ++i) {
    // No alignment (too few frames for the labels): PyTorch's zero_infinity. NaN propagates.
    if (nll[i] == std::numeric_limits<double>::infinity()) continue;
    weight[i] = 1.0 / (static_cast<double>(b) * std::max<int64_t>(1, lengths[i]));
    total += nll[i] * weight[i];
  }
  Tensor loss = Tensor::from_data<float>(std::vector<float>{static_cast<float>(total)}, {})
                    .to(logits.device());
  if (autograd::needed(logits)) {
    autograd::record("ctc_loss", {logits}, {&loss},
                     [logits = logits.detach(), labels, frames, blank, lse, nll, weight](
                         const auto& grads, const auto&) {
                       const double upstream = grads[0].to(Device::cpu()).item();
                       std::vector<double> scale = weight;
                       for (double& w : scale) w *= upstream;
                       Tensor grad = Tensor::empty(logits.shape(), logits.dtype(), logits.device());
                       NURI_DISPATCH(logits.device(), ctc_backward, logits, labels, frames, blank,
                                     lse, nll, scale, grad);
                       return std::vector<Tensor>{grad};
                     });
  }
  return loss;
}

}  // namespace nuri
