// Element-wise arithmetic. `b` may be broadcast: its shape must equal the trailing dimensions of
// `a`'s shape (a bias of [D] over [N, D], or a scalar of shape []); the result has a's shape.
#pragma once

#include "kernels/dispatch.h"
#include "kernels/tensor.h"

namespace nuri {

// a + b.
Tensor add(const Tensor& a, const Tensor& b);
// a * b.
Tensor mul(const Tensor& a, const Tensor& b);
// x * factor.
Tensor scale(const Tensor& x, float factor);

// out[i] = a[i] + alpha * b[i mod b.numel()]
NURI_KERNEL(add_forward, (const Tensor& a, const Tensor& b, float alpha, Tensor& out))
// out[i] = a[i] * b[i mod b.numel()]
NURI_KERNEL(mul_forward, (const Tensor& a, const Tensor& b, Tensor& out))
// out[i] = x[i] * factor
NURI_KERNEL(scale_forward, (const Tensor& x, float factor, Tensor& out))

}  // namespace nuri
