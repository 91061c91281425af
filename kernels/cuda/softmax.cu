// CUDA softmax over the last dimension (f32 data, f64 row sums): one block per row.
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/map.cuh"
#include "kernels/ops/softmax.h"

namespace nuri::cuda {
namespace {

__global__ void softmax_kernel(const float* x, int64_t rows, int64_t d, float* y) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* xr = x + r * d;
    float* yr = y + r * d;
    float top = -INFINITY;
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x) top = fmaxf(top, xr[j]);
    top = block_max(top);
    double total = 0;
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
      yr[j] = expf(xr[j] - top);
      total += yr[j];
    }
    const float inv = static_cast<float>(1.0 / block_sum(total));
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x) yr[j] *= inv;
  }
}

__global__ void softmax_backward_kernel(const float* dy, const float* y, int64_t rows, int64_t d,
                                        float* dx) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* dyr = dy + r * d;
    const float* yr = y + r * d;
    double dot = 0;
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x)
      dot += static_cast<double>(dyr[j]) * yr[j];
    const float c = static_cast<float>(block_sum(dot));
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x) dx[r * d + j] = yr[j] * (dyr[j] - c);
  }
}

}  // namespace

void softmax_forward(const Tensor& x, Tensor& y) {
  require_f32("softmax", x, "x");
  const int64_t d = x.size(-1);
  if (d == 0 || x.numel() == 0) return;
  const int64_t rows = x.numel() / d;
  NURI_CUDA_CHECK(cudaSetDevice(x.device().index));
  softmax_kernel<<<row_blocks(rows), kRowThreads>>>(x.data<float>(), rows, d, y.data<float>());
  NURI_CUDA_CHECK_LAUNCH();
}

void softmax_backward(const Tensor& dy, const Tensor& y, Tensor& dx) {
  require_f32("softmax backward", dy, "dy");
  const int64_t d = y.size(-1);
  if (d == 0 || y.numel() == 0) return;
  const int64_t rows = y.numel() / d;
  NURI_CUDA_CHECK(cudaSetDevice(y.device().index));
  softmax_backward_kernel<<<row_blocks(rows), kRowThreads>>>(dy.data<float>(), y.data<float>(),
                                                             rows, d, dx.data<float>());
  NURI_CUDA_CHECK_LAUNCH();
}

}  // namespace nuri::cuda
