#include "kernels/ops/reduce.h"

#include "kernels/autograd.h"
#include "kernels/ops/checks.h"

namespace nuri {
namespace {

// Sums x viewed as [outer, n, inner] over n, times factor, into `out_shape`.
Tensor reduce(const char* op, const Tensor& x, int64_t outer, int64_t n, int64_t inner,
              float factor, const Shape& out_shape) {
  Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
  NURI_DISPATCH(x.device(), reduce_sum_forward, x, outer, n, inner, factor, out);
  if (autograd::needed(x)) {
    const Shape x_shape = x.shape();
    autograd::record(op, {x}, {&out},
                     [x_shape, outer, n, inner, factor](const auto& grads, const auto&) {
                       Tensor grad_x = Tensor::empty(x_shape, grads[0].dtype(), grads[0].device());
                       NURI_DISPATCH(grads[0].device(), reduce_sum_backward, grads[0], outer, n,
                                     inner, factor, grad_x);
                       return std::vector<Tensor>{grad_x};
                     });
  }
  return out;
}

Tensor reduce_dim(const char* op, const Tensor& x, std::optional<int> dim, bool average) {
  checks::floating(op, x, "x");
  if (!dim) {
    const int64_t n = x.numel();
    NURI_CHECK(!average || n > 0, op, ": mean of an empty tensor");
    return reduce(op, x, 1, n, 1, average ? 1.0f / static_cast<float>(n) : 1.0f, {});
  }
  const int axis = checks::axis(op, *dim, x.dim());
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= x.size(i);
  for (int i = axis + 1; i < x.dim(); ++i) inner *= x.size(i);
  const int64_t n = x.size(axis);
  NURI_CHECK(!average || n > 0, op, ": mean over an empty dimension ", axis);
  Shape out_shape = x.shape();
  out_shape.erase(out_shape.begin() + axis);
  return reduce(op, x, outer, n, inner, average ? 1.0f / static_cast<float>(n) : 1.0f, out_shape);
}

}  // namespace

Tensor sum(const Tensor& x, std::optional<int> dim) {
  return reduce_dim("sum", x, dim, false);
}

Tensor mean(const Tensor& x, std::optional<int> dim) {
  return reduce_dim("mean", x, dim, true);
}

Tensor sum_to_trailing(const Tensor& x, const Shape& to) {
  NURI_CHECK(to.size() <= x.shape().size() &&
                 std::equal(to.begin(), to.end(), x.shape().end() - to.size()),
             "sum_to_trailing: ", shape_str(to), " is not a trailing part of ",
             shape_str(x.shape()));
  const int64_t inner = shape_numel(to);
  const int64_t n = inner == 0 ? 0 : x.numel() / inner;
  if (to == x.shape()) return x;
  return reduce("sum_to_trailing", x, 1, n, inner, 1.0f, to);
}

}  // namespace nuri
