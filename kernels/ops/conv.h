// Convolutions (cross-correlation, as in PyTorch) with zero padding on both sides: conv1d for the
// audio encoder stem, conv2d for vision patch embedding. Lowered to im2col + sgemm.
#pragma once

#include <array>

#include "kernels/dispatch.h"
#include "kernels/tensor.h"

namespace nuri {

// x [B, Cin, L], weight [Cout, Cin, K], bias [Cout] or undefined -> [B, Cout, Lout] with
// Lout = (L + 2 padding - K) / stride + 1.
Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride = 1,
              int64_t padding = 0);
// x [B, Cin, H, W], weight [Cout, Cin, KH, KW], bias [Cout] or undefined -> [B, Cout, Hout, Wout];
// stride and padding are {height, width}.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
              std::array<int64_t, 2> stride = {1, 1}, std::array<int64_t, 2> padding = {0, 0});

// Geometry of a 2-D convolution; conv1d runs as one of height 1 (kernel_h 1, no vertical
// padding), so both share the kernels.
struct ConvShape {
  int64_t batch = 0, in_channels = 0, height = 0, width = 0;
  int64_t out_channels = 0, kernel_h = 0, kernel_w = 0;
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
  int64_t out_h = 0, out_w = 0;
};

// out [B, Cout, out_h, out_w] from x [B, Cin, height, width] and weight [Cout, Cin, KH, KW],
// plus bias when defined.
NURI_KERNEL(conv_forward, (const Tensor& x, const Tensor& weight, const Tensor& bias,
                           const ConvShape& s, Tensor& out))
// Gradients of x, weight and bias from grad [B, Cout, out_h, out_w]; each is computed only when
// defined (allocated by the caller, any contents).
NURI_KERNEL(conv_backward,
            (const Tensor& grad, const Tensor& x, const Tensor& weight, const ConvShape& s,
             Tensor& grad_x, Tensor& grad_weight, Tensor& grad_bias))

}  // namespace nuri
