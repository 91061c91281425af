// CUDA reductions: f32 data, double accumulation, and a fixed summation order, so a sum is the
// same on every run. x is viewed as [outer, n, inner] and summed over n in two passes: partial
// sums over spans of n whose length depends on the shape alone, then each output's partials in
// order. Outputs along a contiguous inner dimension take a thread each (reads coalesced across
// the outputs); outputs over contiguous rows take a block per span (block_sum's fixed tree).
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/map.cuh"
#include "kernels/ops/reduce.h"

namespace nuri::cuda {
namespace {

// At least this many outputs side by side make a column sum (a thread per output).
constexpr int64_t kColumnOutputs = 32;

// Partial blockIdx.y of output c = (o, i) over rows [y span, (y + 1) span) of n, in order.
__global__ void column_partials_kernel(const float* x, int64_t outer, int64_t n, int64_t inner,
                                       int64_t span, double* partial) {
  const int64_t outputs = outer * inner, c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= outputs) return;
  const int64_t part = blockIdx.y, end = min(n, (part + 1) * span);
  const float* column = x + c / inner * n * inner + c % inner;
  double total = 0;
  for (int64_t k = part * span; k < end; ++k) total += column[k * inner];
  partial[part * outputs + c] = total;
}

// Block b sums output b % outputs over span b / outputs of n, its threads strided over the span.
__global__ void row_partials_kernel(const float* x, int64_t outputs, int64_t parts, int64_t n,
                                    int64_t inner, int64_t span, double* partial) {
  for (int64_t b = blockIdx.x; b < outputs * parts; b += gridDim.x) {
    const int64_t c = b % outputs, part = b / outputs, end = min(n, (part + 1) * span);
    const float* column = x + c / inner * n * inner + c % inner;
    double total = 0;
    for (int64_t k = part * span + threadIdx.x; k < end; k += blockDim.x)
      total += column[k * inner];
    total = block_sum(total);
    if (threadIdx.x == 0) partial[part * outputs + c] = total;
  }
}

// out[c] = factor * the sum of output c's partials in order.
__global__ void partials_total_kernel(const double* partial, int64_t outputs, int64_t parts,
                                      float factor, float* out) {
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < outputs;
       c += int64_t(gridDim.x) * blockDim.x) {
    double total = 0;
    for (int64_t part = 0; part < parts; ++part) total += partial[part * outputs + c];
    out[c] = static_cast<float>(total * factor);
  }
}

}  // namespace

void add_partials(int device, const double* partial, int64_t outputs, int64_t parts, float factor,
                  float* out) {
  if (outputs == 0) return;
  NURI_CUDA_CHECK(cudaSetDevice(device));
  partials_total_kernel<<<grid_for(outputs, kRowThreads), kRowThreads>>>(partial, outputs, parts,
                                                                         factor, out);
  NURI_CUDA_CHECK_LAUNCH();
}

void reduce_sum_forward(const Tensor& x, int64_t outer, int64_t n, int64_t inner, float factor,
                        Tensor& out) {
  require_f32("sum", x, "x");
  const int64_t outputs = outer * inner;
  if (outputs == 0) return;
  const int device = x.device().index;
  NURI_CUDA_CHECK(cudaSetDevice(device));
  const bool columns = inner >= kColumnOutputs;
  const int64_t span = span_length(n, columns ? 32 : 16 * int64_t{kRowThreads});
  const int64_t parts = (n + span - 1) / span;
  const Tensor scratch =
      device_scratch(device, static_cast<size_t>(parts * outputs) * sizeof(double));
  double* partial = static_cast<double*>(scratch.raw_data());
  if (parts > 0 && columns) {
    const dim3 grid(static_cast<unsigned>((outputs + kRowThreads - 1) / kRowThreads),
                    static_cast<unsigned>(parts));
    column_partials_kernel<<<grid, kRowThreads>>>(x.data<float>(), outer, n, inner, span, partial);
    NURI_CUDA_CHECK_LAUNCH();
  } else if (parts > 0) {
    row_partials_kernel<<<row_blocks(outputs * parts), kRowThreads>>>(
        x.data<float>(), outputs, parts, n, inner, span, partial);
    NURI_CUDA_CHECK_LAUNCH();
  }
  add_partials(device, partial, outputs, parts, factor, out.data<float>());
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
