// Element-wise activations: SiLU, GELU (exact or tanh form) and SwiGLU, the Llama MLP's gated
// activation, fused into one kernel each way.
#pragma once

#include "kernels/dispatch.h"
#include "kernels/tensor.h"

namespace nuri {

// x * sigmoid(x).
Tensor silu(const Tensor& x);
// x * Phi(x) with the exact normal CDF (erf form), or GPT-2's tanh approximation
// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
Tensor gelu(const Tensor& x, bool tanh_approximation = false);
// silu(gate) * up, for gate and up of the same shape.
Tensor swiglu(const Tensor& gate, const Tensor& up);

NURI_KERNEL(silu_forward, (const Tensor& x, Tensor& out))
// dx = dy * silu'(x).
NURI_KERNEL(silu_backward, (const Tensor& dy, const Tensor& x, Tensor& dx))
NURI_KERNEL(gelu_forward, (const Tensor& x, bool tanh_approximation, Tensor& out))
// dx = dy * gelu'(x).
NURI_KERNEL(gelu_backward, (const Tensor& dy, const Tensor& x, bool tanh_approximation, Tensor& dx))
NURI_KERNEL(swiglu_forward, (const Tensor& gate, const Tensor& up, Tensor& out))
// dgate = dy * up * silu'(gate), dup = dy * silu(gate); an undefined output is not computed.
NURI_KERNEL(swiglu_backward,
            (const Tensor& dy, const Tensor& gate, const Tensor& up, Tensor& dgate, Tensor& dup))

}  // namespace nuri
