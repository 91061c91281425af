// Dtype conversion and constant fill: the element kernels behind Tensor::to and Tensor::full,
// plus cast(), the differentiable conversion used by mixed precision.
#pragma once

#include "kernels/dispatch.h"
#include "kernels/tensor.h"

namespace nuri {

// Converts x to dtype; the gradient converts back to x's dtype.
Tensor cast(const Tensor& x, DType dtype);

NURI_KERNEL(cast_elements, (const Tensor& src, Tensor& dst))
NURI_KERNEL(fill_elements, (Tensor & dst, double value))

}  // namespace nuri
