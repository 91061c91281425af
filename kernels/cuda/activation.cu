// CUDA activations (f32): the formulas of kernels/activation_math.h with CUDA's own exp, and
// CUDA's normal CDF.
#include "kernels/activation_math.h"
#include "kernels/cuda/map.cuh"
#include "kernels/ops/activation.h"

namespace nuri::cuda {
namespace {

// The shared formulas over CUDA's expf.
struct DeviceExp {
  __host__ __device__ float operator()(float x) const { return expf(x); }
};

__device__ float sigmoid(float x) {
  return activation_math::sigmoid(x, DeviceExp{});
}

__device__ float silu_grad(float x) {
  return activation_math::silu_grad(x, DeviceExp{});
}

__device__ float normal_pdf(float x) {
  return activation_math::normal_pdf(x, DeviceExp{});
}

__device__ float gelu_tanh(float x) {
  return activation_math::gelu_tanh(x, DeviceExp{});
}

__device__ float gelu_tanh_grad(float x) {
  return activation_math::gelu_tanh_grad(x, DeviceExp{});
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
