// Softmax over the last dimension.
#pragma once

#include "kernels/dispatch.h"
#include "kernels/tensor.h"

namespace nuri {

// y = exp(x - max) / sum(exp(x - max)) over the last dimension of x [..., D].
Tensor softmax(const Tensor& x);

// x viewed as [rows, D]: y[r] = softmax(x[r]).
NURI_KERNEL(softmax_forward, (const Tensor& x, Tensor& y))
// dx[r] = y[r] * (dy[r] - sum_j dy[r, j] y[r, j]), from the saved output y.
NURI_KERNEL(softmax_backward, (const Tensor& dy, const Tensor& y, Tensor& dx))

}  // namespace nuri
