// Fully connected layer: y = x W^T + b with the weight stored [out, in] (the PyTorch and
// Hugging Face layout, so checkpoints load without a transpose).
#pragma once

#include "kernels/dispatch.h"
#include "kernels/tensor.h"

namespace nuri {

// x [..., in], weight [out, in], optional bias [out] -> [..., out]. The leading dimensions of x
// are flattened into rows, so one GEMM serves any batch layout.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// out [rows, out] = x [rows, in] weight^T (+ bias); bias may be undefined.
NURI_KERNEL(linear_forward,
            (const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t rows, Tensor& out))
// From grad [rows, out]: grad_x = grad weight, grad_weight = grad^T x, grad_bias = column sums
// of grad. Each output is computed only when defined (allocated by the caller, any contents).
NURI_KERNEL(linear_backward, (const Tensor& grad, const Tensor& x, const Tensor& weight,
                              int64_t rows, Tensor& grad_x, Tensor& grad_weight, Tensor& grad_bias))

}  // namespace nuri
