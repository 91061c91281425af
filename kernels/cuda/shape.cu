// CUDA kernels for the shape ops, for every dtype: strided block copies with one thread per word
// (the widest of 16, 8, 4, 2 or 1 bytes that the addresses, rows and strides allow) and a
// transpose of two dimensions with one thread per output element.
#include <cstdint>

#include "kernels/cuda/map.cuh"
#include "kernels/ops/shape.h"

namespace nuri::cuda {
namespace {

// Transposes with element type T (chosen by the dtype's byte size): thread e writes output
// element e of [outer, n1, middle, n0, inner] from [outer, n0, middle, n1, inner].
template <class T>
void transpose_typed(const Tensor& x, Tensor& out, int64_t outer, int64_t n0, int64_t middle,
                     int64_t n1, int64_t inner) {
  const T* in = static_cast<const T*>(x.raw_data());
  T* po = static_cast<T*>(out.raw_data());
  launch_map(x, outer * n0 * middle * n1 * inner, [=] __device__(int64_t e) {
    const int64_t k = e % inner, i = e / inner % n0, m = e / (inner * n0) % middle,
                  j = e / (inner * n0 * middle) % n1, o = e / (inner * n0 * middle * n1);
    po[e] = in[(((o * n0 + i) * middle + m) * n1 + j) * inner + k];
  });
}

// Copies `rows` rows of row_bytes bytes, strided in bytes, as words of type W (which divides every
// address, length and stride): thread e copies word e of the packed rows.
template <class W>
void copy_words(const Tensor& on, const char* in, char* out, int64_t rows, int64_t row_bytes,
                int64_t src_stride, int64_t dst_stride) {
  const int64_t words = row_bytes / sizeof(W), src_step = src_stride / sizeof(W),
                dst_step = dst_stride / sizeof(W);
  const W* from = reinterpret_cast<const W*>(in);
  W* to = reinterpret_cast<W*>(out);
  launch_map(on, rows * words, [=] __device__(int64_t e) {
    const int64_t r = e / words, c = e % words;
    to[r * dst_step + c] = from[r * src_step + c];
  });
}

}  // namespace

void copy_blocks(const Tensor& src, Tensor& dst, int64_t rows, int64_t row_bytes,
                 int64_t src_stride, int64_t src_offset, int64_t dst_stride, int64_t dst_offset) {
  if (rows == 0 || row_bytes == 0) return;
  const char* in = static_cast<const char*>(src.raw_data()) + src_offset;
  char* out = static_cast<char*>(dst.raw_data()) + dst_offset;
  // The widest word that divides both addresses, the row and both strides.
  const auto bits = reinterpret_cast<uintptr_t>(in) | reinterpret_cast<uintptr_t>(out) |
                    static_cast<uintptr_t>(row_bytes) | static_cast<uintptr_t>(src_stride) |
                    static_cast<uintptr_t>(dst_stride);
  if (bits % 16 == 0)
    return copy_words<uint4>(dst, in, out, rows, row_bytes, src_stride, dst_stride);
  if (bits % 8 == 0)
    return copy_words<uint64_t>(dst, in, out, rows, row_bytes, src_stride, dst_stride);
  if (bits % 4 == 0)
    return copy_words<uint32_t>(dst, in, out, rows, row_bytes, src_stride, dst_stride);
  if (bits % 2 == 0)
    return copy_words<uint16_t>(dst, in, out, rows, row_bytes, src_stride, dst_stride);
  copy_words<uint8_t>(dst, in, out, rows, row_bytes, src_stride, dst_stride);
}

void transpose_forward(const Tensor& x, int64_t outer, int64_t n0, int64_t middle, int64_t n1,
                       int64_t inner, Tensor& out) {
  switch (dtype_size(x.dtype())) {
    case 1:
      return transpose_typed<uint8_t>(x, out, outer, n0, middle, n1, inner);
    case 2:
      return transpose_typed<uint16_t>(x, out, outer, n0, middle, n1, inner);
    case 4:
      return transpose_typed<uint32_t>(x, out, outer, n0, middle, n1, inner);
    default:
      return transpose_typed<uint64_t>(x, out, outer, n0, middle, n1, inner);
  }
}

}  // namespace nuri::cuda
