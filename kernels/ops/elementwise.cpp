#include "kernels/ops/elementwise.h"

#include "kernels/autograd.h"
#include "kernels/ops/checks.h"
#include "kernels/ops/reduce.h"

namespace nuri {
namespace {

// Checks that b's shape is a's trailing dimensions.
void check_broadcast(const char* op, const Tensor& a, const Tensor& b) {
  checks::same_device_dtype(op, a, "a", b, "b");
  checks::floating(op, a, "a");
  const Shape& as = a.shape();
  const Shape& bs = b.shape();
  const bool trailing =
      bs.size() <= as.size() && std::equal(bs.begin(), bs.end(), as.end() - bs.size());
  NURI_CHECK(trailing, op, ": b of shape ", shape_str(bs), " does not broadcast onto a of shape ",
             shape_str(as), " (b must match a's trailing dimensions)");
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  check_broadcast("add", a, b);
  Tensor out = Tensor::empty(a.shape(), a.dtype(), a.device());
  NURI_DISPATCH(a.device(), add_forward, a, b, 1.0f, out);
  if (autograd::needed(a, b)) {
    const Shape b_shape = b.shape();
    autograd::record("add", {a, b}, {&out}, [b_shape](const auto& grads, const auto& needs) {
      return std::vector<Tensor>{needs[0] ? grads[0] : Tensor(),
                                 needs[1] ? sum_to_trailing(grads[0], b_shape) : Tensor()};
    });
  }
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  check_broadcast("mul", a, b);
  Tensor out = Tensor::empty(a.shape(), a.dtype(), a.device());
  NURI_DISPATCH(a.device(), mul_forward, a, b, out);
  if (autograd::needed(a, b)) {
    const Tensor saved_a = a.detach(), saved_b = b.detach();
    autograd::record("mul", {a, b}, {&out},
                     [saved_a, saved_b](const auto& grads, const auto& needs) {
                       std::vector<Tensor> result(2);
                       if (needs[0]) result[0] = mul(grads[0], saved_b);
                       if (needs[1])
                         result[1] = sum_to_trailing(mul(grads[0], saved_a), saved_b.shape());
                       return result;
                     });
  }
  return out;
}

Tensor scale(const Tensor& x, float factor) {
  checks::floating("scale", x, "x");
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  NURI_DISPATCH(x.device(), scale_forward, x, factor, out);
  if (autograd::needed(x)) {
    autograd::record("scale", {x}, {&out}, [factor](const auto& grads, const auto&) {
      return std::vector<Tensor>{scale(grads[0], factor)};
    });
  }
  return out;
}

}  // namespace nuri
