#include "kernels/ops/cast.h"

#include "kernels/autograd.h"

namespace nuri {

Tensor cast(const Tensor& x, DType dtype) {
  Tensor out = x.to(dtype);
  if (autograd::needed(x)) {
    NURI_CHECK(is_floating(dtype), "cast: cannot differentiate through a cast to ",
               dtype_name(dtype));
    const DType source = x.dtype();
    autograd::record("cast", {x}, {&out}, [source](const auto& grads, const auto&) {
      return std::vector<Tensor>{grads[0].to(source)};
    });
  }
  return out;
}

}  // namespace nuri
