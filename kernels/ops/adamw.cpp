#include "kernels/ops/adamw.h"

#include <cmath>

#include "kernels/ops/checks.h"

namespace nuri {
namespace {

void check_f32(const Tensor& t, const char* name) {
  checks::defined("adamw_step", t, name);
  NURI_CHECK(t.dtype() == DType::f32, "adamw_step: ", name, " must be f32, not ",
             dtype_name(t.dtype()));
}

}  // namespace

void adamw_step(Tensor& param, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq,
                const AdamWOptions& options, int64_t step) {
  const char* op = "adamw_step";
  check_f32(param, "param");
  check_f32(grad, "grad");
  check_f32(exp_avg, "exp_avg");
  check_f32(exp_avg_sq, "exp_avg_sq");
  checks::same_device_dtype(op, param, "param", grad, "grad");
  checks::same_device_dtype(op, param, "param", exp_avg, "exp_avg");
  checks::same_device_dtype(op, param, "param", exp_avg_sq, "exp_avg_sq");
  checks::shape(op, grad, "grad", param.shape());
  checks::shape(op, exp_avg, "exp_avg", param.shape());
  checks::shape(op, exp_avg_sq, "exp_avg_sq", param.shape());
  const Tensor* buffers[] = {&param, &grad, &exp_avg, &exp_avg_sq};
  const char* names[] = {"param", "grad", "exp_avg", "exp_avg_sq"};
  for (int i = 0; i < 4; ++i) {  // the update reads and writes them element by element
    for (int j = i + 1; j < 4; ++j) {
      NURI_CHECK(buffers[i]->raw_data() != buffers[j]->raw_data() || param.numel() == 0,
                 "adamw_step: ", names[i], " and ", names[j], " share memory");
    }
  }
  NURI_CHECK(step >= 1, "adamw_step: step ", step, " must be >= 1 (steps count from 1)");
  NURI_CHECK(options.lr >= 0 && std::isfinite(options.lr), "adamw_step: lr ", options.lr,
             " must be finite and >= 0");
  NURI_CHECK(options.beta1 >= 0 && options.beta1 < 1, "adamw_step: beta1 ", options.beta1,
             " must be in [0, 1)");
  NURI_CHECK(options.beta2 >= 0 && options.beta2 < 1, "adamw_step: beta2 ", options.beta2,
             " must be in [0, 1)");
  NURI_CHECK(options.eps >= 0 && std::isfinite(options.eps), "adamw_step: eps ", options.eps,
             " must be finite and >= 0");
  NURI_CHECK(options.weight_decay >= 0 && std::isfinite(options.weight_decay),
             "adamw_step: weight_decay ", options.weight_decay, " must be finite and >= 0");
  const double bias_correction1 = 1.0 - std::pow(static_cast<double>(options.beta1), step);
  const double bias_correction2 = 1.0 - std::pow(static_cast<double>(options.beta2), step);
  NURI_DISPATCH(param.device(), adamw_update, param, grad, exp_avg, exp_avg_sq, options,
                bias_correction1, bias_correction2);
}

}  // namespace nuri
