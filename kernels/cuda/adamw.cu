// CUDA AdamW and gradient sum of squares over many tensors in a few launches: the host cuts every
// tensor into chunks, uploads the table of chunks once, and one block handles each chunk. The
// update has the CPU kernel's formula; the sum of squares adds each chunk's double partial on the
// host in chunk order, so its bits do not change from run to run.
#include <cmath>
#include <vector>

#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/check.h"
#include "kernels/cuda/map.cuh"
#include "kernels/cuda/runtime.h"
#include "kernels/ops/adamw.h"

namespace nuri::cuda {
namespace {

constexpr int64_t kChunkElements = 1 << 16;
constexpr unsigned kThreads = 256;
constexpr int64_t kMaxBlocks = 1 << 20;

// A piece of one parameter that one block updates, with that parameter's decay and step size.
struct AdamWChunk {
  float* param;
  const float* grad;
  float* exp_avg;
  float* exp_avg_sq;
  int64_t size;
  float decay, step_size;
};

// A piece of one tensor whose squares one block sums.
struct SquaresChunk {
  const float* x;
  int64_t size;
};

// The shared hyperparameters of one multi-tensor step.
struct AdamWShared {
  float beta1, beta2, eps, sqrt_bc2, grad_scale;
};

__global__ void adamw_chunks_kernel(const AdamWChunk* chunks, int64_t count, AdamWShared s) {
  for (int64_t c = blockIdx.x; c < count; c += gridDim.x) {
    const AdamWChunk k = chunks[c];
    for (int64_t i = threadIdx.x; i < k.size; i += blockDim.x) {
      const float gi = k.grad[i] * s.grad_scale;
      const float mi = s.beta1 * k.exp_avg[i] + (1.0f - s.beta1) * gi;
      const float vi = s.beta2 * k.exp_avg_sq[i] + (1.0f - s.beta2) * gi * gi;
      k.exp_avg[i] = mi;
      k.exp_avg_sq[i] = vi;
      k.param[i] = k.param[i] * k.decay - k.step_size * (mi / (sqrtf(vi) / s.sqrt_bc2 + s.eps));
    }
  }
}

__global__ void squares_chunks_kernel(const SquaresChunk* chunks, int64_t count, double* partial) {
  for (int64_t c = blockIdx.x; c < count; c += gridDim.x) {
    const SquaresChunk k = chunks[c];
    double local = 0;
    for (int64_t i = threadIdx.x; i < k.size; i += blockDim.x) {
      local += static_cast<double>(k.x[i]) * k.x[i];
    }
    const double total = block_sum(local);
    if (threadIdx.x == 0) partial[c] = total;
  }
}

unsigned blocks_for(int64_t chunks) {
  return static_cast<unsigned>(std::min(chunks, kMaxBlocks));
}

// Calls add(offset, size) for each chunk of a tensor of n elements.
template <class Add>
void for_each_chunk(int64_t n, Add add) {
  for (int64_t offset = 0; offset < n; offset += kChunkElements) {
    add(offset, std::min(kChunkElements, n - offset));
  }
}

}  // namespace

void adamw_multi_update(const std::vector<AdamWTensors>& entries, const AdamWOptions& options,
                        float grad_scale, double bias_correction1, double bias_correction2) {
  std::vector<AdamWChunk> chunks;
  for (const AdamWTensors& e : entries) {
    const float decay = static_cast<float>(1.0 - static_cast<double>(e.lr) * e.weight_decay);
    const float step_size = static_cast<float>(e.lr / bias_correction1);
    for_each_chunk(e.param.numel(), [&](int64_t offset, int64_t size) {
      chunks.push_back({e.param.data<float>() + offset, e.grad.data<float>() + offset,
                        e.exp_avg.data<float>() + offset, e.exp_avg_sq.data<float>() + offset, size,
                        decay, step_size});
    });
  }
  if (chunks.empty()) return;
  const int device = entries.front().param.device().index;
  NURI_CUDA_CHECK(cudaSetDevice(device));
  const size_t table_bytes = chunks.size() * sizeof(AdamWChunk);
  Tensor table = device_scratch(device, table_bytes);
  copy(device, table.raw_data(), true, chunks.data(), false, table_bytes);
  const AdamWShared shared{options.beta1, options.beta2, options.eps,
                           static_cast<float>(std::sqrt(bias_correction2)), grad_scale};
  const auto count = static_cast<int64_t>(chunks.size());
  adamw_chunks_kernel<<<blocks_for(count), kThreads>>>(
      static_cast<const AdamWChunk*>(table.raw_data()), count, shared);
  NURI_CUDA_CHECK_LAUNCH();
}

void sum_of_squares_of(const std::vector<Tensor>& tensors, double& total) {
  std::vector<SquaresChunk> chunks;
  for (const Tensor& t : tensors) {
    for_each_chunk(t.numel(), [&](int64_t offset, int64_t size) {
      chunks.push_back({t.data<float>() + offset, size});
    });
  }
  total = 0;
  if (chunks.empty()) return;
  const int device = tensors.front().device().index;
  NURI_CUDA_CHECK(cudaSetDevice(device));
  const size_t table_bytes = chunks.size() * sizeof(SquaresChunk);
  const size_t partial_bytes = chunks.size() * sizeof(double);
  // One scratch holds the partial sums, then the table (both 8-byte aligned).
  Tensor buffer = device_scratch(device, partial_bytes + table_bytes);
  auto* partial = static_cast<double*>(buffer.raw_data());
  auto* table =
      reinterpret_cast<SquaresChunk*>(static_cast<char*>(buffer.raw_data()) + partial_bytes);
  copy(device, table, true, chunks.data(), false, table_bytes);
  const auto count = static_cast<int64_t>(chunks.size());
  squares_chunks_kernel<<<blocks_for(count), kThreads>>>(table, count, partial);
  NURI_CUDA_CHECK_LAUNCH();
  std::vector<double> host(chunks.size());
  copy(device, host.data(), false, partial, true, partial_bytes);
  for (double value : host) total += value;
}

}  // namespace nuri::cuda
