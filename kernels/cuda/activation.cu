// CUDA activations (f32), the formulas of kernels/cpu/activation.cpp with CUDA's own exp and
// normal CDF.
#include "kernels/cuda/map.cuh"
#include "kernels/ops/activation.h"

namespace nuri::cuda {
namespace {

__device__ float sigmoid(float x) {
  return 1.0f / (1.0f + expf(-x));
}

// The standard normal density exp(-x^2 / 2) / sqrt(2 pi).
__device__ float normal_pdf(float x) {
  constexpr float kInvSqrt2Pi = 0.398942280401432678f;
  return kInvSqrt2Pi * expf(-0.5f * x * x);
}

constexpr float kTanhScale = 0.797884560802865355f;  // sqrt(2 / pi)
constexpr float kTanhCubic = 0.044715f;

// GPT-2's tanh GELU as x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3), as on the CPU.
__device__ float gelu_tanh(float x) {
  return x * sigmoid(2.0f * kTanhScale * (x + kTanhCubic * x * x * x));
}

__device__ float gelu_tanh_grad(float x) {
  const float s = sigmoid(2.0f * kTanhScale * (x + kTanhCubic * x * x * x));
  const float du = 2.0f * kTanhScale * (1.0f + 3.0f * kTanhCubic * x * x);
  return s + x * s * (1.0f - s) * du;
}

// d silu(x) / dx = s (1 + x (1 - s)) with s = sigmoid(x).
__device__ float silu_grad(float x) {
  const float s = sigmoid(x);
  return s * (1.0f + x * (1.0f - s));
}

}  // namespace

void silu_forward(const Tensor& x, Tensor& out) {
  require_f32("silu", x, "x");
  const float* px = x.data<float>();
  float* po = out.data<float>();
  launch_map(x, x.numel(), [=] __device__(int64_t i) { po[i] = px[i] * sigmoid(px[i]); });
}

void silu_backward(const Tensor& dy, const Tensor& x, Tensor& dx) {
  require_f32("silu backward", dy, "dy");
  const float* pdy = dy.data<float>();
  const float* px = x.data<float>();
  float* pdx = dx.data<float>();
  launch_map(x, x.numel(), [=] __device__(int64_t i) { pdx[i] = pdy[i] * silu_grad(px[i]); });
}

void gelu_forward(const Tensor& x, bool tanh_approximation, Tensor& out) {
  require_f32("gelu", x, "x");
  const float* px = x.data<float>();
  float* po = out.data<float>();
  launch_map(x, x.numel(), [=] __device__(int64_t i) {
    const float v = px[i];
    po[i] = tanh_approximation ? gelu_tanh(v) : v * normcdff(v);
  });
}

void gelu_backward(const Tensor& dy, const Tensor& x, bool tanh_approximation, Tensor& dx) {
  require_f32("gelu backward", dy, "dy");
  const float* pdy = dy.data<float>();
  const float* px = x.data<float>();
  float* pdx = dx.data<float>();
  launch_map(x, x.numel(), [=] __device__(int64_t i) {
    const float v = px[i];
    pdx[i] = pdy[i] * (tanh_approximation ? gelu_tanh_grad(v) : normcdff(v) + v * normal_pdf(v));
  });
}

void swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out) {
  require_f32("swiglu", gate, "gate");
  const float* pg = gate.data<float>();
  const float* pu = up.data<float>();
  float* po = out.data<float>();
  launch_map(gate, gate.numel(),
             [=] __device__(int64_t i) { po[i] = pg[i] * sigmoid(pg[i]) * pu[i]; });
}

void swiglu_backward(const Tensor& dy, const Tensor& gate, const Tensor& up, Tensor& dgate,
                     Tensor& dup) {
  require_f32("swiglu backward", dy, "dy");
  const float* pdy = dy.data<float>();
  const float* pg = gate.data<float>();
  const float* pu = up.data<float>();
  float* pdg = dgate.defined() ? dgate.data<float>() : nullptr;  // undefined: not computed
  float* pdu = dup.defined() ? dup.data<float>() : nullptr;
  launch_map(gate, gate.numel(), [=] __device__(int64_t i) {
    const float g = pg[i];
    if (pdg != nullptr) pdg[i] = pdy[i] * pu[i] * silu_grad(g);
    if (pdu != nullptr) pdu[i] = pdy[i] * g * sigmoid(g);
  });
}

}  // namespace nuri::cuda
