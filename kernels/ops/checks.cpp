#include "kernels/ops/checks.h"

namespace nuri::checks {

void defined(const char* op, const Tensor& t, const char* name) {
  NURI_CHECK(t.defined(), op, ": ", name, " is undefined");
}

void floating(const char* op, const Tensor& t, const char* name) {
  defined(op, t, name);
  NURI_CHECK(is_floating(t.dtype()), op, ": ", name, " must be floating, not ",
             dtype_name(t.dtype()));
}

void integer(const char* op, const Tensor& t, const char* name) {
  defined(op, t, name);
  NURI_CHECK(t.dtype() == DType::i32 || t.dtype() == DType::i64, op, ": ", name,
             " must be i32 or i64, not ", dtype_name(t.dtype()));
}

void rank(const char* op, const Tensor& t, const char* name, int expected) {
  defined(op, t, name);
  NURI_CHECK(t.dim() == expected, op, ": ", name, " must have ", expected, " dimensions, not ",
             shape_str(t.shape()));
}

void same_device_dtype(const char* op, const Tensor& a, const char* a_name, const Tensor& b,
                       const char* b_name) {
  defined(op, a, a_name);
  defined(op, b, b_name);
  NURI_CHECK(a.device() == b.device(), op, ": ", a_name, " is on ", a.device(), " but ", b_name,
             " is on ", b.device());
  NURI_CHECK(a.dtype() == b.dtype(), op, ": ", a_name, " is ", dtype_name(a.dtype()), " but ",
             b_name, " is ", dtype_name(b.dtype()));
}

void shape(const char* op, const Tensor& t, const char* name, const Shape& expected) {
  defined(op, t, name);
  NURI_CHECK(t.shape() == expected, op, ": ", name, " has shape ", shape_str(t.shape()),
             ", expected ", shape_str(expected));
}

void cpu_f32(const char* op, const Tensor& t, const char* name) {
  NURI_CHECK(t.dtype() == DType::f32, op, ": the CPU kernel computes in f32, ", name, " is ",
             dtype_name(t.dtype()));
}

int axis(const char* op, int dim, int rank) {
  const int index = dim < 0 ? dim + rank : dim;
  NURI_CHECK(index >= 0 && index < rank, op, ": dimension ", dim, " out of range for rank ", rank);
  return index;
}

}  // namespace nuri::checks
