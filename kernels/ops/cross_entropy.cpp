#include "kernels/ops/cross_entropy.h"

#include "kernels/autograd.h"
#include "kernels/ops/checks.h"

namespace nuri {
namespace {

// Checks every target against [0, v) and returns how many rows are not ignored.
int64_t count_targets(const Tensor& targets, int64_t v, int64_t ignore_index) {
  const std::vector<int64_t> values = targets.to_int_vector();
  int64_t count = 0;
  for (size_t r = 0; r < values.size(); ++r) {
    const int64_t t = values[r];
    if (t == ignore_index) continue;
    NURI_CHECK(t >= 0 && t < v, "cross_entropy: target ", t, " at row ", r, " is outside [0, ", v,
               ") and is not ignore_index ", ignore_index);
    ++count;
  }
  return count;
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index) {
  checks::floating("cross_entropy", logits, "logits");
  NURI_CHECK(logits.dim() == 2, "cross_entropy: logits must be [N, V], not ",
             shape_str(logits.shape()));
  const int64_t n = logits.size(0), v = logits.size(1);
  NURI_CHECK(v > 0, "cross_entropy: logits have an empty vocabulary, shape ",
             shape_str(logits.shape()));
  checks::integer("cross_entropy", targets, "targets");
  NURI_CHECK(targets.device() == logits.device(), "cross_entropy: targets are on ",
             targets.device(), " but logits are on ", logits.device());
  checks::shape("cross_entropy", targets, "targets", {n});
  const int64_t count = count_targets(targets, v, ignore_index);
  Tensor lse = Tensor::empty({n}, DType::f32, logits.device());
  Tensor loss = Tensor::empty({}, logits.dtype(), logits.device());
  NURI_DISPATCH(logits.device(), cross_entropy_forward, logits, targets, ignore_index, count, lse,
                loss);
  if (autograd::needed(logits)) {
    autograd::record("cross_entropy", {logits}, {&loss},
                     [logits = logits.detach(),
                      targets = targets.clone(),  // a copy: the caller may refill its batch buffer
                      lse, ignore_index, count](const auto& grads, const auto&) {
                       Tensor grad = Tensor::empty(logits.shape(), logits.dtype(), logits.device());
                       NURI_DISPATCH(logits.device(), cross_entropy_backward, grads[0], logits,
                                     targets, lse, ignore_index, count, grad);
                       return std::vector<Tensor>{grad};
                     });
  }
  return loss;
}

}  // namespace nuri
