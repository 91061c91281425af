// CPU kernels for the shape ops: block copies and a transpose of two dimensions, for every dtype.
#include <cstring>

#include "kernels/cpu/parallel.h"
#include "kernels/ops/shape.h"

namespace nuri::cpu {
namespace {

// Transposes with element type T (chosen by the dtype's byte size).
template <class T>
void transpose_typed(const T* in, T* out, int64_t outer, int64_t n0, int64_t middle, int64_t n1,
                     int64_t inner) {
#pragma omp parallel for collapse(2) if (outer * n0 * middle * n1 * inner > kParallelElements)
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t j = 0; j < n1; ++j) {
      for (int64_t m = 0; m < middle; ++m) {
        for (int64_t i = 0; i < n0; ++i) {
          const T* src = in + (((o * n0 + i) * middle + m) * n1 + j) * inner;
          T* dst = out + (((o * n1 + j) * middle + m) * n0 + i) * inner;
          for (int64_t k = 0; k < inner; ++k) dst[k] = src[k];
        }
      }
    }
  }
}

}  // namespace

void copy_blocks(const Tensor& src, Tensor& dst, int64_t rows, int64_t row_bytes,
                 int64_t src_stride, int64_t src_offset, int64_t dst_stride, int64_t dst_offset) {
  const char* in = static_cast<const char*>(src.raw_data()) + src_offset;
  char* out = static_cast<char*>(dst.raw_data()) + dst_offset;
#pragma omp parallel for if (rows * row_bytes > (1 << 18))
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(out + r * dst_stride, in + r * src_stride, static_cast<size_t>(row_bytes));
  }
}

void transpose_forward(const Tensor& x, int64_t outer, int64_t n0, int64_t middle, int64_t n1,
                       int64_t inner, Tensor& out) {
  switch (dtype_size(x.dtype())) {
    case 1:
      return transpose_typed(static_cast<const uint8_t*>(x.raw_data()),
                             static_cast<uint8_t*>(out.raw_data()), outer, n0, middle, n1, inner);
    case 2:
      return transpose_typed(static_cast<const uint16_t*>(x.raw_data()),
                             static_cast<uint16_t*>(out.raw_data()), outer, n0, middle, n1, inner);
    case 4:
      return transpose_typed(static_cast<const uint32_t*>(x.raw_data()),
                             static_cast<uint32_t*>(out.raw_data()), outer, n0, middle, n1, inner);
    default:
      return transpose_typed(static_cast<const uint64_t*>(x.raw_data()),
                             static_cast<uint64_t*>(out.raw_data()), outer, n0, middle, n1, inner);
  }
}

}  // namespace nuri::cpu
