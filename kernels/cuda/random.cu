// CUDA random fills; the element formulas match kernels/cpu/random.cpp.
#include "kernels/cuda/check.h"
#include "kernels/cuda/map.cuh"
#include "kernels/ops/random.h"
#include "kernels/philox.h"

namespace nuri::cuda {
namespace {

__global__ void uniform_kernel(float* out, int64_t n, uint64_t seed, uint64_t offset, float low,
                               float range) {
  const int64_t blocks = (n + 3) / 4;
  for (int64_t b = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; b < blocks;
       b += int64_t(gridDim.x) * blockDim.x) {
    const philox::Block block = philox::generate(offset + static_cast<uint64_t>(b), seed);
    for (int lane = 0; lane < 4 && 4 * b + lane < n; ++lane) {
      out[4 * b + lane] = fmaf(range, philox::to_unit(block.v[lane]), low);
    }
  }
}

__global__ void normal_kernel(float* out, int64_t n, uint64_t seed, uint64_t offset, float mean,
                              float stddev) {
  const int64_t blocks = (n + 3) / 4;
  constexpr float kTwoPi = 6.2831853071795864769f;
  for (int64_t b = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; b < blocks;
       b += int64_t(gridDim.x) * blockDim.x) {
    const philox::Block block = philox::generate(offset + static_cast<uint64_t>(b), seed);
    for (int pair = 0; pair < 2; ++pair) {
      const float u0 = 1.0f - philox::to_unit(block.v[2 * pair]);
      const float u1 = philox::to_unit(block.v[2 * pair + 1]);
      const float radius = sqrtf(-2.0f * logf(u0));
      const int64_t i = 4 * b + 2 * pair;
      if (i < n) out[i] = mean + stddev * radius * cosf(kTwoPi * u1);
      if (i + 1 < n) out[i + 1] = mean + stddev * radius * sinf(kTwoPi * u1);
    }
  }
}

}  // namespace

void random_uniform(Tensor& x, uint64_t seed, uint64_t offset, float low, float high) {
  require_f32("uniform_", x, "x");
  if (x.numel() == 0) return;
  NURI_CUDA_CHECK(cudaSetDevice(x.device().index));
  uniform_kernel<<<grid_for((x.numel() + 3) / 4, 256), 256>>>(x.data<float>(), x.numel(), seed,
                                                              offset, low, high - low);
  NURI_CUDA_CHECK_LAUNCH();
}

void random_normal(Tensor& x, uint64_t seed, uint64_t offset, float mean, float stddev) {
  require_f32("normal_", x, "x");
  if (x.numel() == 0) return;
  NURI_CUDA_CHECK(cudaSetDevice(x.device().index));
  normal_kernel<<<grid_for((x.numel() + 3) / 4, 256), 256>>>(x.data<float>(), x.numel(), seed,
                                                             offset, mean, stddev);
  NURI_CUDA_CHECK_LAUNCH();
}

}  // namespace nuri::cuda
