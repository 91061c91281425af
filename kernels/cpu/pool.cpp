// CPU kernels of pooling. Average pooling sums windows row by row so the inner loops run over
// output columns and vectorise; max pooling keeps each maximum's offset for the backward.
#include <algorithm>
#include <cmath>

#include "kernels/cpu/parallel.h"
#include "kernels/ops/checks.h"
#include "kernels/ops/pool.h"

namespace nuri::cpu {

void avg_pool_forward(const Tensor& x, const PoolShape& s, Tensor& out) {
  checks::cpu_f32("avg_pool", x, "x");
  const float* px = x.data<float>();
  float* po = out.data<float>();
  const float inv = 1.0f / static_cast<float>(s.kernel_h * s.kernel_w);
  const int64_t rows = s.planes * s.out_h;
  const int64_t sw = s.stride_w;
  // One task per output row: it sums the KH x KW shifted input rows of its windows.
#pragma omp parallel for if (rows * s.out_w * s.kernel_h * s.kernel_w > kParallelElements)
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t plane = row / s.out_h, oh = row % s.out_h;
    float* dst = po + row * s.out_w;
    std::fill(dst, dst + s.out_w, 0.0f);
    for (int64_t kh = 0; kh < s.kernel_h; ++kh) {
      const float* src = px + (plane * s.height + oh * s.stride_h + kh) * s.width;
      for (int64_t kw = 0; kw < s.kernel_w; ++kw) {
#pragma omp simd
        for (int64_t ow = 0; ow < s.out_w; ++ow) dst[ow] += src[ow * sw + kw];
      }
    }
#pragma omp simd
    for (int64_t ow = 0; ow < s.out_w; ++ow) dst[ow] *= inv;
  }
}

void avg_pool_backward(const Tensor& grad, const PoolShape& s, Tensor& grad_x) {
  checks::cpu_f32("avg_pool backward", grad, "grad");
  const float* pg = grad.data<float>();
  float* dx = grad_x.data<float>();
  const float inv = 1.0f / static_cast<float>(s.kernel_h * s.kernel_w);
  const int64_t rows = s.planes * s.height;
  const int64_t sw = s.stride_w;
  // One task per input row: it gathers from the output rows whose windows cover it, so tasks
  // never write the same element and overlapping windows add up in a fixed order.
#pragma omp parallel for if (rows * s.width * s.kernel_h > kParallelElements)
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t plane = row / s.height, ih = row % s.height;
    float* dst = dx + row * s.width;
    std::fill(dst, dst + s.width, 0.0f);
    // Output rows oh with oh * stride_h <= ih < oh * stride_h + kernel_h.
    const int64_t first = ih - s.kernel_h + 1;
    const int64_t oh_lo = first <= 0 ? 0 : (first + s.stride_h - 1) / s.stride_h;
    const int64_t oh_hi = std::min(ih / s.stride_h, s.out_h - 1);
    for (int64_t oh = oh_lo; oh <= oh_hi; ++oh) {
      const float* src = pg + (plane * s.out_h + oh) * s.out_w;
      for (int64_t kw = 0; kw < s.kernel_w; ++kw) {
#pragma omp simd
        for (int64_t ow = 0; ow < s.out_w; ++ow) dst[ow * sw + kw] += src[ow] * inv;
      }
    }
  }
}

void max_pool_forward(const Tensor& x, const PoolShape& s, Tensor& out, Tensor& argmax) {
  checks::cpu_f32("max_pool", x, "x");
  const float* px = x.data<float>();
  float* po = out.data<float>();
  int32_t* pa = argmax.data<int32_t>();
  const int64_t rows = s.planes * s.out_h;
  // One task per output row; each window scanned row-major so the first of equal maxima wins.
#pragma omp parallel for if (rows * s.out_w * s.kernel_h * s.kernel_w > kParallelElements)
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t plane = row / s.out_h, oh = row % s.out_h;
    const float* src = px + plane * s.height * s.width;
    for (int64_t ow = 0; ow < s.out_w; ++ow) {
      int64_t best = oh * s.stride_h * s.width + ow * s.stride_w;
      for (int64_t kh = 0; kh < s.kernel_h; ++kh) {
        const int64_t start = (oh * s.stride_h + kh) * s.width + ow * s.stride_w;
        for (int64_t kw = 0; kw < s.kernel_w; ++kw) {
          const float v = src[start + kw];
          if (v > src[best] || (std::isnan(v) && !std::isnan(src[best]))) best = start + kw;
        }
      }
      po[row * s.out_w + ow] = src[best];
      pa[row * s.out_w + ow] = static_cast<int32_t>(best);
    }
  }
}

void max_pool_backward(const Tensor& grad, const Tensor& argmax, const PoolShape& s,
                       Tensor& grad_x) {
  checks::cpu_f32("max_pool backward", grad, "grad");
  const float* pg = grad.data<float>();
  const int32_t* pa = argmax.data<int32_t>();
  float* dx = grad_x.data<float>();
  const int64_t plane_in = s.height * s.width, plane_out = s.out_h * s.out_w;
  // One task per plane: overlapping windows may share a maximum, so a plane's scatter stays in
  // one thread and adds up in a fixed order.
#pragma omp parallel for if (s.planes * (plane_in + plane_out) > kParallelElements)
  for (int64_t plane = 0; plane < s.planes; ++plane) {
    float* dst = dx + plane * plane_in;
    std::fill(dst, dst + plane_in, 0.0f);
    for (int64_t i = plane * plane_out; i < (plane + 1) * plane_out; ++i) dst[pa[i]] += pg[i];
  }
}

}  // namespace nuri::cpu
