// CUDA kernels for the shape ops, for every dtype: block copies through cudaMemcpy2D (row by row
// when a stride passes its pitch limit) and a transpose of two dimensions with one thread per
// output element.
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

}  // namespace

void copy_blocks(const Tensor& src, Tensor& dst, int64_t rows, int64_t row_bytes,
                 int64_t src_stride, int64_t src_offset, int64_t dst_stride, int64_t dst_offset) {
  if (rows == 0 || row_bytes == 0) return;
  const char* in = static_cast<const char*>(src.raw_data()) + src_offset;
  char* out = static_cast<char*>(dst.raw_data()) + dst_offset;
  NURI_CUDA_CHECK(cudaSetDevice(dst.device().index));
  if (rows == 1) {  // one row: its strides are not pitches
    NURI_CUDA_CHECK(cudaMemcpy(out, in, static_cast<size_t>(row_bytes), cudaMemcpyDeviceToDevice));
    return;
  }
  int max_pitch = 0;
  NURI_CUDA_CHECK(cudaDeviceGetAttribute(&max_pitch, cudaDevAttrMaxPitch, dst.device().index));
  if (src_stride > max_pitch || dst_stride > max_pitch) {  // past cudaMemcpy2D's pitch: row by row
    for (int64_t r = 0; r < rows; ++r) {
      NURI_CUDA_CHECK(cudaMemcpyAsync(out + r * dst_stride, in + r * src_stride,
                                      static_cast<size_t>(row_bytes), cudaMemcpyDeviceToDevice));
    }
    return;
  }
  NURI_CUDA_CHECK(cudaMemcpy2D(out, static_cast<size_t>(dst_stride), in,
                               static_cast<size_t>(src_stride), static_cast<size_t>(row_bytes),
                               static_cast<size_t>(rows), cudaMemcpyDeviceToDevice));
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
