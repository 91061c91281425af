// CUDA dtype conversion and fill, with the same rounding as the CPU kernels.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kernels/cuda/check.h"
#include "kernels/ops/cast.h"

namespace nuri::cuda {
namespace {

template <class T>
__device__ double load(const T* data, int64_t i) {
  if constexpr (std::is_same_v<T, bf16_t>) {
    return __bfloat162float(__ushort_as_bfloat16(data[i].bits));
  } else if constexpr (std::is_same_v<T, f16_t>) {
    return __half2float(__ushort_as_half(data[i].bits));
  } else {
    return static_cast<double>(data[i]);
  }
}

template <class T>
__device__ T store(double value) {
  if constexpr (std::is_same_v<T, bf16_t>) {
    return bf16_t{__bfloat16_as_ushort(__float2bfloat16_rn(static_cast<float>(value)))};
  } else if constexpr (std::is_same_v<T, f16_t>) {
    return f16_t{__half_as_ushort(__float2half_rn(static_cast<float>(value)))};
  } else if constexpr (std::is_floating_point_v<T>) {
    return static_cast<T>(value);
  } else {
    if (isnan(value)) return T{0};
    const double lo = static_cast<double>(std::numeric_limits<T>::lowest());
    return static_cast<T>(trunc(fmin(fmax(value, lo), integer_max_as_double<T>())));
  }
}

template <class Src, class Dst>
__global__ void cast_kernel(const Src* in, Dst* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    out[i] = store<Dst>(load(in, i));
  }
}

template <class T>
__global__ void fill_kernel(T* out, T value, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    out[i] = value;
  }
}

}  // namespace

void cast_elements(const Tensor& src, Tensor& dst) {
  NURI_CHECK(src.numel() == dst.numel() && src.device() == dst.device(), "cast: ", src, " into ",
             dst);
  const int64_t n = src.numel();
  if (n == 0) return;
  NURI_CUDA_CHECK(cudaSetDevice(src.device().index));
  visit_dtype(src.dtype(), [&](auto* src_tag) {
    using Src = std::remove_pointer_t<decltype(src_tag)>;
    visit_dtype(dst.dtype(), [&](auto* dst_tag) {
      using Dst = std::remove_pointer_t<decltype(dst_tag)>;
      cast_kernel<<<grid_for(n, 256), 256>>>(static_cast<const Src*>(src.raw_data()),
                                             static_cast<Dst*>(dst.raw_data()), n);
    });
  });
  NURI_CUDA_CHECK_LAUNCH();
}

void fill_elements(Tensor& dst, double value) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  NURI_CUDA_CHECK(cudaSetDevice(dst.device().index));
  visit_dtype(dst.dtype(), [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    fill_kernel<<<grid_for(n, 256), 256>>>(static_cast<T*>(dst.raw_data()),
                                           element_from_double<T>(value), n);
  });
  NURI_CUDA_CHECK_LAUNCH();
}

}  // namespace nuri::cuda
