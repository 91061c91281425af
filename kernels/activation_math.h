// The activation formulas of the CPU and CUDA kernels, written once over the backend's exp (the
// CPU's vectorisable fast_exp, CUDA's expf).
#pragma once

#include "kernels/host_device.h"

namespace nuri::activation_math {

constexpr float kTanhScale = 0.797884560802865355f;  // sqrt(2 / pi)
constexpr float kTanhCubic = 0.044715f;
constexpr float kInvSqrt2Pi = 0.398942280401432678f;

template <class Exp>
NURI_HOST_DEVICE float sigmoid(float x, Exp exp) {
  return 1.0f / (1.0f + exp(-x));
}

// d silu(x) / dx = s (1 + x (1 - s)) with s = sigmoid(x).
template <class Exp>
NURI_HOST_DEVICE float silu_grad(float x, Exp exp) {
  const float s = sigmoid(x, exp);
  return s * (1.0f + x * (1.0f - s));
}

// The standard normal density exp(-x^2 / 2) / sqrt(2 pi).
template <class Exp>
NURI_HOST_DEVICE float normal_pdf(float x, Exp exp) {
  return kInvSqrt2Pi * exp(-0.5f * x * x);
}

// GPT-2's tanh GELU written as x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3), which
// equals 0.5 x (1 + tanh(u)) without the cancellation of 1 + tanh(u) for negative u.
template <class Exp>
NURI_HOST_DEVICE float gelu_tanh(float x, Exp exp) {
  return x * sigmoid(2.0f * kTanhScale * (x + kTanhCubic * x * x * x), exp);
}

template <class Exp>
NURI_HOST_DEVICE float gelu_tanh_grad(float x, Exp exp) {
  const float s = sigmoid(2.0f * kTanhScale * (x + kTanhCubic * x * x * x), exp);
  const float du = 2.0f * kTanhScale * (1.0f + 3.0f * kTanhCubic * x * x);
  return s + x * s * (1.0f - s) * du;
}

}  // namespace nuri::activation_math
