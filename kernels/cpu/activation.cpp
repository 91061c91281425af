// CPU activations (f32). Every loop is branch-free so that g++ vectorises it; exp is
// cpu::fast_exp and the normal CDF is a vectorisable approximation (see normal_cdf).
#include <cmath>

#include "kernels/activation_math.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/vec_math.h"
#include "kernels/ops/activation.h"
#include "kernels/ops/checks.h"

namespace nuri::cpu {
namespace {

// The shared formulas over fast_exp.
struct FastExp {
  float operator()(float x) const { return fast_exp(x); }
};

inline float sigmoid(float x) {
  return activation_math::sigmoid(x, FastExp{});
}

inline float silu_grad(float x) {
  return activation_math::silu_grad(x, FastExp{});
}

// Phi(x), the standard normal CDF. The lower tail Phi(-|x|) = erfc(z) / 2 with z = |x| / sqrt(2)
// is t exp(-z^2 + P(t)) / 2 with t = 1 / (1 + z / 2) and P a degree-9 polynomial fitted to
// log(erfc(z) / t) + z^2 over z in [0, 9.5] (error below 5e-8 in double). In f32 the relative
// error of x * Phi(x) stays below 3e-6 for x > -5 (2e-6 with FMA) and below 2e-5 down to x = -13,
// limited by the rounding of z^2: being a tail formula, it keeps relative accuracy where 1 -
// Phi(|x|) would cancel.
inline float normal_cdf(float x) {
  constexpr float kInvSqrt2 = 0.707106781186547524f;
  const float z = std::abs(x) * kInvSqrt2;
  const float t = 1.0f / (1.0f + 0.5f * z);
  float p = 1.380828768e-01f;
  p = p * t - 6.434329748e-01f;
  p = p * t + 1.068516374e+00f;
  p = p * t - 5.785912871e-01f;
  p = p * t - 1.777513027e-01f;
  p = p * t + 5.310244858e-02f;
  p = p * t + 1.696849987e-02f;
  p = p * t + 3.903284967e-01f;
  p = p * t + 9.982038140e-01f;
  p = p * t - 1.265426874e+00f;
  const float lower = 0.5f * t * fast_exp(p - z * z);
  return x < 0 ? lower : 1.0f - lower;
}

inline float normal_pdf(float x) {
  return activation_math::normal_pdf(x, FastExp{});
}

inline float gelu_tanh(float x) {
  return activation_math::gelu_tanh(x, FastExp{});
}

inline float gelu_tanh_grad(float x) {
  return activation_math::gelu_tanh_grad(x, FastExp{});
}

// out[i] = fn(x[i]).
template <class Fn>
void unary(const char* op, const Tensor& x, Tensor& out, Fn fn) {
  checks::cpu_f32(op, x, "x");
  const float* px = x.data<float>();
  float* po = out.data<float>();
  const int64_t n = x.numel();
#pragma omp parallel for simd if (n > kParallelElements)
  for (int64_t i = 0; i < n; ++i) po[i] = fn(px[i]);
}

// dx[i] = dy[i] * grad(x[i]).
template <class Fn>
void unary_backward(const char* op, const Tensor& dy, const Tensor& x, Tensor& dx, Fn grad) {
  checks::cpu_f32(op, dy, "dy");
  const float* pdy = dy.data<float>();
  const float* px = x.data<float>();
  float* pdx = dx.data<float>();
  const int64_t n = x.numel();
#pragma omp parallel for simd if (n > kParallelElements)
  for (int64_t i = 0; i < n; ++i) pdx[i] = pdy[i] * grad(px[i]);
}

}  // namespace

void silu_forward(const Tensor& x, Tensor& out) {
  unary("silu", x, out, [](float v) { return v * sigmoid(v); });
}

void silu_backward(const Tensor& dy, const Tensor& x, Tensor& dx) {
  unary_backward("silu backward", dy, x, dx, [](float v) { return silu_grad(v); });
}

void gelu_forward(const Tensor& x, bool tanh_approximation, Tensor& out) {
  if (tanh_approximation) {
    unary("gelu", x, out, [](float v) { return gelu_tanh(v); });
  } else {
    unary("gelu", x, out, [](float v) { return v * normal_cdf(v); });
  }
}

void gelu_backward(const Tensor& dy, const Tensor& x, bool tanh_approximation, Tensor& dx) {
  if (tanh_approximation) {
    unary_backward("gelu backward", dy, x, dx, [](float v) { return gelu_tanh_grad(v); });
  } else {
    unary_backward("gelu backward", dy, x, dx,
                   [](float v) { return normal_cdf(v) + v * normal_pdf(v); });
  }
}

void swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out) {
  checks::cpu_f32("swiglu", gate, "gate");
  const float* pg = gate.data<float>();
  const float* pu = up.data<float>();
  float* po = out.data<float>();
  const int64_t n = gate.numel();
#pragma omp parallel for simd if (n > kParallelElements)
  for (int64_t i = 0; i < n; ++i) po[i] = pg[i] * sigmoid(pg[i]) * pu[i];
}

void swiglu_backward(const Tensor& dy, const Tensor& gate, const Tensor& up, Tensor& dgate,
                     Tensor& dup) {
  checks::cpu_f32("swiglu backward", dy, "dy");
  const float* pdy = dy.data<float>();
  const float* pg = gate.data<float>();
  const float* pu = up.data<float>();
  const int64_t n = gate.numel();
  if (dgate.defined() && dup.defined()) {
    float* pdg = dgate.data<float>();
    float* pdu = dup.data<float>();
#pragma omp parallel for simd if (n > kParallelElements)
    for (int64_t i = 0; i < n; ++i) {
      const float g = pg[i];
      pdg[i] = pdy[i] * pu[i] * silu_grad(g);
      pdu[i] = pdy[i] * g * sigmoid(g);
    }
  } else if (dgate.defined()) {
    float* pdg = dgate.data<float>();
#pragma omp parallel for simd if (n > kParallelElements)
    for (int64_t i = 0; i < n; ++i) pdg[i] = pdy[i] * pu[i] * silu_grad(pg[i]);
  } else if (dup.defined()) {
    float* pdu = dup.data<float>();
#pragma omp parallel for simd if (n > kParallelElements)
    for (int64_t i = 0; i < n; ++i) pdu[i] = pdy[i] * pg[i] * sigmoid(pg[i]);
  }
}

}  // namespace nuri::cpu
