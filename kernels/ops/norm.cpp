#include "kernels/ops/norm.h"

#include <cmath>

#include "kernels/autograd.h"
#include "kernels/ops/checks.h"
#include "kernels/ops/elementwise.h"

namespace nuri {
namespace {

// Checks x [..., D] against a per-feature parameter [D] and returns the shape of the per-row
// statistics (x's shape without its last dimension).
Shape check_norm(const char* op, const Tensor& x, const Tensor& weight, float eps) {
  checks::floating(op, x, "x");
  NURI_CHECK(x.dim() >= 1, op, ": x must have at least 1 dimension, not ", shape_str(x.shape()));
  const int64_t d = x.size(-1);
  NURI_CHECK(d > 0, op, ": x has an empty last dimension, shape ", shape_str(x.shape()));
  checks::same_device_dtype(op, x, "x", weight, "weight");
  checks::shape(op, weight, "weight", {d});
  NURI_CHECK(eps >= 0 && std::isfinite(eps), op, ": eps must be finite and >= 0, not ", eps);
  return Shape(x.shape().begin(), x.shape().end() - 1);
}

}  // namespace

Tensor rms_norm(const Tensor& x, const Tensor& weight, float eps) {
  const Shape stats_shape = check_norm("rms_norm", x, weight, eps);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor rstd = Tensor::empty(stats_shape, DType::f32, x.device());
  NURI_DISPATCH(x.device(), rms_norm_forward, x, weight, eps, y, rstd);
  if (autograd::needed(x, weight)) {
    autograd::record(
        "rms_norm", {x, weight}, {&y},
        [x = x.detach(), weight = weight.detach(), rstd](const auto& grads, const auto& needs) {
          std::vector<Tensor> result(2);
          if (needs[0]) result[0] = Tensor::empty(x.shape(), x.dtype(), x.device());
          if (needs[1]) result[1] = Tensor::empty(weight.shape(), weight.dtype(), x.device());
          NURI_DISPATCH(x.device(), rms_norm_backward, grads[0], x, weight, rstd, result[0],
                        result[1]);
          return result;
        });
  }
  return y;
}

std::pair<Tensor, Tensor> add_rms_norm(const Tensor& x, const Tensor& residual,
                                       const Tensor& weight, float eps) {
  const Shape stats_shape = check_norm("add_rms_norm", x, weight, eps);
  checks::same_device_dtype("add_rms_norm", x, "x", residual, "residual");
  checks::shape("add_rms_norm", residual, "residual", x.shape());
  Tensor sum = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor rstd = Tensor::empty(stats_shape, DType::f32, x.device());
  NURI_DISPATCH(x.device(), add_rms_norm_forward, x, residual, weight, eps, sum, y, rstd);
  if (autograd::needed(x, residual, weight)) {
    autograd::record(
        "add_rms_norm", {x, residual, weight}, {&sum, &y},
        [sum = sum.detach(), weight = weight.detach(), rstd](const auto& grads, const auto& needs) {
          // The sum's gradient is its own plus the norm's; x and residual both receive it.
          Tensor dsum = Tensor::empty(sum.shape(), sum.dtype(), sum.device());
          Tensor dweight;
          if (needs[2]) dweight = Tensor::empty(weight.shape(), weight.dtype(), sum.device());
          NURI_DISPATCH(sum.device(), rms_norm_backward, grads[1], sum, weight, rstd, dsum,
                        dweight);
          dsum = add(dsum, grads[0]);
          return std::vector<Tensor>{needs[0] ? dsum : Tensor(), needs[1] ? dsum : Tensor(),
                                     dweight};
        });
  }
  return {sum, y};
}

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps) {
  const Shape stats_shape = check_norm("layer_norm", x, weight, eps);
  if (bias.defined()) {
    checks::same_device_dtype("layer_norm", x, "x", bias, "bias");
    checks::shape("layer_norm", bias, "bias", weight.shape());
  }
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor mean = Tensor::empty(stats_shape, DType::f32, x.device());
  Tensor rstd = Tensor::empty(stats_shape, DType::f32, x.device());
  NURI_DISPATCH(x.device(), layer_norm_forward, x, weight, bias, eps, y, mean, rstd);
  if (autograd::needed(x, weight, bias)) {
    autograd::record("layer_norm", {x, weight, bias}, {&y},
                     [x = x.detach(), weight = weight.detach(), mean, rstd](const auto& grads,
                                                                            const auto& needs) {
                       std::vector<Tensor> result(3);
                       if (needs[0]) result[0] = Tensor::empty(x.shape(), x.dtype(), x.device());
                       for (size_t i = 1; i < 3; ++i) {
                         if (needs[i])
                           result[i] = Tensor::empty(weight.shape(), weight.dtype(), x.device());
                       }
                       NURI_DISPATCH(x.device(), layer_norm_backward, grads[0], x, weight, mean,
                                     rstd, result[0], result[1], result[2]);
                       return result;
                     });
  }
  return y;
}

}  // namespace nuri
