// CPU element-wise kernels (f32).
#include "kernels/ops/elementwise.h"
#include "kernels/cpu/parallel.h"
#include "kernels/ops/checks.h"

namespace nuri::cpu {
namespace {

// Applies out[i] = fn(a[i], b[i mod nb]) row by row so that the inner loop vectorises.
template <class Fn>
void broadcast_binary(const char* op, const Tensor& a, const Tensor& b, Tensor& out, Fn fn) {
  checks::cpu_f32(op, a, "a");
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  float* po = out.data<float>();
  const int64_t n = a.numel();
  const int64_t nb = b.numel();
  if (n == 0) return;
  if (nb == n) {
#pragma omp parallel for simd if (n > kParallelElements)
    for (int64_t i = 0; i < n; ++i) po[i] = fn(pa[i], pb[i]);
    return;
  }
  const int64_t rows = n / nb;
#pragma omp parallel for if (n > kParallelElements)
  for (int64_t r = 0; r < rows; ++r) {
    const float* ra = pa + r * nb;
    float* ro = po + r * nb;
#pragma omp simd
    for (int64_t j = 0; j < nb; ++j) ro[j] = fn(ra[j], pb[j]);
  }
}

}  // namespace

void add_forward(const Tensor& a, const Tensor& b, float alpha, Tensor& out) {
  broadcast_binary("add", a, b, out, [alpha](float x, float y) { return x + alpha * y; });
}

void mul_forward(const Tensor& a, const Tensor& b, Tensor& out) {
  broadcast_binary("mul", a, b, out, [](float x, float y) { return x * y; });
}

void scale_forward(const Tensor& x, float factor, Tensor& out) {
  checks::cpu_f32("scale", x, "x");
  const float* px = x.data<float>();
  float* po = out.data<float>();
  const int64_t n = x.numel();
#pragma omp parallel for simd if (n > kParallelElements)
  for (int64_t i = 0; i < n; ++i) po[i] = px[i] * factor;
}

}  // namespace nuri::cpu
