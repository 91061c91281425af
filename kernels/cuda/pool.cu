// CUDA pooling without padding (f32): one thread per output for the forward; one thread per
// input element for the backward, which gathers from every window that covers it (no atomics,
// so the sums have a fixed order).
#include "kernels/cuda/map.cuh"
#include "kernels/ops/pool.h"

namespace nuri::cuda {
namespace {

// The range [first, last] of window starts along one axis whose windows hold position p.
struct Covering {
  int64_t first = 0, last = -1;
};

__device__ Covering windows_holding(int64_t p, int64_t kernel, int64_t stride, int64_t outputs) {
  const int64_t low = p - kernel + 1;
  Covering c;
  c.first = low <= 0 ? 0 : (low + stride - 1) / stride;
  c.last = p / stride < outputs - 1 ? p / stride : outputs - 1;
  return c;
}

}  // namespace

void avg_pool_forward(const Tensor& x, const PoolShape& s, Tensor& out) {
  require_f32("avg_pool", x, "x");
  const float* px = x.data<float>();
  float* po = out.data<float>();
  const float inv = 1.0f / static_cast<float>(s.kernel_h * s.kernel_w);
  launch_map(x, s.planes * s.out_h * s.out_w, [=] __device__(int64_t e) {
    const int64_t ow = e % s.out_w, oh = e / s.out_w % s.out_h, plane = e / (s.out_w * s.out_h);
    const float* src = px + (plane * s.height + oh * s.stride_h) * s.width + ow * s.stride_w;
    float total = 0.0f;
    for (int64_t kh = 0; kh < s.kernel_h; ++kh) {
      for (int64_t kw = 0; kw < s.kernel_w; ++kw) total += src[kh * s.width + kw];
    }
    po[e] = total * inv;
  });
}

void avg_pool_backward(const Tensor& grad, const PoolShape& s, Tensor& grad_x) {
  require_f32("avg_pool backward", grad, "grad");
  const float* pg = grad.data<float>();
  float* dx = grad_x.data<float>();
  const float inv = 1.0f / static_cast<float>(s.kernel_h * s.kernel_w);
  launch_map(grad, s.planes * s.height * s.width, [=] __device__(int64_t e) {
    const int64_t w = e % s.width, h = e / s.width % s.height, plane = e / (s.width * s.height);
    const Covering rows = windows_holding(h, s.kernel_h, s.stride_h, s.out_h);
    const Covering cols = windows_holding(w, s.kernel_w, s.stride_w, s.out_w);
    float total = 0.0f;
    for (int64_t oh = rows.first; oh <= rows.last; ++oh) {
      for (int64_t ow = cols.first; ow <= cols.last; ++ow)
        total += pg[(plane * s.out_h + oh) * s.out_w + ow];
    }
    dx[e] = total * inv;
  });
}

void max_pool_forward(const Tensor& x, const PoolShape& s, Tensor& out, Tensor& argmax) {
  require_f32("max_pool", x, "x");
  const float* px = x.data<float>();
  float* po = out.data<float>();
  int32_t* pa = argmax.data<int32_t>();
  launch_map(x, s.planes * s.out_h * s.out_w, [=] __device__(int64_t e) {
    const int64_t ow = e % s.out_w, oh = e / s.out_w % s.out_h, plane = e / (s.out_w * s.out_h);
    const float* src = px + plane * s.height * s.width;
    // Scanned row-major so that the first of equal maxima wins; NaN wins over numbers.
    int64_t best = oh * s.stride_h * s.width + ow * s.stride_w;
    for (int64_t kh = 0; kh < s.kernel_h; ++kh) {
      const int64_t start = (oh * s.stride_h + kh) * s.width + ow * s.stride_w;
      for (int64_t kw = 0; kw < s.kernel_w; ++kw) {
        const float v = src[start + kw];
        if (v > src[best] || (isnan(v) && !isnan(src[best]))) best = start + kw;
      }
    }
    po[e] = src[best];
    pa[e] = static_cast<int32_t>(best);
  });
}

void max_pool_backward(const Tensor& grad, const Tensor& argmax, const PoolShape& s,
                       Tensor& grad_x) {
  require_f32("max_pool backward", grad, "grad");
  const float* pg = grad.data<float>();
  const int32_t* pa = argmax.data<int32_t>();
  float* dx = grad_x.data<float>();
  launch_map(grad, s.planes * s.height * s.width, [=] __device__(int64_t e) {
    const int64_t offset = e % (s.width * s.height), plane = e / (s.width * s.height);
    const Covering rows = windows_holding(offset / s.width, s.kernel_h, s.stride_h, s.out_h);
    const Covering cols = windows_holding(offset % s.width, s.kernel_w, s.stride_w, s.out_w);
    float total = 0.0f;
    for (int64_t oh = rows.first; oh <= rows.last; ++oh) {
      for (int64_t ow = cols.first; ow <= cols.last; ++ow) {
        const int64_t o = (plane * s.out_h + oh) * s.out_w + ow;
        if (pa[o] == offset) total += pg[o];
      }
    }
    dx[e] = total;
  });
}

}  // namespace nuri::cuda
