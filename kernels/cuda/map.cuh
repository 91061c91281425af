// Element-wise CUDA launches: one grid-stride kernel that calls a device functor for every index,
// on the tensor's GPU, with the launch checked. The f32 check mirrors checks::cpu_f32.
#pragma once

#include "kernels/cuda/check.h"
#include "kernels/tensor.h"

namespace nuri::cuda {

template <class Fn>
__global__ void map_kernel(int64_t n, Fn fn) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    fn(i);
  }
}

// Calls fn(i) on the device for i in [0, n), on GPU `device`.
template <class Fn>
void launch_map(int device, int64_t n, Fn fn) {
  if (n == 0) return;
  NURI_CUDA_CHECK(cudaSetDevice(device));
  constexpr unsigned kThreads = 256;
  map_kernel<<<grid_for(n, kThreads), kThreads>>>(n, fn);
  NURI_CUDA_CHECK_LAUNCH();
}

// The same on the GPU that holds `on`.
template <class Fn>
void launch_map(const Tensor& on, int64_t n, Fn fn) {
  launch_map(on.device().index, n, fn);
}

// Device scratch of `bytes` from the caching allocator (freed blocks are reused in stream order).
inline Tensor device_scratch(int device, size_t bytes) {
  return Tensor::empty({static_cast<int64_t>(bytes)}, DType::u8, Device::cuda(device));
}

// The CUDA kernels compute in f32 as the CPU ones do; another dtype is an error naming it.
inline void require_f32(const char* op, const Tensor& t, const char* name) {
  NURI_CHECK(t.dtype() == DType::f32, op, ": the CUDA kernel computes in f32, ", name, " is ",
             dtype_name(t.dtype()));
}

}  // namespace nuri::cuda
