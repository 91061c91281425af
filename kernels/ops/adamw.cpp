#include "kernels/ops/adamw.h"

#include <cmath>

#include "kernels/ops/checks.h"

namespace nuri {
namespace {

void check_f32(const char* op, const Tensor& t, const char* name) {
  checks::defined(op, t, name);
  NURI_CHECK(t.dtype() == DType::f32, op, ": ", name, " must be f32, not ", dtype_name(t.dtype()));
}

void check_finite_non_negative(const char* op, float value, const char* name) {
  NURI_CHECK(value >= 0 && std::isfinite(value), op, ": ", name, " ", value,
             " must be finite and >= 0");
}

// One entry's tensors: f32, param's shape and device, and no two sharing memory (the update reads
// and writes them element by element).
void check_entry(const char* op, const AdamWTensors& e, const Device& device) {
  check_f32(op, e.param, "param");
  check_f32(op, e.grad, "grad");
  check_f32(op, e.exp_avg, "exp_avg");
  check_f32(op, e.exp_avg_sq, "exp_avg_sq");
  checks::same_device_dtype(op, e.param, "param", e.grad, "grad");
  checks::same_device_dtype(op, e.param, "param", e.exp_avg, "exp_avg");
  checks::same_device_dtype(op, e.param, "param", e.exp_avg_sq, "exp_avg_sq");
  NURI_CHECK(e.param.device() == device, op, ": parameters on ", device, " and ", e.param.device(),
             " in one step");
  checks::shape(op, e.grad, "grad", e.param.shape());
  checks::shape(op, e.exp_avg, "exp_avg", e.param.shape());
  checks::shape(op, e.exp_avg_sq, "exp_avg_sq", e.param.shape());
  const Tensor* buffers[] = {&e.param, &e.grad, &e.exp_avg, &e.exp_avg_sq};
  const char* names[] = {"param", "grad", "exp_avg", "exp_avg_sq"};
  for (int i = 0; i < 4; ++i) {
    for (int j = i + 1; j < 4; ++j) {
      NURI_CHECK(buffers[i]->raw_data() != buffers[j]->raw_data() || e.param.numel() == 0, op, ": ",
                 names[i], " and ", names[j], " share memory");
    }
  }
  check_finite_non_negative(op, e.lr, "lr");
  check_finite_non_negative(op, e.weight_decay, "weight_decay");
}

// adamw_multi_step, its errors naming `op`.
void checked_multi_step(const char* op, const std::vector<AdamWTensors>& entries,
                        const AdamWOptions& options, float grad_scale, int64_t step) {
  NURI_CHECK(step >= 1, op, ": step ", step, " must be >= 1 (steps count from 1)");
  NURI_CHECK(options.beta1 >= 0 && options.beta1 < 1, op, ": beta1 ", options.beta1,
             " must be in [0, 1)");
  NURI_CHECK(options.beta2 >= 0 && options.beta2 < 1, op, ": beta2 ", options.beta2,
             " must be in [0, 1)");
  check_finite_non_negative(op, options.eps, "eps");
  check_finite_non_negative(op, grad_scale, "grad_scale");
  if (entries.empty()) return;
  for (const AdamWTensors& e : entries) check_entry(op, e, entries.front().param.device());
  const double bias_correction1 = 1.0 - std::pow(static_cast<double>(options.beta1), step);
  const double bias_correction2 = 1.0 - std::pow(static_cast<double>(options.beta2), step);
  NURI_DISPATCH(entries.front().param.device(), adamw_multi_update, entries, options, grad_scale,
                bias_correction1, bias_correction2);
}

}  // namespace

void adamw_multi_step(const std::vector<AdamWTensors>& entries, const AdamWOptions& options,
                      float grad_scale, int64_t step) {
  checked_multi_step("adamw_multi_step", entries, options, grad_scale, step);
}

void adamw_step(Tensor& param, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq,
                const AdamWOptions& options, int64_t step) {
  checked_multi_step("adamw_step",
                     {{param, grad, exp_avg, exp_avg_sq, options.lr, options.weight_decay}},
                     options, 1.0f, step);
}

double sum_of_squares(const std::vector<Tensor>& tensors) {
  if (tensors.empty()) return 0;
  for (const Tensor& t : tensors) {
    checks::defined("sum_of_squares", t, "a tensor");
    NURI_CHECK(t.dtype() == DType::f32, "sum_of_squares: a tensor is ", dtype_name(t.dtype()),
               ", expected f32");
    NURI_CHECK(t.device() == tensors.front().device(), "sum_of_squares: tensors on ",
               tensors.front().device(), " and ", t.device());
  }
  double total = 0;
  NURI_DISPATCH(tensors.front().device(), sum_of_squares_of, tensors, total);
  return total;
}

}  // namespace nuri
