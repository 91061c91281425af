// Argument checks shared by the ops; each error names the op, the argument and the fault.
#pragma once

#include "kernels/tensor.h"

namespace nuri::checks {

// The tensor is defined.
void defined(const char* op, const Tensor& t, const char* name);
// The tensor is defined and has a floating dtype.
void floating(const char* op, const Tensor& t, const char* name);
// The tensor is defined and has an integer dtype (i32 or i64).
void integer(const char* op, const Tensor& t, const char* name);
// The tensor has exactly `rank` dimensions.
void rank(const char* op, const Tensor& t, const char* name, int rank);
// Both tensors live on the same device and have the same dtype.
void same_device_dtype(const char* op, const Tensor& a, const char* a_name, const Tensor& b,
                       const char* b_name);
// The tensor has exactly this shape.
void shape(const char* op, const Tensor& t, const char* name, const Shape& expected);
// The tensor is on the CPU and f32; for CPU kernels that compute only in f32.
void cpu_f32(const char* op, const Tensor& t, const char* name);
// Normalises a possibly negative dimension index for a tensor of `rank` dimensions.
int axis(const char* op, int dim, int rank);

}  // namespace nuri::checks
