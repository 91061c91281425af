// CUDA fused cross-entropy (f32 logits): one block per row for the logsumexp (a block maximum,
// then an f64 block sum of exp(x - max)), the mean over rows in one block's fixed tree, and the
// gradient element by element; never a probability tensor.
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/map.cuh"
#include "kernels/ops/cross_entropy.h"

namespace nuri::cuda {
namespace {

// The target of row r, from i32 or i64 targets.
struct Targets {
  const int64_t* wide = nullptr;
  const int32_t* narrow = nullptr;
  __device__ int64_t operator[](int64_t r) const { return wide != nullptr ? wide[r] : narrow[r]; }
};

Targets targets_of(const Tensor& targets) {
  return targets.dtype() == DType::i64 ? Targets{targets.data<int64_t>(), nullptr}
                                       : Targets{nullptr, targets.data<int32_t>()};
}

__global__ void row_loss_kernel(const float* x, Targets target, int64_t n, int64_t v,
                                int64_t ignore_index, float* lse, double* row_loss) {
  for (int64_t r = blockIdx.x; r < n; r += gridDim.x) {
    const int64_t t = target[r];
    if (t == ignore_index) {  // uniform across the block, so the block skips the row together
      if (threadIdx.x == 0) {
        lse[r] = 0;
        row_loss[r] = 0;
      }
      continue;
    }
    const float* xr = x + r * v;
    float top = -INFINITY;
    for (int64_t j = threadIdx.x; j < v; j += blockDim.x) top = fmaxf(top, xr[j]);
    top = block_max(top);
    double total = 0;
    if (top != -INFINITY) {
      for (int64_t j = threadIdx.x; j < v; j += blockDim.x) total += exp(double(xr[j]) - top);
    }
    total = block_sum(total);
    if (threadIdx.x == 0) {
      const double row_lse = top + log(total);
      lse[r] = static_cast<float>(row_lse);
      row_loss[r] = row_lse - xr[t];
    }
  }
}

// loss = sum of the row losses / count (0 when count is 0), in one block.
__global__ void mean_loss_kernel(const double* row_loss, int64_t n, int64_t count, float* loss) {
  double total = 0;
  for (int64_t r = threadIdx.x; r < n; r += blockDim.x) total += row_loss[r];
  total = block_sum(total);
  if (threadIdx.x == 0) *loss = count > 0 ? static_cast<float>(total / count) : 0.0f;
}

}  // namespace

void cross_entropy_forward(const Tensor& logits, const Tensor& targets, int64_t ignore_index,
                           int64_t count, Tensor& lse, Tensor& loss) {
  require_f32("cross_entropy", logits, "logits");
  const int64_t n = logits.size(0), v = logits.size(1);
  NURI_CUDA_CHECK(cudaSetDevice(logits.device().index));
  // The f64 row losses, in a byte buffer (tensors have no f64 dtype).
  Tensor row_bytes = Tensor::empty({n * int64_t(sizeof(double))}, DType::u8, logits.device());
  double* row_loss = n > 0 ? static_cast<double*>(row_bytes.raw_data()) : nullptr;
  if (n > 0) {
    row_loss_kernel<<<row_blocks(n), kRowThreads>>>(logits.data<float>(), targets_of(targets), n, v,
                                                    ignore_index, lse.data<float>(), row_loss);
    NURI_CUDA_CHECK_LAUNCH();
  }
  mean_loss_kernel<<<1, kRowThreads>>>(row_loss, n, count, loss.data<float>());
  NURI_CUDA_CHECK_LAUNCH();
}

void cross_entropy_backward(const Tensor& grad_loss, const Tensor& logits, const Tensor& targets,
                            const Tensor& lse, int64_t ignore_index, int64_t count,
                            Tensor& grad_logits) {
  require_f32("cross_entropy backward", grad_loss, "grad_loss");
  const int64_t v = logits.size(1);
  const float* px = logits.data<float>();
  const float* pl = lse.data<float>();
  const float* pg = grad_loss.data<float>();
  float* pd = grad_logits.data<float>();
  const Targets target = targets_of(targets);
  launch_map(logits, logits.numel(), [=] __device__(int64_t e) {
    const int64_t r = e / v, j = e % v, t = target[r];
    if (t == ignore_index || count == 0) {
      pd[e] = 0.0f;
      return;
    }
    const float scale = static_cast<float>(pg[0] / static_cast<double>(count));
    pd[e] = scale * (expf(px[e] - pl[r]) - (j == t ? 1.0f : 0.0f));
  });
}

}  // namespace nuri::cuda
