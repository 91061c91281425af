// Pooling without padding: every output is the mean (avg_pool) or the maximum (max_pool) of one
// kernel-sized window.
#pragma once

#include <array>

#include "kernels/dispatch.h"
#include "kernels/tensor.h"

namespace nuri {

// x [B, C, L] -> [B, C, (L - kernel) / stride + 1].
Tensor avg_pool1d(const Tensor& x, int64_t kernel, int64_t stride);
// x [B, C, H, W] -> [B, C, (H - KH) / SH + 1, (W - KW) / SW + 1]; kernel and stride are
// {height, width}.
Tensor avg_pool2d(const Tensor& x, std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride);
// x [B, C, H, W] -> the same shape as avg_pool2d, each output the window's maximum (NaN wins, the
// first of equal values wins); the gradient flows to that one element.
Tensor max_pool2d(const Tensor& x, std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride);

// Geometry of a 2-D pool over `planes` = B * C planes; avg_pool1d runs as one of height 1.
struct PoolShape {
  int64_t planes = 0, height = 0, width = 0;
  int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1;
  int64_t out_h = 0, out_w = 0;
};

// out [planes, out_h, out_w] = window means of x [planes, height, width].
NURI_KERNEL(avg_pool_forward, (const Tensor& x, const PoolShape& s, Tensor& out))
// grad_x [planes, height, width]: each output's gradient spread evenly over its window,
// overlapping windows adding up.
NURI_KERNEL(avg_pool_backward, (const Tensor& grad, const PoolShape& s, Tensor& grad_x))
// out [planes, out_h, out_w] = window maxima of x; argmax (i32, same shape) = each maximum's
// offset within its plane (row * width + column).
NURI_KERNEL(max_pool_forward, (const Tensor& x, const PoolShape& s, Tensor& out, Tensor& argmax))
// grad_x [planes, height, width]: zero except at each argmax, which gets its output's gradient
// (summed where overlapping windows share a maximum).
NURI_KERNEL(max_pool_backward,
            (const Tensor& grad, const Tensor& argmax, const PoolShape& s, Tensor& grad_x))

}  // namespace nuri
