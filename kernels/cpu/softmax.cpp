// CPU softmax over the last dimension (f32 data, f64 row sums).
#include <algorithm>
#include <limits>

#include "kernels/cpu/parallel.h"
#include "kernels/cpu/vec_math.h"
#include "kernels/ops/checks.h"
#include "kernels/ops/softmax.h"

namespace nuri::cpu {

void softmax_forward(const Tensor& x, Tensor& y) {
  checks::cpu_f32("softmax", x, "x");
  const int64_t d = x.size(-1);
  if (d == 0) return;
  const int64_t rows = x.numel() / d;
  const float* px = x.data<float>();
  float* py = y.data<float>();
#pragma omp parallel for if (rows * d > kParallelElements)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = px + r * d;
    float* yr = py + r * d;
    float top = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : top)
    for (int64_t j = 0; j < d; ++j) top = std::max(top, xr[j]);
    double total = 0;
#pragma omp simd reduction(+ : total)
    for (int64_t j = 0; j < d; ++j) {
      yr[j] = fast_exp(xr[j] - top);
      total += yr[j];
    }
    const float inv = static_cast<float>(1.0 / total);
#pragma omp simd
    for (int64_t j = 0; j < d; ++j) yr[j] *= inv;
  }
}

void softmax_backward(const Tensor& dy, const Tensor& y, Tensor& dx) {
  checks::cpu_f32("softmax backward", dy, "dy");
  const int64_t d = y.size(-1);
  if (d == 0) return;
  const int64_t rows = y.numel() / d;
  const float* pdy = dy.data<float>();
  const float* py = y.data<float>();
  float* pdx = dx.data<float>();
#pragma omp parallel for if (rows * d > kParallelElements)
  for (int64_t r = 0; r < rows; ++r) {
    const float* dyr = pdy + r * d;
    const float* yr = py + r * d;
    float* dxr = pdx + r * d;
    double dot = 0;
#pragma omp simd reduction(+ : dot)
    for (int64_t j = 0; j < d; ++j) dot += static_cast<double>(dyr[j]) * yr[j];
    const float c = static_cast<float>(dot);
#pragma omp simd
    for (int64_t j = 0; j < d; ++j) dxr[j] = yr[j] * (dyr[j] - c);
  }
}

}  // namespace nuri::cpu
