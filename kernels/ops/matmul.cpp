#include "kernels/ops/matmul.h"

#include <cstdint>

#include "kernels/autograd.h"
#include "kernels/ops/checks.h"

namespace nuri {

Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b) {
  checks::floating("matmul", a, "a");
  checks::same_device_dtype("matmul", a, "a", b, "b");
  NURI_CHECK(a.dim() >= 2, "matmul: a must have at least 2 dimensions, not ", shape_str(a.shape()));
  NURI_CHECK(b.dim() == 2 || b.dim() == a.dim(), "matmul: b of shape ", shape_str(b.shape()),
             " must have 2 dimensions or as many as a of shape ", shape_str(a.shape()));
  const Shape batch(a.shape().begin(), a.shape().end() - 2);
  MatmulShape s;
  s.transpose_a = transpose_a;
  s.transpose_b = transpose_b;
  s.shared_b = b.dim() == 2;
  if (!s.shared_b) {
    const Shape b_batch(b.shape().begin(), b.shape().end() - 2);
    NURI_CHECK(b_batch == batch, "matmul: b has batch dimensions ", shape_str(b_batch),
               " but a has ", shape_str(batch), " (shapes ", shape_str(a.shape()), " and ",
               shape_str(b.shape()), ")");
  }
  s.batches = shape_numel(batch);
  s.m = a.size(transpose_a ? -1 : -2);
  s.k = a.size(transpose_a ? -2 : -1);
  const int64_t b_k = b.size(transpose_b ? -1 : -2);
  s.n = b.size(transpose_b ? -2 : -1);
  NURI_CHECK(b_k == s.k, "matmul: inner dimensions differ: a of shape ", shape_str(a.shape()),
             (transpose_a ? " (transposed)" : ""), " has ", s.k, ", b of shape ",
             shape_str(b.shape()), (transpose_b ? " (transposed)" : ""), " has ", b_k);
  // BLAS takes 32-bit extents; checked here rather than in the kernel's parallel loop, where an
  // exception would abort the process.
  for (int64_t extent : {s.m, s.n, s.k}) {
    NURI_CHECK(extent <= INT32_MAX, "matmul: extent ", extent, " exceeds the BLAS integer range");
  }
  Shape out_shape = batch;
  out_shape.push_back(s.m);
  out_shape.push_back(s.n);
  Tensor out = Tensor::empty(out_shape, a.dtype(), a.device());
  NURI_DISPATCH(a.device(), matmul_forward, a, b, s, out);
  if (autograd::needed(a, b)) {
    // Each gradient reads the other operand only.
    const Tensor saved_a = b.requires_grad() ? a.detach() : Tensor();
    const Tensor saved_b = a.requires_grad() ? b.detach() : Tensor();
    const Shape a_shape = a.shape(), b_shape = b.shape();
    autograd::record("matmul", {a, b}, {&out},
                     [saved_a, saved_b, a_shape, b_shape, s](const auto& grads, const auto& needs) {
                       const Tensor& g = grads[0];
                       Tensor grad_a, grad_b;
                       if (needs[0]) grad_a = Tensor::empty(a_shape, g.dtype(), g.device());
                       if (needs[1]) grad_b = Tensor::empty(b_shape, g.dtype(), g.device());
                       NURI_DISPATCH(g.device(), matmul_backward, g, saved_a, saved_b, s, grad_a,
                                     grad_b);
                       return std::vector<Tensor>{grad_a, grad_b};
                     });
  }
  return out;
}

}  // namespace nuri
