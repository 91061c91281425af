// CUDA kernels of linear: the CPU kernel's three GEMMs through cuBLASLt, reading the operands in
// place (transposes are flags), the bias added by the GEMM's epilogue and its gradient summed by
// the reduction kernel. bf16 operands (mixed precision) run on tensor cores with f32 outputs,
// the output gradient rounded to bf16 for them.
#include "kernels/cuda/blas.h"
#include "kernels/cuda/map.cuh"
#include "kernels/ops/linear.h"
#include "kernels/ops/reduce.h"

namespace nuri::cuda {
namespace {

// The GEMM input type of x and the weight, which are both f32 or both bf16.
GemmInputs inputs_of(const Tensor& operand, const char* op) {
  if (operand.dtype() == DType::bf16) return GemmInputs::bf16;
  require_f32(op, operand, "x");
  return GemmInputs::f32;
}

}  // namespace

void linear_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t rows,
                    Tensor& out) {
  const GemmInputs inputs = inputs_of(x, "linear");
  const int64_t in = weight.size(1), n = weight.size(0);
  NURI_CUDA_CHECK(cudaSetDevice(x.device().index));
  // y [rows, n] = x [rows, in] * weight^T (+ bias), weight read as [n, in] with the transpose flag.
  gemm(inputs, false, true, rows, n, in, x.raw_data(), in, weight.raw_data(), in, 0.0f,
       out.data<float>(), n, 1, 0, 0, 0, bias.defined() ? bias.data<float>() : nullptr);
}

void linear_backward(const Tensor& grad, const Tensor& x, const Tensor& weight, int64_t rows,
                     Tensor& grad_x, Tensor& grad_weight, Tensor& grad_bias) {
  require_f32("linear backward", grad, "grad");
  NURI_CUDA_CHECK(cudaSetDevice(grad.device().index));
  // x is kept when the weight needs its gradient, the weight when x does; with only the bias
  // needing one, neither is kept and no GEMM runs.
  if (grad_x.defined() || grad_weight.defined()) {
    const GemmInputs inputs = inputs_of(x.defined() ? x : weight, "linear backward");
    const Tensor gemm_grad = inputs == GemmInputs::bf16 ? grad.to(DType::bf16) : grad;
    const void* g = gemm_grad.raw_data();
    const int64_t n = grad.size(-1);
    if (grad_x.defined()) {  // grad_x [rows, in] = grad [rows, n] * weight [n, in]
      const int64_t in = weight.size(1);
      gemm(inputs, false, false, rows, in, n, g, n, weight.raw_data(), in, 0.0f,
           grad_x.data<float>(), in);
    }
    if (grad_weight.defined()) {  // grad_weight [n, in] = grad^T [n, rows] * x [rows, in]
      const int64_t in = x.size(-1);
      gemm(inputs, true, false, n, in, rows, g, n, x.raw_data(), in, 0.0f,
           grad_weight.data<float>(), in);
    }
  }
  // grad_bias [n] = column sums of grad [rows, n], in a fixed order.
  if (grad_bias.defined()) reduce_sum_forward(grad, 1, rows, grad.size(-1), 1.0f, grad_bias);
}

}  // namespace nuri::cuda
