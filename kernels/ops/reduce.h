// Reductions: the sum or mean of all elements, or along one dimension.
#pragma once

#include <optional>

#include "kernels/dispatch.h"
#include "kernels/tensor.h"

namespace nuri {

// Sum over every element (shape []) or over `dim`, which is removed from the shape.
Tensor sum(const Tensor& x, std::optional<int> dim = std::nullopt);
// Mean over every element (shape []) or over `dim`, which is removed from the shape.
Tensor mean(const Tensor& x, std::optional<int> dim = std::nullopt);
// Sums a gradient of shape `from` down to `to`, a trailing part of it (the broadcast's adjoint).
Tensor sum_to_trailing(const Tensor& x, const Shape& to);

// x viewed as [outer, n, inner]: out[o, i] = factor * sum_k x[o, k, i].
NURI_KERNEL(reduce_sum_forward,
            (const Tensor& x, int64_t outer, int64_t n, int64_t inner, float factor, Tensor& out))
// The adjoint: grad_x[o, k, i] = factor * grad[o, i].
NURI_KERNEL(reduce_sum_backward, (const Tensor& grad, int64_t outer, int64_t n, int64_t inner,
                                  float factor, Tensor& grad_x))

}  // namespace nuri
