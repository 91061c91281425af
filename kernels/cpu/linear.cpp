// CPU kernels of linear: three GEMMs through OpenBLAS that read the operands in place (the
// transposes are sgemm flags, never copies), plus the bias broadcast and its column sums. bf16
// operands (mixed precision) are widened to f32 first, and the output gradient rounded through
// bf16, so the products are those of the GPU's bf16 GEMMs.
#include "kernels/ops/linear.h"
#include "kernels/cpu/blas.h"
#include "kernels/cpu/parallel.h"
#include "kernels/ops/checks.h"
#include "kernels/ops/reduce.h"

namespace nuri::cpu {
namespace {

// An operand as f32: itself when f32, else widened (bf16 values are exact in f32).
Tensor as_f32(const Tensor& t) {
  return !t.defined() || t.dtype() == DType::f32 ? t : t.to(DType::f32);
}

// The output gradient as the GEMMs read it: rounded to bf16 when the operands are bf16.
Tensor gemm_grad(const Tensor& grad, const Tensor& operand) {
  return operand.defined() && operand.dtype() == DType::bf16 ? grad.to(DType::bf16).to(DType::f32)
                                                             : grad;
}

}  // namespace

void linear_forward(const Tensor& x_in, const Tensor& weight_in, const Tensor& bias, int64_t rows,
                    Tensor& out) {
  const Tensor x = as_f32(x_in), weight = as_f32(weight_in);
  checks::cpu_f32("linear", x, "x");
  const int64_t in = weight.size(1);
  const int64_t n = weight.size(0);
  float* y = out.data<float>();
  if (bias.defined()) {
    // Broadcast the bias into every row, then let the GEMM add onto it (beta = 1).
    const float* b = bias.data<float>();
#pragma omp parallel for if (rows * n > kParallelElements)
    for (int64_t r = 0; r < rows; ++r) {
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) y[r * n + j] = b[j];
    }
  }
  // y [rows, n] = x [rows, in] * weight^T, weight read as [n, in] with the transpose flag.
  sgemm(false, true, rows, n, in, x.data<float>(), in, weight.data<float>(), in,
        bias.defined() ? 1.0f : 0.0f, y, n);
}

void linear_backward(const Tensor& grad, const Tensor& x_in, const Tensor& weight_in, int64_t rows,
                     Tensor& grad_x, Tensor& grad_weight, Tensor& grad_bias) {
  checks::cpu_f32("linear backward", grad, "grad");
  const Tensor x = as_f32(x_in), weight = as_f32(weight_in);
  const Tensor gemm_g = gemm_grad(grad, x_in.defined() ? x_in : weight_in);
  const float* g = gemm_g.data<float>();
  const int64_t n = grad.size(-1);
  if (grad_x.defined()) {
    const int64_t in = weight.size(1);
    // grad_x [rows, in] = grad [rows, n] * weight [n, in].
    sgemm(false, false, rows, in, n, g, n, weight.data<float>(), in, 0.0f, grad_x.data<float>(),
          in);
  }
  if (grad_weight.defined()) {
    const int64_t in = x.size(-1);
    // grad_weight [n, in] = grad^T [n, rows] * x [rows, in]; grad read transposed in place.
    sgemm(true, false, n, in, rows, g, n, x.data<float>(), in, 0.0f, grad_weight.data<float>(), in);
  }
  // grad_bias [n] = column sums of grad [rows, n], thread-count independent.
  if (grad_bias.defined()) reduce_sum_forward(grad, 1, rows, n, 1.0f, grad_bias);
}

}  // namespace nuri::cpu
