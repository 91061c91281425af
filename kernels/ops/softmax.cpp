#include "kernels/ops/softmax.h"

#include "kernels/autograd.h"
#include "kernels/ops/checks.h"

namespace nuri {

Tensor softmax(const Tensor& x) {
  checks::floating("softmax", x, "x");
  NURI_CHECK(x.dim() >= 1, "softmax: x must have at least 1 dimension, not ", shape_str(x.shape()));
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  NURI_DISPATCH(x.device(), softmax_forward, x, y);
  if (autograd::needed(x)) {
    // The backward needs only the output, saved without its autograd slot.
    autograd::record("softmax", {x}, {&y}, [y = y.detach()](const auto& grads, const auto&) {
      Tensor dx = Tensor::empty(y.shape(), y.dtype(), y.device());
      NURI_DISPATCH(y.device(), softmax_backward, grads[0], y, dx);
      return std::vector<Tensor>{dx};
    });
  }
  return y;
}

}  // namespace nuri
