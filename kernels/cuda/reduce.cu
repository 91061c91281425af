// CUDA reductions: f32 data, double accumulation, and a fixed summation order (each output is one
// block's strided partial sums added by block_sum's fixed tree), so a sum is the same on every run.
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/map.cuh"
#include "kernels/ops/reduce.h"

namespace nuri::cuda {
namespace {

// x viewed as [outer, n, inner]: block b sums output b (o = b / inner, i = b % inner) over k.
__global__ void sum_kernel(const float* x, int64_t outputs, int64_t n, int64_t inner, float factor,
                           float* out) {
  for (int64_t b = blockIdx.x; b < outputs; b += gridDim.x) {
    const float* column = x + b / inner * n * inner + b % inner;
    double total = 0;
    for (int64_t k = threadIdx.x; k < n; k += blockDim.x) total += column[k * inner];
    total = block_sum(total);
    if (threadIdx.x == 0) out[b] = static_cast<float>(total * factor);
  }
}

}  // namespace

void reduce_sum_forward(const Tensor& x, int64_t outer, int64_t n, int64_t inner, float factor,
                        Tensor& out) {
  require_f32("sum", x, "x");
  const int64_t outputs = outer * inner;
  if (outputs == 0) return;
  NURI_CUDA_CHECK(cudaSetDevice(x.device().index));
  sum_kernel<<<row_blocks(outputs), kRowThreads>>>(x.data<float>(), outputs, n, inner, factor,
                                                   out.data<float>());
  NURI_CUDA_CHECK_LAUNCH();
}

void reduce_sum_backward(const Tensor& grad, int64_t outer, int64_t n, int64_t inner, float factor,
                         Tensor& grad_x) {
  require_f32("sum backward", grad, "grad");
  const float* pg = grad.data<float>();
  float* px = grad_x.data<float>();
  launch_map(grad_x, outer * n * inner, [=] __device__(int64_t j) {
    const int64_t o = j / (n * inner), i = j % inner;
    px[j] = pg[o * inner + i] * factor;
  });
}

}  // namespace nuri::cuda
