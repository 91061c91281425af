// Shape ops: reshape, transpose, slice, concat and split, each differentiable. Tensors are
// contiguous, so transpose, slice, concat and split copy; reshape shares storage.
#pragma once

#include <vector>

#include "kernels/dispatch.h"
#include "kernels/tensor.h"

namespace nuri {

// Same elements in a new shape (one extent may be -1); shares storage with x.
Tensor reshape(const Tensor& x, const Shape& shape);
// Swaps dimensions dim0 and dim1 (negative dims count from the end).
Tensor transpose(const Tensor& x, int dim0, int dim1);
// Elements [start, end) along dim.
Tensor slice(const Tensor& x, int dim, int64_t start, int64_t end);
// Joins tensors of equal shape except along dim.
Tensor concat(const std::vector<Tensor>& parts, int dim);
// Cuts x along dim into pieces of the given sizes, which must add up to x.size(dim).
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int dim);

// For each of `rows` rows: copies `row_bytes` bytes from src + src_offset + r * src_stride to
// dst + dst_offset + r * dst_stride (all in bytes). Works for every dtype.
NURI_KERNEL(copy_blocks,
            (const Tensor& src, Tensor& dst, int64_t rows, int64_t row_bytes, int64_t src_stride,
             int64_t src_offset, int64_t dst_stride, int64_t dst_offset))
// x viewed as [outer, n0, middle, n1, inner] written as [outer, n1, middle, n0, inner].
NURI_KERNEL(transpose_forward, (const Tensor& x, int64_t outer, int64_t n0, int64_t middle,
                                int64_t n1, int64_t inner, Tensor& out))

}  // namespace nuri
