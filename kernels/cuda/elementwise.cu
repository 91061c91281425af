// CUDA element-wise kernels (f32): b broadcasts over a's leading dimensions, as on the CPU.
#include "kernels/cuda/map.cuh"
#include "kernels/ops/elementwise.h"

namespace nuri::cuda {

void add_forward(const Tensor& a, const Tensor& b, float alpha, Tensor& out) {
  require_f32("add", a, "a");
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  float* po = out.data<float>();
  const int64_t nb = b.numel();
  launch_map(a, a.numel(), [=] __device__(int64_t i) { po[i] = pa[i] + alpha * pb[i % nb]; });
}

void mul_forward(const Tensor& a, const Tensor& b, Tensor& out) {
  require_f32("mul", a, "a");
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  float* po = out.data<float>();
  const int64_t nb = b.numel();
  launch_map(a, a.numel(), [=] __device__(int64_t i) { po[i] = pa[i] * pb[i % nb]; });
}

void scale_forward(const Tensor& x, float factor, Tensor& out) {
  require_f32("scale", x, "x");
  const float* px = x.data<float>();
  float* po = out.data<float>();
  launch_map(x, x.numel(), [=] __device__(int64_t i) { po[i] = px[i] * factor; });
}

}  // namespace nuri::cuda
