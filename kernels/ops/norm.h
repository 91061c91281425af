// Normalisation over the last dimension: RMSNorm (Llama/Qwen2) and LayerNorm, with fused
// backward kernels that produce every input gradient in one pass over the rows.
#pragma once

#include <utility>

#include "kernels/dispatch.h"
#include "kernels/tensor.h"

namespace nuri {

// y = x * rsqrt(mean(x^2) + eps) * weight over the last dimension; x [..., D], weight [D].
Tensor rms_norm(const Tensor& x, const Tensor& weight, float eps);
// A pre-norm block's residual step in one pass: sum = x + residual and y = rms_norm(sum, weight,
// eps). Returns {sum, y}, both differentiable; x and residual have one shape.
std::pair<Tensor, Tensor> add_rms_norm(const Tensor& x, const Tensor& residual,
                                       const Tensor& weight, float eps);
// y = (x - mean) * rsqrt(var + eps) * weight + bias over the last dimension (biased variance);
// x [..., D], weight [D], bias [D] or undefined for no bias.
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps);

// x viewed as [rows, D]: rstd[r] = (mean_j x[r, j]^2 + eps)^-1/2, y[r, j] = x[r, j] rstd[r] w[j].
NURI_KERNEL(rms_norm_forward,
            (const Tensor& x, const Tensor& weight, float eps, Tensor& y, Tensor& rstd))
// The same of sum = x + residual, which is written too.
NURI_KERNEL(add_rms_norm_forward, (const Tensor& x, const Tensor& residual, const Tensor& weight,
                                   float eps, Tensor& sum, Tensor& y, Tensor& rstd))
// dx and dweight from dy and the saved rstd; an undefined dx or dweight is not computed.
NURI_KERNEL(rms_norm_backward, (const Tensor& dy, const Tensor& x, const Tensor& weight,
                                const Tensor& rstd, Tensor& dx, Tensor& dweight))
// x viewed as [rows, D]: mean[r], rstd[r] = (var[r] + eps)^-1/2 and
// y[r, j] = (x[r, j] - mean[r]) rstd[r] w[j] + b[j] (no bias term when bias is undefined).
NURI_KERNEL(layer_norm_forward, (const Tensor& x, const Tensor& weight, const Tensor& bias,
                                 float eps, Tensor& y, Tensor& mean, Tensor& rstd))
// dx, dweight and dbias from dy and the saved mean and rstd; undefined outputs are not computed.
NURI_KERNEL(layer_norm_backward,
            (const Tensor& dy, const Tensor& x, const Tensor& weight, const Tensor& mean,
             const Tensor& rstd, Tensor& dx, Tensor& dweight, Tensor& dbias))

}  // namespace nuri
