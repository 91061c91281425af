#include "kernels/ops/activation.h"

#include "kernels/autograd.h"
#include "kernels/ops/checks.h"

namespace nuri {

Tensor silu(const Tensor& x) {
  checks::floating("silu", x, "x");
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  NURI_DISPATCH(x.device(), silu_forward, x, out);
  if (autograd::needed(x)) {
    autograd::record("silu", {x}, {&out}, [x = x.detach()](const auto& grads, const auto&) {
      Tensor dx = Tensor::empty(x.shape(), x.dtype(), x.device());
      NURI_DISPATCH(x.device(), silu_backward, grads[0], x, dx);
      return std::vector<Tensor>{dx};
    });
  }
  return out;
}

Tensor gelu(const Tensor& x, bool tanh_approximation) {
  checks::floating("gelu", x, "x");
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  NURI_DISPATCH(x.device(), gelu_forward, x, tanh_approximation, out);
  if (autograd::needed(x)) {
    autograd::record(
        "gelu", {x}, {&out}, [x = x.detach(), tanh_approximation](const auto& grads, const auto&) {
          Tensor dx = Tensor::empty(x.shape(), x.dtype(), x.device());
          NURI_DISPATCH(x.device(), gelu_backward, grads[0], x, tanh_approximation, dx);
          return std::vector<Tensor>{dx};
        });
  }
  return out;
}

Tensor swiglu(const Tensor& gate, const Tensor& up) {
  checks::floating("swiglu", gate, "gate");
  checks::same_device_dtype("swiglu", gate, "gate", up, "up");
  checks::shape("swiglu", up, "up", gate.shape());
  Tensor out = Tensor::empty(gate.shape(), gate.dtype(), gate.device());
  NURI_DISPATCH(gate.device(), swiglu_forward, gate, up, out);
  if (autograd::needed(gate, up)) {
    autograd::record(
        "swiglu", {gate, up}, {&out},
        [gate = gate.detach(), up = up.detach()](const auto& grads, const auto& needs) {
          std::vector<Tensor> result(2);
          for (size_t i = 0; i < 2; ++i) {
            if (needs[i]) result[i] = Tensor::empty(gate.shape(), gate.dtype(), gate.device());
          }
          NURI_DISPATCH(gate.device(), swiglu_backward, grads[0], gate, up, result[0], result[1]);
          return result;
        });
  }
  return out;
}

}  // namespace nuri
