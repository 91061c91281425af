// Fully connected layer: y = x W^T + b with the weight stored [out, in] (the PyTorch and
// Hugging Face layout, so checkpoints load without a transpose).
#pragma once

#include "kernels/dispatch.h"
#include "kernels/tensor.h"

namespace nuri {

// What linear's GEMMs read. bf16 is mixed precision: x and the weight (f32 masters) are rounded to
// bf16 for the product, which accumulates in f32; the output, the bias and every gradient stay
// f32, and the output gradient is rounded to bf16 for the backward GEMMs. On a GPU the GEMMs run
// on bf16 tensor cores; the CPU rounds the same operands and multiplies in f32, giving the GPU's
// results to within summation order (a reference, not a speed-up).
enum class GemmPrecision { f32, bf16 };

// The precision of this thread's linear calls: f32 unless a GemmPrecisionScope is active.
GemmPrecision gemm_precision();

// Sets this thread's GemmPrecision until the scope ends. A backward pass keeps the precision of
// its forward, whatever scope it runs in.
class GemmPrecisionScope {
 public:
  explicit GemmPrecisionScope(GemmPrecision precision);
  ~GemmPrecisionScope();
  GemmPrecisionScope(const GemmPrecisionScope&) = delete;
  GemmPrecisionScope& operator=(const GemmPrecisionScope&) = delete;

 private:
  GemmPrecision previous_;
};

// x [..., in], weight [out, in], optional bias [out] -> [..., out]. The leading dimensions of x
// are flattened into rows, so one GEMM serves any batch layout.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// out [rows, out] = x [rows, in] weight^T (+ bias); bias may be undefined. x and weight are both
// f32 or both bf16 (mixed precision); bias, out and every gradient are f32.
NURI_KERNEL(linear_forward,
            (const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t rows, Tensor& out))
// From grad [rows, out]: grad_x = grad weight, grad_weight = grad^T x, grad_bias = column sums
// of grad. Each output is computed only when defined (allocated by the caller, any contents). With
// bf16 x and weight, grad is rounded to bf16 for the GEMMs (grad_bias sums it in f32).
NURI_KERNEL(linear_backward, (const Tensor& grad, const Tensor& x, const Tensor& weight,
                              int64_t rows, Tensor& grad_x, Tensor& grad_weight, Tensor& grad_bias))

}  // namespace nuri
