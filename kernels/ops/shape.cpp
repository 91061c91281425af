#include "kernels/ops/shape.h"

#include <numeric>

#include "kernels/autograd.h"
#include "kernels/ops/checks.h"

namespace nuri {
namespace {

// Product of the extents in [begin, end).
int64_t extent_product(const Shape& shape, int begin, int end) {
  int64_t n = 1;
  for (int i = begin; i < end; ++i) n *= shape[i];
  return n;
}

// Copies x's elements [start, start + length) along `axis` into out's [out_start, ...).
void copy_along(const Tensor& x, int axis, int64_t start, int64_t length, Tensor& out,
                int64_t out_start) {
  const int64_t outer = extent_product(x.shape(), 0, axis);
  const int64_t inner = extent_product(x.shape(), axis + 1, x.dim()) * dtype_size(x.dtype());
  const int64_t n_src = x.size(axis), n_dst = out.size(axis);
  if (outer == 0 || length == 0 || inner == 0) return;
  NURI_DISPATCH(x.device(), copy_blocks, x, out, outer, length * inner, n_src * inner,
                start * inner, n_dst * inner, out_start * inner);
}

}  // namespace

Tensor reshape(const Tensor& x, const Shape& shape) {
  checks::defined("reshape", x, "x");
  Tensor out;
  try {
    out = x.view(shape);
  } catch (const Error& e) {
    fail("reshape: ", e.what());
  }
  if (autograd::needed(x)) {
    const Shape x_shape = x.shape();
    autograd::record("reshape", {x}, {&out}, [x_shape](const auto& grads, const auto&) {
      return std::vector<Tensor>{grads[0].view(x_shape)};
    });
  }
  return out;
}

Tensor transpose(const Tensor& x, int dim0, int dim1) {
  checks::defined("transpose", x, "x");
  int a = checks::axis("transpose", dim0, x.dim());
  int b = checks::axis("transpose", dim1, x.dim());
  if (a > b) std::swap(a, b);
  Shape out_shape = x.shape();
  std::swap(out_shape[a], out_shape[b]);
  Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
  if (a == b) {
    out.copy_from(x.detach());
  } else {
    const Shape& s = x.shape();
    const int64_t outer = extent_product(s, 0, a), middle = extent_product(s, a + 1, b),
                  inner = extent_product(s, b + 1, x.dim());
    NURI_DISPATCH(x.device(), transpose_forward, x, outer, s[a], middle, s[b], inner, out);
  }
  if (autograd::needed(x)) {
    autograd::record("transpose", {x}, {&out}, [a, b](const auto& grads, const auto&) {
      return std::vector<Tensor>{transpose(grads[0], a, b)};
    });
  }
  return out;
}

Tensor slice(const Tensor& x, int dim, int64_t start, int64_t end) {
  checks::defined("slice", x, "x");
  const int axis = checks::axis("slice", dim, x.dim());
  NURI_CHECK(0 <= start && start <= end && end <= x.size(axis), "slice: range [", start, ", ", end,
             ") out of bounds for dimension ", axis, " of size ", x.size(axis));
  Shape out_shape = x.shape();
  out_shape[axis] = end - start;
  Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
  copy_along(x, axis, start, end - start, out, 0);
  if (autograd::needed(x)) {
    const Shape x_shape = x.shape();
    autograd::record("slice", {x}, {&out}, [x_shape, axis, start](const auto& grads, const auto&) {
      Tensor grad_x = Tensor::zeros(x_shape, grads[0].dtype(), grads[0].device());
      copy_along(grads[0], axis, 0, grads[0].size(axis), grad_x, start);
      return std::vector<Tensor>{grad_x};
    });
  }
  return out;
}

Tensor concat(const std::vector<Tensor>& parts, int dim) {
  NURI_CHECK(!parts.empty(), "concat: no tensors to join");
  checks::defined("concat", parts[0], "part 0");
  const int axis = checks::axis("concat", dim, parts[0].dim());
  Shape out_shape = parts[0].shape();
  out_shape[axis] = 0;
  std::vector<int64_t> sizes;
  for (size_t i = 0; i < parts.size(); ++i) {
    checks::same_device_dtype("concat", parts[0], "part 0", parts[i], "a later part");
    Shape expected = parts[0].shape();
    expected[axis] = parts[i].dim() == parts[0].dim() ? parts[i].size(axis) : -1;
    NURI_CHECK(parts[i].shape() == expected, "concat: part ", i, " has shape ",
               shape_str(parts[i].shape()), ", which differs from part 0 ",
               shape_str(parts[0].shape()), " outside dimension ", axis);
    sizes.push_back(parts[i].size(axis));
    out_shape[axis] += parts[i].size(axis);
  }
  Tensor out = Tensor::empty(out_shape, parts[0].dtype(), parts[0].device());
  int64_t offset = 0;
  for (const Tensor& part : parts) {
    copy_along(part, axis, 0, part.size(axis), out, offset);
    offset += part.size(axis);
  }
  bool any = false;
  for (const Tensor& part : parts) any = any || autograd::needed(part);
  if (any) {
    autograd::record("concat", parts, {&out}, [sizes, axis](const auto& grads, const auto& needs) {
      std::vector<Tensor> result(sizes.size());
      int64_t start = 0;
      for (size_t i = 0; i < sizes.size(); ++i) {
        if (needs[i]) result[i] = slice(grads[0], axis, start, start + sizes[i]);
        start += sizes[i];
      }
      return result;
    });
  }
  return out;
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int dim) {
  checks::defined("split", x, "x");
  const int axis = checks::axis("split", dim, x.dim());
  int64_t total = 0;
  for (int64_t size : sizes) {
    NURI_CHECK(size >= 0, "split: negative piece size ", size);
    total += size;
  }
  NURI_CHECK(total == x.size(axis), "split: piece sizes add up to ", total, " but dimension ", axis,
             " has size ", x.size(axis));
  std::vector<Tensor> pieces;
  int64_t start = 0;
  {
    NoGradScope no_grad;  // the pieces are recorded together below, as one op
    for (int64_t size : sizes) {
      pieces.push_back(slice(x, axis, start, start + size));
      start += size;
    }
  }
  if (autograd::needed(x)) {
    std::vector<Tensor*> outputs;
    for (Tensor& piece : pieces) outputs.push_back(&piece);
    autograd::record("split", {x}, outputs, [axis](const auto& grads, const auto&) {
      return std::vector<Tensor>{concat(grads, axis)};
    });
  }
  return pieces;
}

}  // namespace nuri
