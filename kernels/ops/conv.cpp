#include "kernels/ops/conv.h"

#include "kernels/autograd.h"
#include "kernels/ops/checks.h"

namespace nuri {
namespace {

// Checks stride, padding and kernel extent along one axis and returns the output extent.
int64_t out_extent(const char* op, const char* axis, int64_t in, int64_t kernel, int64_t stride,
                   int64_t padding) {
  NURI_CHECK(stride > 0, op, ": stride ", stride, " along ", axis, " must be positive");
  NURI_CHECK(kernel > 0, op, ": kernel ", kernel, " along ", axis, " must be positive");
  NURI_CHECK(padding >= 0, op, ": padding ", padding, " along ", axis, " must not be negative");
  NURI_CHECK(kernel <= in + 2 * padding, op, ": kernel ", kernel, " along ", axis,
             " is larger than the padded input (", in, " + 2 * ", padding, " = ", in + 2 * padding,
             ")");
  return (in + 2 * padding - kernel) / stride + 1;
}

// Shared checks of conv1d and conv2d; x and weight have `rank` dimensions.
void check_conv(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias,
                int rank) {
  checks::floating(op, x, "x");
  checks::rank(op, x, "x", rank);
  checks::rank(op, weight, "weight", rank);
  checks::same_device_dtype(op, x, "x", weight, "weight");
  NURI_CHECK(weight.size(1) == x.size(1), op, ": weight ", shape_str(weight.shape()), " expects ",
             weight.size(1), " input channels but x ", shape_str(x.shape()), " has ", x.size(1));
  if (bias.defined()) {
    checks::same_device_dtype(op, x, "x", bias, "bias");
    checks::shape(op, bias, "bias", {weight.size(0)});
  }
}

// Allocates the output, runs the kernel and records the backward.
Tensor run_conv(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias,
                const ConvShape& s, const Shape& out_shape) {
  Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
  NURI_DISPATCH(x.device(), conv_forward, x, weight, bias, s, out);
  if (autograd::needed(x, weight, bias)) {
    // x is read by the weight's gradient only, the weight by x's.
    const Tensor saved_x = weight.requires_grad() ? x.detach() : Tensor();
    const Tensor saved_w = x.requires_grad() ? weight.detach() : Tensor();
    const Shape x_shape = x.shape(), w_shape = weight.shape();
    const bool has_bias = bias.defined();
    autograd::record(
        op, {x, weight, bias}, {&out},
        [saved_x, saved_w, x_shape, w_shape, has_bias, s](const auto& grads, const auto& needs) {
          const Tensor& g = grads[0];
          Tensor grad_x, grad_w, grad_b;
          if (needs[0]) grad_x = Tensor::empty(x_shape, g.dtype(), g.device());
          if (needs[1]) grad_w = Tensor::empty(w_shape, g.dtype(), g.device());
          if (has_bias && needs[2]) grad_b = Tensor::empty({w_shape[0]}, g.dtype(), g.device());
          NURI_DISPATCH(g.device(), conv_backward, g, saved_x, saved_w, s, grad_x, grad_w, grad_b);
          return std::vector<Tensor>{grad_x, grad_w, grad_b};
        });
  }
  return out;
}

}  // namespace

Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride,
              int64_t padding) {
  check_conv("conv1d", x, weight, bias, 3);
  ConvShape s;
  s.batch = x.size(0);
  s.in_channels = x.size(1);
  s.height = 1;
  s.width = x.size(2);
  s.out_channels = weight.size(0);
  s.kernel_h = 1;
  s.kernel_w = weight.size(2);
  s.stride_w = stride;
  s.pad_w = padding;
  s.out_h = 1;
  s.out_w = out_extent("conv1d", "length", s.width, s.kernel_w, stride, padding);
  return run_conv("conv1d", x, weight, bias, s, {s.batch, s.out_channels, s.out_w});
}

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
              std::array<int64_t, 2> stride, std::array<int64_t, 2> padding) {
  check_conv("conv2d", x, weight, bias, 4);
  ConvShape s;
  s.batch = x.size(0);
  s.in_channels = x.size(1);
  s.height = x.size(2);
  s.width = x.size(3);
  s.out_channels = weight.size(0);
  s.kernel_h = weight.size(2);
  s.kernel_w = weight.size(3);
  s.stride_h = stride[0];
  s.stride_w = stride[1];
  s.pad_h = padding[0];
  s.pad_w = padding[1];
  s.out_h = out_extent("conv2d", "height", s.height, s.kernel_h, stride[0], padding[0]);
  s.out_w = out_extent("conv2d", "width", s.width, s.kernel_w, stride[1], padding[1]);
  return run_conv("conv2d", x, weight, bias, s, {s.batch, s.out_channels, s.out_h, s.out_w});
}

}  // namespace nuri
