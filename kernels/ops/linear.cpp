#include "kernels/ops/linear.h"

#include "kernels/autograd.h"
#include "kernels/ops/checks.h"

namespace nuri {
namespace {

thread_local GemmPrecision current_precision = GemmPrecision::f32;

}  // namespace

GemmPrecision gemm_precision() {
  return current_precision;
}

GemmPrecisionScope::GemmPrecisionScope(GemmPrecision precision) : previous_(current_precision) {
  current_precision = precision;
}

GemmPrecisionScope::~GemmPrecisionScope() {
  current_precision = previous_;
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  checks::floating("linear", x, "x");
  NURI_CHECK(x.dim() >= 1, "linear: x must have at least 1 dimension, not ", shape_str(x.shape()));
  checks::rank("linear", weight, "weight", 2);
  checks::same_device_dtype("linear", x, "x", weight, "weight");
  const int64_t in = x.size(-1);
  const int64_t out_features = weight.size(0);
  NURI_CHECK(weight.size(1) == in, "linear: weight has shape ", shape_str(weight.shape()),
             ", expected [", out_features, ", ", in, "] to match x of shape ",
             shape_str(x.shape()));
  if (bias.defined()) {
    checks::same_device_dtype("linear", x, "x", bias, "bias");
    checks::shape("linear", bias, "bias", {out_features});
  }
  Shape out_shape = x.shape();
  out_shape.back() = out_features;
  const int64_t rows = shape_numel(Shape(x.shape().begin(), x.shape().end() - 1));
  Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
  // Mixed precision: the GEMMs read bf16 copies, which the backward keeps (half the memory).
  const bool bf16 = gemm_precision() == GemmPrecision::bf16 && x.dtype() == DType::f32;
  const Tensor gemm_x = bf16 ? x.detach().to(DType::bf16) : x.detach();
  const Tensor gemm_w = bf16 ? weight.detach().to(DType::bf16) : weight.detach();
  NURI_DISPATCH(x.device(), linear_forward, gemm_x, gemm_w, bias, rows, out);
  if (autograd::needed(x, weight, bias)) {
    // Only what each gradient reads is kept: x for the weight's, the weight for x's.
    const Tensor saved_x = weight.requires_grad() ? gemm_x : Tensor();
    const Tensor saved_w = x.requires_grad() ? gemm_w : Tensor();
    const Shape x_shape = x.shape(), w_shape = weight.shape();
    const bool has_bias = bias.defined();
    autograd::record(
        "linear", {x, weight, bias}, {&out},
        [saved_x, saved_w, x_shape, w_shape, has_bias, rows](const auto& grads, const auto& needs) {
          const Tensor& g = grads[0];
          Tensor grad_x, grad_w, grad_b;
          if (needs[0]) grad_x = Tensor::empty(x_shape, g.dtype(), g.device());
          if (needs[1]) grad_w = Tensor::empty(w_shape, g.dtype(), g.device());  // f32 masters
          if (has_bias && needs[2]) grad_b = Tensor::empty({w_shape[0]}, g.dtype(), g.device());
          NURI_DISPATCH(g.device(), linear_backward, g, saved_x, saved_w, rows, grad_x, grad_w,
                        grad_b);
          return std::vector<Tensor>{grad_x, grad_w, grad_b};
        });
  }
  return out;
}

}  // namespace nuri
