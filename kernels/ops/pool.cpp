#include "kernels/ops/pool.h"

#include <limits>

#include "kernels/autograd.h"
#include "kernels/ops/checks.h"

namespace nuri {
namespace {

// Checks kernel and stride along one axis and returns the output extent.
int64_t pool_extent(const char* op, const char* axis, int64_t in, int64_t kernel, int64_t stride) {
  NURI_CHECK(kernel > 0, op, ": kernel ", kernel, " along ", axis, " must be positive");
  NURI_CHECK(stride > 0, op, ": stride ", stride, " along ", axis, " must be positive");
  NURI_CHECK(kernel <= in, op, ": kernel ", kernel, " along ", axis,
             " is larger than the input extent ", in);
  return (in - kernel) / stride + 1;
}

Tensor run_avg_pool(const char* op, const Tensor& x, const PoolShape& s, const Shape& out_shape) {
  Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
  NURI_DISPATCH(x.device(), avg_pool_forward, x, s, out);
  if (autograd::needed(x)) {
    const Shape x_shape = x.shape();
    autograd::record(op, {x}, {&out}, [x_shape, s](const auto& grads, const auto&) {
      const Tensor& g = grads[0];
      Tensor grad_x = Tensor::empty(x_shape, g.dtype(), g.device());
      NURI_DISPATCH(g.device(), avg_pool_backward, g, s, grad_x);
      return std::vector<Tensor>{grad_x};
    });
  }
  return out;
}

// The geometry of a 2-D pool of x [B, C, H, W], checked.
PoolShape pool2d_shape(const char* op, const Tensor& x, std::array<int64_t, 2> kernel,
                       std::array<int64_t, 2> stride) {
  checks::floating(op, x, "x");
  checks::rank(op, x, "x", 4);
  PoolShape s;
  s.planes = x.size(0) * x.size(1);
  s.height = x.size(2);
  s.width = x.size(3);
  s.kernel_h = kernel[0];
  s.kernel_w = kernel[1];
  s.stride_h = stride[0];
  s.stride_w = stride[1];
  s.out_h = pool_extent(op, "height", s.height, kernel[0], stride[0]);
  s.out_w = pool_extent(op, "width", s.width, kernel[1], stride[1]);
  return s;
}

}  // namespace

Tensor avg_pool1d(const Tensor& x, int64_t kernel, int64_t stride) {
  checks::floating("avg_pool1d", x, "x");
  checks::rank("avg_pool1d", x, "x", 3);
  PoolShape s;
  s.planes = x.size(0) * x.size(1);
  s.height = 1;
  s.width = x.size(2);
  s.kernel_w = kernel;
  s.stride_w = stride;
  s.out_h = 1;
  s.out_w = pool_extent("avg_pool1d", "length", s.width, kernel, stride);
  return run_avg_pool("avg_pool1d", x, s, {x.size(0), x.size(1), s.out_w});
}

Tensor avg_pool2d(const Tensor& x, std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride) {
  const PoolShape s = pool2d_shape("avg_pool2d", x, kernel, stride);
  return run_avg_pool("avg_pool2d", x, s, {x.size(0), x.size(1), s.out_h, s.out_w});
}

Tensor max_pool2d(const Tensor& x, std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride) {
  const PoolShape s = pool2d_shape("max_pool2d", x, kernel, stride);
  NURI_CHECK(s.height * s.width <= std::numeric_limits<int32_t>::max(), "max_pool2d: a plane of ",
             s.height, "x", s.width, " is too large for 32-bit offsets");
  const Shape out_shape = {x.size(0), x.size(1), s.out_h, s.out_w};
  Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
  Tensor argmax = Tensor::empty(out_shape, DType::i32, x.device());
  NURI_DISPATCH(x.device(), max_pool_forward, x, s, out, argmax);
  if (autograd::needed(x)) {
    const Shape x_shape = x.shape();
    autograd::record("max_pool2d", {x}, {&out},
                     [x_shape, s, argmax](const auto& grads, const auto&) {
                       const Tensor& g = grads[0];
                       Tensor grad_x = Tensor::empty(x_shape, g.dtype(), g.device());
                       NURI_DISPATCH(g.device(), max_pool_backward, g, argmax, s, grad_x);
                       return std::vector<Tensor>{grad_x};
                     });
  }
  return out;
}

}  // namespace nuri
