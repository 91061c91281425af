// Batched matrix product. a is [..., M, K] ([..., K, M] when transpose_a); b is either one matrix
// [K, N] ([N, K] when transpose_b) shared by every batch, or carries the same leading batch
// dimensions as a. The result is [..., M, N].
#pragma once

#include "kernels/dispatch.h"
#include "kernels/tensor.h"

namespace nuri {

// op(a) op(b) per batch, where op transposes the last two dimensions when asked.
Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a = false, bool transpose_b = false);

// How matmul's operands are laid out: `batches` matrices of a; b has one matrix (shared_b) or
// one per batch; op(a) is [m, k] and op(b) is [k, n].
struct MatmulShape {
  int64_t batches = 1;
  int64_t m = 0, n = 0, k = 0;
  bool transpose_a = false, transpose_b = false;
  bool shared_b = false;
};

// out [batches, m, n] = op(a) op(b).
NURI_KERNEL(matmul_forward, (const Tensor& a, const Tensor& b, const MatmulShape& s, Tensor& out))
// grad_a = d/da and grad_b = d/db of <grad, out> (grad_b summed over batches when b is shared);
// each is computed only when defined (allocated by the caller, any contents).
NURI_KERNEL(matmul_backward, (const Tensor& grad, const Tensor& a, const Tensor& b,
                              const MatmulShape& s, Tensor& grad_a, Tensor& grad_b))

}  // namespace nuri
